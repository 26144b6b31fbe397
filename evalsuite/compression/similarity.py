"""Expert-to-expert similarity matrices [E, E], the input of every grouping algorithm.

Data-centric (seed 004, HC-SMoE): compare what experts *output* on the same calibration tokens.
- linear CKA (Kornblith et al.): invariant to rotations and scale of the outputs.
- cosine: mean per-token cosine of outputs; seed 004 finds it on par with CKA and cheaper.
Model-centric (seed 004): compare the experts' *weights*, no data needed.
- vectorised weights: cosine of all expert parameters concatenated.
- surrogate weight: down @ (gate * up) (a one-matrix linearisation of the SwiGLU expert), which seed 004
  reports to be more stable than vectorised weights.
All return symmetric float64 matrices with a unit diagonal (for non-degenerate experts).
"""

from __future__ import annotations

from typing import Any

import torch

from evalsuite.errors import InvalidRecipeError


def _finish(sim: torch.Tensor) -> torch.Tensor:
    sim = (sim + sim.T) / 2
    sim.fill_diagonal_(1.0)
    return sim.clamp(-1.0, 1.0)


def linear_cka(outputs: torch.Tensor) -> torch.Tensor:
    """Pairwise linear CKA of expert outputs [E, N, H] on the same N tokens.

    CKA(X, Y) = <K_X, K_Y>_F / (||K_X||_F ||K_Y||_F) with centred Gram matrices K = X_c X_c^T."""
    x = outputs.to(torch.float64)
    x = x - x.mean(dim=1, keepdim=True)
    grams = torch.einsum("enh,emh->enm", x, x).flatten(1)  # [E, N*N]
    norms = grams.norm(dim=1)
    sim = grams @ grams.T / torch.outer(norms, norms).clamp_min(1e-300)
    return _finish(sim)


