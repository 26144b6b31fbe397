"""Merge plans (who survives, with which coefficients) and a reversible in-place merge.

Seed 004 merges each group of similar experts into one, theta = sum_i alpha_i theta_i, and merges the
group's router rows the same way (W = sum_i alpha_i W_i), which it finds matters. Coefficients:
uniform (alpha = 1/|group|), frequency-weighted (alpha proportional to how often the router chose each
member on calibration data) or "max" (keep the most-visited member only).

The survivor of a group (the index that stays) is always its most-visited member, so the router row
that carried most traffic keeps its place. `InPlaceMerge` writes the merged weights into the survivors
and masks the other members: the same function as physical merging (`MoEModel.merge`), but reversible
and costing only a copy of the survivors' old rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

Groups = list[list[int]]


def plan_merge(
    groups: Groups, counts: Sequence[float] | torch.Tensor, weighting: str
) -> tuple[Groups, list[list[float]]]:
    """(groups reordered survivor-first, coefficients per member) for one layer.

    Survivor = the most-visited member (ties: lowest index). Coefficients sum to 1 within a group."""
    c = [float(x) for x in (counts.tolist() if isinstance(counts, torch.Tensor) else counts)]
    ordered: Groups = []
    weights: list[list[float]] = []
    for group in groups:
        members = sorted(group, key=lambda e: (-c[e], e))
        if weighting == "uniform":
            alpha = [1.0 / len(members)] * len(members)
        elif weighting == "freq":
            total = sum(c[e] for e in members)
            alpha = [c[e] / total for e in members] if total > 0 else [1.0 / len(members)] * len(members)
        elif weighting == "max":
            alpha = [1.0] + [0.0] * (len(members) - 1)
        else:
            from evalsuite.errors import InvalidRecipeError

            raise InvalidRecipeError(f"unknown merge weighting {weighting!r}; valid: uniform, freq, max")
        ordered.append(members)
        weights.append(alpha)
    return ordered, weights


def expert_indexed(module: torch.nn.Module, num_experts: int) -> dict[str, torch.nn.Parameter | torch.Tensor]:
    """Parameters and buffers of `module` (not recursing into other blocks) whose leading size is E."""
    found: dict[str, torch.Tensor] = {}
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.dim() >= 1 and tensor.shape[0] == num_experts:
            found[name] = tensor
    return found


def merge_targets(block: object, *, merge_router: bool) -> list[tuple[torch.Tensor, int]]:
    """(tensor, expert axis) pairs one merge must average: the MoE access layer's expert-indexed tensors
    (so the in-place merge touches exactly what `MoEModel.merge` does), router ones only if asked."""
    found = getattr(block, "tensors", None)
    if found:
        return [(et.tensor, et.axis) for et in found if et.role == "expert" or merge_router]
    experts, router = block.experts, block.router  # type: ignore[attr-defined]
    num = int(block.num_experts)  # type: ignore[attr-defined]
    targets = [(t, 0) for t in expert_indexed(experts, num).values()]
    if merge_router and router is not None:
        targets += [(t, 0) for t in expert_indexed(router, num).values()]
    return targets


@dataclass
class InPlaceMerge:
    """Overwrites survivor slices with merged slices in the given tensors; `restore()` puts them back."""

    saved: list[tuple[torch.Tensor, int, int, torch.Tensor]] = field(default_factory=list)

    def merge_rows(self, tensor: torch.Tensor, axis: int, group: Sequence[int], alpha: Sequence[float]) -> None:
        survivor = group[0]
        with torch.no_grad():
            merged = sum(a * tensor.select(axis, e).to(torch.float64) for a, e in zip(alpha, group, strict=True))
            target = tensor.data.select(axis, survivor)
            self.saved.append((tensor.data, axis, survivor, target.clone()))
            target.copy_(merged.to(tensor.dtype))  # type: ignore[union-attr]

    def apply(self, targets: list[tuple[torch.Tensor, int]], groups: Groups, weights: list[list[float]]) -> None:
        """Merge every group of size > 1 into its first member, in every target tensor."""
        for group, alpha in zip(groups, weights, strict=True):
            if len(group) < 2:
                continue
            for tensor, axis in targets:
                self.merge_rows(tensor, axis, group, alpha)

    @property
    def nbytes(self) -> int:
        return sum(old.numel() * old.element_size() for *_, old in self.saved)

    def restore(self) -> None:
        with torch.no_grad():
            for tensor, axis, row, old in reversed(self.saved):
                tensor.select(axis, row).copy_(old)
        self.saved.clear()
