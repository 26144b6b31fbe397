"""Turn importance scores into the set of experts to drop, layer-wise or globally.

Layer-wise drops the same number from every layer (a uniform layout: physically removable). Global ranks
all experts of all layers together, which the seeds report gives better quality but different counts per
layer; since a checkpoint config holds one expert count, a global result is realised by masking (or soft
down-weighting / zeroing), never by physical removal.

Global ranking compares layers, so scores are first normalised to each layer's share (score / layer
sum): raw magnitudes such as activation norms grow with depth and would otherwise decide the ranking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from evalsuite.errors import InvalidRecipeError

Drop = dict[int, list[int]]


def _order(row: torch.Tensor, candidates: list[int]) -> list[int]:
    """Candidates sorted from least to most important; ties broken by expert index (deterministic)."""
    return sorted(candidates, key=lambda e: (float(row[e]), e))


def layer_shares(scores: torch.Tensor) -> torch.Tensor:
    """Each layer's scores divided by the layer's total (uniform if the layer's total is zero)."""
    s = scores.to(torch.float64).clamp_min(0)
    totals = s.sum(dim=1, keepdim=True)
    uniform = torch.full_like(s, 1.0 / s.shape[1])
    return torch.where(totals > 0, s / totals.clamp_min(1e-300), uniform)


def select_layerwise(
    scores: torch.Tensor,
    n_drop: int | Sequence[int],
    *,
    min_keep: Sequence[int],
    already: Mapping[int, Sequence[int]] | None = None,
    num_experts: Sequence[int] | None = None,
    expert_groups: Sequence[int] | None = None,
    labels: Sequence[int] | None = None,
) -> Drop:
    """Drop the `n_drop` lowest-scoring experts of every layer (on top of `already` dropped ones).

    `expert_groups[layer] = G > 1` (group-limited routers, e.g. DeepSeek-V3 `n_group`): the router picks
    groups first, so every group must lose the same number of experts; each group drops its own lowest."""
    layers, width = scores.shape
    counts = [int(n_drop)] * layers if isinstance(n_drop, int) else [int(n) for n in n_drop]
    drop: Drop = {}
    for layer in range(layers):
        name = labels[layer] if labels is not None else layer
        experts = int(num_experts[layer]) if num_experts is not None else width
        gone = set((already or {}).get(layer, ()))
        alive = [e for e in range(experts) if e not in gone]
        n_groups = int(expert_groups[layer]) if expert_groups is not None else 1
        if n_groups > 1 and counts[layer]:
            if counts[layer] % n_groups or experts % n_groups:
                raise InvalidRecipeError(
                    f"layer {name}: the router selects among {n_groups} expert groups, so the {counts[layer]} "
                    f"experts to drop must split evenly across groups; use a multiple of {n_groups} "
                    f"(e.g. {max(n_groups, counts[layer] - counts[layer] % n_groups)} of {experts})"
                )
            size = experts // n_groups
            new = set(gone)
            for g in range(n_groups):
                members = [e for e in alive if g * size <= e < (g + 1) * size]
                new |= set(_order(scores[layer], members)[: counts[layer] // n_groups])
            drop[layer] = sorted(new)
            continue
        if len(alive) - counts[layer] < min_keep[layer]:
            raise InvalidRecipeError(
                f"layer {name}: dropping {counts[layer]} of {len(alive)} remaining experts leaves "
                f"{len(alive) - counts[layer]}, fewer than top_k={min_keep[layer]}; use a smaller ratio "
                f"(at most {(len(alive) - min_keep[layer]) / experts:.3f}) or keep >= {min_keep[layer]} experts"
            )
        drop[layer] = sorted(gone | set(_order(scores[layer], alive)[: counts[layer]]))
    return drop


def select_global(
    scores: torch.Tensor,
    n_drop_total: int,
    *,
    min_keep: Sequence[int],
    already: Mapping[int, Sequence[int]] | None = None,
    num_experts: Sequence[int] | None = None,
) -> Drop:
    """Drop the `n_drop_total` lowest experts across all layers by layer-normalised score, never taking
    a layer below `min_keep` experts. `num_experts[layer]` < width marks zero-padded columns."""
    layers, width = scores.shape
    counts = [int(n) for n in num_experts] if num_experts is not None else [width] * layers
    valid = torch.zeros_like(scores, dtype=torch.bool)
    for layer, n in enumerate(counts):
        valid[layer, :n] = True
    shares = layer_shares(torch.where(valid, scores.to(torch.float64), torch.zeros((), dtype=torch.float64)))
    drop: Drop = {layer: sorted(set((already or {}).get(layer, ()))) for layer in range(layers)}
    alive = {layer: counts[layer] - len(drop[layer]) for layer in range(layers)}
    capacity = sum(max(0, alive[layer] - min_keep[layer]) for layer in range(layers))
    if n_drop_total > capacity:
        raise InvalidRecipeError(
            f"global selection cannot drop {n_drop_total} more experts: only {capacity} can go while "
            f"every layer keeps at least top_k experts; use a smaller ratio"
        )
    candidates = sorted(
        (float(shares[layer, e]), layer, e)
        for layer in range(layers)
        for e in range(counts[layer])
        if e not in drop[layer]
    )
    taken = 0
    for _, layer, expert in candidates:
        if taken == n_drop_total:
            break
        if alive[layer] - 1 < min_keep[layer]:
            continue
        drop[layer].append(expert)
        alive[layer] -= 1
        taken += 1
    return {layer: sorted(v) for layer, v in drop.items()}


def round_schedule(total: int, rounds: int) -> list[int]:
    """Split `total` drops over `rounds` rounds as evenly as possible (earlier rounds take the remainder)."""
    rounds = max(1, min(rounds, total)) if total > 0 else 1
    base, extra = divmod(total, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]
