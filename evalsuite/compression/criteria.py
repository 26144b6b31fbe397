"""Expert importance criteria: each maps routing statistics to scores [L, E], higher = more important.

They take anything with the `RoutingStats` tensor fields (see docs/DESIGN.md), so they can be unit
tested on hand-built statistics. Definitions follow the seeds (002, and the papers it cites):

- frequency   counts_j                        (Lu et al.; reported to do worse than random)
- soft-count  sum_x p_j(x)                     (SEER-MoE; router probability over *all* tokens)
- gate-sum    sum_{x routed to j} g_j(x)        (alpha score, Chen et al.)
- ean         sum_{x routed to j} ||f_j(x)||    (expert activation norm, Jaiswal et al.)
- reap        mean_{x routed to j} g_j(x) ||f_j(x)||  (Lasby et al.; conditional mean, so rare
              experts that matter when used survive)
- reap-sum    sum_{x routed to j} g_j(x) ||f_j(x)|| = count_j x reap_j: the output error of removing j
              summed over *all* tokens (an extra, to tell "REAP's signal" from "REAP ignores frequency")
- importance  top1_j * exp(mean top-1 confidence)  (Koishekenov et al., NLLB-200)
- random      seeded uniform noise (a control)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Criterion = Callable[..., torch.Tensor]


def _f(x: Any) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def frequency(stats: Any, **_: Any) -> torch.Tensor:
    return _f(stats.counts).clone()


def soft_count(stats: Any, **_: Any) -> torch.Tensor:
    return _f(stats.prob_sum).clone()


def gate_sum(stats: Any, **_: Any) -> torch.Tensor:
    return _f(stats.gate_sum).clone()


def ean(stats: Any, **_: Any) -> torch.Tensor:
    return _f(stats.ean_sum).clone()


def reap(stats: Any, **_: Any) -> torch.Tensor:
    return _safe_div(_f(stats.reap_sum), _f(stats.counts))


def reap_sum(stats: Any, **_: Any) -> torch.Tensor:
    return _f(stats.reap_sum).clone()


def importance(stats: Any, **_: Any) -> torch.Tensor:
    top1 = _f(stats.top1_counts)
    confidence = _safe_div(_f(stats.top1_conf_sum), top1)
    return top1 * torch.exp(confidence)


def random_scores(stats: Any, *, seed: int = 0, **_: Any) -> torch.Tensor:
    shape = tuple(_f(stats.counts).shape)
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(shape, generator=generator, dtype=torch.float64)


CRITERIA: dict[str, Criterion] = {
    "frequency": frequency,
    "soft-count": soft_count,
    "gate-sum": gate_sum,
    "ean": ean,
    "reap": reap,
    "reap-sum": reap_sum,
    "importance": importance,
    "random": random_scores,
}


def score(method: str, stats: Any, *, seed: int = 0) -> torch.Tensor:
    """Scores [L, E] (float64, higher = keep) of `method` on `stats`."""
    from evalsuite.errors import InvalidRecipeError

    if method not in CRITERIA:
        raise InvalidRecipeError(f"unknown pruning criterion {method!r}; valid: {', '.join(CRITERIA)}")
    return CRITERIA[method](stats, seed=seed)
