"""Routing profile: how unevenly the router uses its experts, and how that depends on calibration size.

Why: seed 001 shows uneven usage is not sparsity (Gini 0.53 but only 0.6% dead experts at 100 prompts),
and that 5 prompts make 30% of experts look dead. The profile reports both, with the dead threshold
written next to the count so nobody mistakes "unused on 5 prompts" for "unused".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _as_2d(counts: Any) -> np.ndarray:
    array = np.asarray(counts.detach().cpu().numpy() if hasattr(counts, "detach") else counts, dtype=np.float64)
    return array[None, :] if array.ndim == 1 else array


def gini(values: Any) -> float:
    """Gini coefficient of non-negative usage counts: 0 = perfectly even, (n-1)/n = one expert does all."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    if n == 0 or x.sum() <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * x.sum()) - (n + 1.0) / n)


def entropy_ratio(values: Any) -> float:
    """Entropy of the usage distribution divided by log(n): 1 = uniform, 0 = a single expert."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    total = x.sum()
    if n <= 1 or total <= 0:
        return 1.0 if n == 1 else 0.0
    p = x[x > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(n))


def top_share(values: Any, n: int = 10) -> float:
    """Share of all routed tokens taken by the `n` most used experts."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    total = x.sum()
    return float(x[:n].sum() / total) if total > 0 else 0.0


def dead_mask(counts: Any, threshold: float = 0.01) -> np.ndarray:
    """Experts whose share of a layer's routed tokens is below `threshold` x the uniform share 1/E.

    threshold=0 means strictly unused (count == 0)."""
    c = _as_2d(counts)
    totals = c.sum(axis=1, keepdims=True)
    share = np.divide(c, totals, out=np.zeros_like(c), where=totals > 0)
    if threshold <= 0:
        return c <= 0
    return share < threshold / c.shape[1]


@dataclass
class LayerProfile:
    layer: int
    experts: int
    usage: list[float]  # share of the layer's routed token slots, per expert
    gini: float
    entropy_ratio: float
    top10_share: float
    top10_uniform: float  # the top-10 share a perfectly uniform router would have
    top_quarter_share: float  # share of the top 25% of experts (meaningful when E <= 10)
    dead: list[int]


@dataclass
class RoutingProfile:
    """Per-layer and model-wide routing statistics (JSON-ready via `to_dict`)."""

    layers: list[LayerProfile]
    dead_threshold: float
    tokens: int | None = None
    calibration: str | None = None

    @property
    def dead_count(self) -> int:
        return sum(len(lp.dead) for lp in self.layers)

    @property
    def total_experts(self) -> int:
        return sum(lp.experts for lp in self.layers)

    def summary(self) -> dict[str, float]:
        """Means over layers (what seed 001's table reports) plus the dead-expert count and share."""
        return {
            "gini": float(np.mean([lp.gini for lp in self.layers])),
            "entropy_ratio": float(np.mean([lp.entropy_ratio for lp in self.layers])),
            "top10_share": float(np.mean([lp.top10_share for lp in self.layers])),
            "top10_uniform": float(np.mean([lp.top10_uniform for lp in self.layers])),
            "top_quarter_share": float(np.mean([lp.top_quarter_share for lp in self.layers])),
            "dead": self.dead_count,
            "dead_fraction": self.dead_count / max(1, self.total_experts),
            "dead_threshold": self.dead_threshold,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration,
            "tokens": self.tokens,
            "dead_threshold": self.dead_threshold,
            "dead_rule": f"share of routed tokens < {self.dead_threshold} x uniform share (1/E)"
            if self.dead_threshold > 0
            else "never routed to",
            "summary": self.summary(),
            "layers": [asdict(lp) for lp in self.layers],
        }

    def format(self) -> str:
        """A short plain-text table for terminals and reports."""
        s = self.summary()
        lines = [
            f"routing profile ({self.calibration or 'calibration'}, {self.tokens} tokens)",
            f"  Gini {s['gini']:.3f}  entropy ratio {s['entropy_ratio']:.3f}  "
            f"top-10 share {s['top10_share']:.1%} (uniform {s['top10_uniform']:.1%})  "
            f"top-25% share {s['top_quarter_share']:.1%} (uniform 25%)  "
            f"dead {self.dead_count}/{self.total_experts} (threshold {self.dead_threshold} x uniform share)",
        ]
        for lp in self.layers:
            usage = " ".join(f"{u:.2f}" for u in lp.usage)
            lines.append(f"  layer {lp.layer:>2}: gini {lp.gini:.2f} dead {lp.dead} usage [{usage}]")
        return "\n".join(lines)