def output_cosine(outputs: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of cos(f_i(x), f_j(x)) for expert outputs [E, N, H]."""
    x = torch.nn.functional.normalize(outputs.to(torch.float64), dim=-1)
    sim = torch.einsum("inh,jnh->ij", x, x) / max(1, x.shape[1])
    return _finish(sim)


def vector_cosine(vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of row vectors [E, P]."""
    v = torch.nn.functional.normalize(vectors.to(torch.float64), dim=-1)
    return _finish(v @ v.T)


def expert_tensors(experts: torch.nn.Module, num_experts: int) -> dict[str, torch.Tensor]:
    """Every parameter of an `experts` module indexed by expert (leading size E), by name."""
    return {name: p.detach() for name, p in experts.named_parameters() if p.dim() >= 2 and p.shape[0] == num_experts}


def weight_cosine(experts: torch.nn.Module, num_experts: int, *, chunk: int = 1 << 22) -> torch.Tensor:
    """Cosine of the vectorised expert weights (all expert-indexed parameters, flattened per expert).

    The Gram matrix is summed over column chunks of each tensor in float64 (a temporary of `chunk`
    values), never from one [E, P] float64 concatenation: that was 8 bytes per expert parameter, e.g.
    90 GB for one DeepSeek-V3 layer."""
    tensors = expert_tensors(experts, num_experts)
    if not tensors:
        raise InvalidRecipeError(
            f"{type(experts).__name__} has no parameters indexed by expert (leading size {num_experts}); "
            "weight-based grouping needs fused expert tensors - use merge-cka-* or merge-cosine-*"
        )
    gram = torch.zeros(num_experts, num_experts, dtype=torch.float64)
    step = max(1, chunk // num_experts)
    for _, tensor in sorted(tensors.items()):
        flat = tensor.reshape(num_experts, -1)
        for start in range(0, flat.shape[1], step):
            part = flat[:, start : start + step].to(torch.float64)
            gram += part @ part.T
    norms = gram.diagonal().clamp_min(1e-300).sqrt()
    return _finish(gram / torch.outer(norms, norms))


def swiglu_parts(experts: torch.nn.Module, num_experts: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate [E, I, H], up [E, I, H], down [E, H, I]) of a fused SwiGLU experts module.

    Handles the common layout (`gate_up_proj [E, 2I, H]`, `down_proj [E, H, I]`) and the transposed one
    (GPT-OSS / Llama4: `[E, H, 2I]`, `[E, I, H]`; GPT-OSS interleaves gate and up columns)."""
    tensors = expert_tensors(experts, num_experts)
    gate_up, down = tensors.get("gate_up_proj"), tensors.get("down_proj")
    if gate_up is None or down is None:
        raise InvalidRecipeError(
            f"surrogate weights need fused gate_up_proj/down_proj tensors; {type(experts).__name__} has "
            f"{sorted(tensors) or 'none'}; use merge-weights-* or a data-centric similarity"
        )
    g, d = gate_up.to(torch.float64), down.to(torch.float64)
    if g.shape[1] == 2 * d.shape[2] and g.shape[2] == d.shape[1]:
        gate, up = g.chunk(2, dim=1)
        return gate, up, d
    if g.shape[2] == 2 * d.shape[1] and g.shape[1] == d.shape[2]:
        gt = g.transpose(1, 2)  # [E, 2I, H]
        if "gptoss" in type(experts).__name__.lower():
            gate, up = gt[:, 0::2], gt[:, 1::2]
        else:
            gate, up = gt.chunk(2, dim=1)
        return gate, up, d.transpose(1, 2)
    raise InvalidRecipeError(
        f"cannot read the SwiGLU layout of {type(experts).__name__}: gate_up_proj {tuple(gate_up.shape)}, "
        f"down_proj {tuple(down.shape)}; use merge-weights-* instead"
    )


def surrogate_similarity(
    gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor, *, max_direct: int = 64_000_000
) -> torch.Tensor:
    """Cosine of surrogate weights S_e = down_e @ (gate_e * up_e) ([H, H] per expert).

    When the E surrogates would not fit in memory comfortably, the Frobenius inner products are taken
    without materialising them: <S_i, S_j> = sum((D_i^T D_j) * (M_i M_j^T)), M = gate * up."""
    m = gate * up  # [E, I, H]
    experts, hidden = m.shape[0], m.shape[2]
    if experts * hidden * hidden <= max_direct:
        surrogate = torch.einsum("ehi,eik->ehk", down, m).reshape(experts, -1)
        return vector_cosine(surrogate)
    gram = torch.empty(experts, experts, dtype=torch.float64)
    for i in range(experts):
        for j in range(i, experts):
            value = ((down[i].T @ down[j]) * (m[i] @ m[j].T)).sum()
            gram[i, j] = gram[j, i] = value
    norms = gram.diagonal().clamp_min(1e-300).sqrt()
    return _finish(gram / torch.outer(norms, norms))


def similarity_matrix(
    kind: str, *, outputs: torch.Tensor | None = None, experts: Any = None, num_experts: int | None = None
) -> torch.Tensor:
    """Dispatch on the recipe's similarity name ("cka", "cosine", "weights", "surrogate")."""
    if kind in ("cka", "cosine"):
        if outputs is None or outputs.numel() == 0:
            raise InvalidRecipeError(
                f"{kind} similarity needs expert outputs on calibration tokens (RoutingStats.expert_outputs); "
                "collect statistics with output_samples > 0"
            )
        return linear_cka(outputs) if kind == "cka" else output_cosine(outputs)
    if kind == "weights":
        return weight_cosine(experts, int(num_experts))  # type: ignore[arg-type]
    if kind == "surrogate":
        return surrogate_similarity(*swiglu_parts(experts, int(num_experts)))  # type: ignore[arg-type]
    raise InvalidRecipeError(f"unknown similarity {kind!r}; valid: cka, cosine, weights, surrogate")