def routing_profile(
    counts: Any,
    *,
    dead_threshold: float = 0.01,
    layers: Sequence[int] | None = None,
    tokens: int | None = None,
    calibration: str | None = None,
) -> RoutingProfile:
    """Profile of `counts` ([L, E] top-k selections, e.g. `RoutingStats.counts`)."""
    c = _as_2d(counts)
    dead = dead_mask(c, dead_threshold)
    out = []
    for row in range(c.shape[0]):
        values = c[row]
        total = values.sum()
        usage = (values / total if total > 0 else np.zeros_like(values)).tolist()
        n = c.shape[1]
        out.append(
            LayerProfile(
                layer=int(layers[row]) if layers is not None else row,
                experts=n,
                usage=[round(u, 6) for u in usage],
                gini=gini(values),
                entropy_ratio=entropy_ratio(values),
                top10_share=top_share(values, 10),
                top10_uniform=min(10, n) / n,
                top_quarter_share=top_share(values, max(1, n // 4)),
                dead=[int(i) for i in np.flatnonzero(dead[row])],
            )
        )
    return RoutingProfile(out, dead_threshold, tokens, calibration)


def dead_expert_curve(
    counts_for: Callable[[int], Any],
    prompt_counts: Sequence[int],
    *,
    dead_threshold: float = 0.01,
) -> list[dict[str, float]]:
    """Dead experts as a function of how many calibration prompts were seen.

    `counts_for(n)` returns the [L, E] counts after the first n prompts (`dead_curve_model` below is
    the model-backed version)."""
    rows = []
    for n in prompt_counts:
        c = _as_2d(counts_for(n))
        dead = int(dead_mask(c, dead_threshold).sum())
        rows.append({"prompts": int(n), "dead": dead, "experts": int(c.size), "dead_fraction": dead / c.size})
    return rows


def profile_model(
    model: Any,
    tokenizer: Any,
    calibration: str = "diverse",
    *,
    token_budget: int = 8192,
    dead_threshold: float = 0.01,
    stats: Any = None,
) -> RoutingProfile:
    """Routing profile of a model on a calibration set (reuses the compression statistics cache)."""
    from evalsuite.compression.apply import default_stats_cache
    from evalsuite.compression.calibration import calibration_batches

    if stats is None:
        calib = calibration_batches(calibration, tokenizer, token_budget=token_budget)
        stats = default_stats_cache.get_or_collect(model, calib)
    return routing_profile(  # rows named by decoder layer: dense first layers (DeepSeek-V3) shift the rows
        stats.counts, dead_threshold=dead_threshold, layers=stats.layers, tokens=int(stats.tokens),
        calibration=calibration,
    )


def dead_curve_model(
    model: Any,
    tokenizer: Any,
    calibration: str = "diverse",
    *,
    prompt_counts: Sequence[int] = (5, 10, 25, 50, 100),
    tokens_per_prompt: int = 128,
    dead_threshold: float = 0.01,
    extra_thresholds: Sequence[float] = (),
) -> list[dict[str, float]]:
    """Dead experts after the first n prompts, for each n (seed 001: 30% dead at 5 prompts, 0.6% at 100).

    One prompt = the first `tokens_per_prompt` tokens of one calibration text. Statistics are collected
    once per increment between consecutive counts and summed, so the whole curve costs one pass."""
    import torch

    from evalsuite.compression.apply import collect_stats
    from evalsuite.compression.calibration import calibration_batches

    counts_sorted = sorted(set(int(n) for n in prompt_counts))
    calib = calibration_batches(
        calibration,
        tokenizer,
        token_budget=counts_sorted[-1] * tokens_per_prompt,
        seq_len=tokens_per_prompt,
        num_prompts=counts_sorted[-1],
        windows_per_text=1,
    )
    prefixes = calib.split_by_texts(counts_sorted)
    cumulative: dict[int, Any] = {}
    running = None
    seen = 0
    for n, prefix in zip(counts_sorted, prefixes, strict=True):
        increment = prefix.sequences[seen:]
        seen = len(prefix.sequences)
        if increment:
            part = type(prefix)(prefix.name, increment, prefix.pad_id, prefix.batch_size, len(increment))
            counts = collect_stats(model, part, output_samples=0).counts.to(torch.float64)
            running = counts if running is None else running + counts
        cumulative[n] = running
    rows = dead_expert_curve(lambda n: cumulative[n], counts_sorted, dead_threshold=dead_threshold)
    for row, prefix in zip(rows, prefixes, strict=True):
        row["prompts_available"] = prefix.num_texts
        row["tokens"] = prefix.tokens
        for threshold in extra_thresholds:  # same counts, other dead rules (no extra pass)
            row[f"dead@{threshold:g}"] = int(dead_mask(cumulative[row["prompts"]], threshold).sum())
    return rows
