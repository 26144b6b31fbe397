"""Multiple-choice regression as a paired test: exact McNemar on per-item correctness.

API:
    McNemar(n, b, c, p_value, base_accuracy, new_accuracy, alternative)
        b = items the baseline got right and the new model wrong; c = the reverse.
    mcnemar_exact(base_correct, new_correct, *, alternative="greater") -> McNemar
        base/new: equal-length sequences of bools (or 0/1), or mappings item id -> bool (same keys),
        or two ints: the discordant counts b (right->wrong) and c (wrong->right) directly.
        float(result) is the p-value.
        alternative "greater": H1 the new model is worse (b > c); "two-sided": any difference.
    check_mc_regression(base_correct, new_correct, *, alpha=0.05, alternative="greater",
                        max_accuracy_drop=None) -> CheckResult
        value = p-value, threshold = alpha; fails when p < alpha and the new model is worse
        (or when the accuracy drop exceeds max_accuracy_drop, if given). op ">=".

Why paired: two accuracies over the same items differ by noise the unpaired view cannot size; only the
discordant items (b, c) carry the evidence, and under H0 b ~ Binomial(b + c, 1/2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evalsuite.metrics.result import CheckResult


@dataclass(frozen=True)
class McNemar:
    n: int
    b: int
    c: int
    p_value: float
    base_accuracy: float
    new_accuracy: float
    alternative: str

    def __float__(self) -> float:
        return self.p_value


def _align(
    base: Sequence[bool] | Mapping[str, bool], new: Sequence[bool] | Mapping[str, bool]
) -> tuple[list[bool], list[bool]]:
    if isinstance(base, Mapping) or isinstance(new, Mapping):
        if not (isinstance(base, Mapping) and isinstance(new, Mapping)):
            raise ValueError("give both results as mappings (item id -> correct) or both as sequences")
        if set(base) != set(new):
            only_b = sorted(set(base) - set(new))[:5]
            only_n = sorted(set(new) - set(base))[:5]
            raise ValueError(f"item ids differ: only in baseline {only_b}, only in new {only_n}")
        keys = sorted(base)
        return [bool(base[k]) for k in keys], [bool(new[k]) for k in keys]
    if len(base) != len(new):
        raise ValueError(f"baseline has {len(base)} items but the new run has {len(new)}")
    return [bool(x) for x in base], [bool(x) for x in new]


def mcnemar_exact(
    base_correct: Sequence[bool] | Mapping[str, bool] | int,
    new_correct: Sequence[bool] | Mapping[str, bool] | int,
    *,
    alternative: str = "greater",
) -> McNemar:
    """Exact (binomial) McNemar test on paired per-item correctness."""
    from scipy.stats import binomtest

    if alternative not in {"greater", "two-sided", "less"}:
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")
    if isinstance(base_correct, int) and isinstance(new_correct, int):
        b, c = base_correct, new_correct  # discordant counts given directly
        if b < 0 or c < 0:
            raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
        n, acc_b, acc_n = b + c, math.nan, math.nan
    else:
        base, new = _align(base_correct, new_correct)
        n = len(base)
        b = sum(1 for x, y in zip(base, new, strict=True) if x and not y)
        c = sum(1 for x, y in zip(base, new, strict=True) if y and not x)
        acc_b = sum(base) / n if n else 0.0
        acc_n = sum(new) / n if n else 0.0
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative=alternative).pvalue)
    return McNemar(n, b, c, min(1.0, p), acc_b, acc_n, alternative)


def check_mc_regression(
    base_correct: Sequence[bool] | Mapping[str, bool],
    new_correct: Sequence[bool] | Mapping[str, bool],
    *,
    alpha: float = 0.05,
    alternative: str = "greater",
    max_accuracy_drop: float | None = None,
) -> CheckResult:
    """Fail when the new model is significantly worse than the baseline on the same items."""
    r = mcnemar_exact(base_correct, new_correct, alternative=alternative)
    worse = r.b > r.c
    significant = r.p_value < alpha and (worse or alternative == "two-sided")
    drop = r.base_accuracy - r.new_accuracy
    too_big = max_accuracy_drop is not None and drop > max_accuracy_drop
    passed = not significant and not too_big
    detail = (f"accuracy {r.base_accuracy:.3f} -> {r.new_accuracy:.3f} on {r.n} items; "
              f"{r.b} right->wrong, {r.c} wrong->right; exact McNemar ({alternative}) p={r.p_value:.4g}")
    detail += " < " if r.p_value < alpha else " >= "
    detail += f"alpha {alpha}"
    if too_big:
        detail += f"; accuracy drop {drop:.3f} > {max_accuracy_drop}"
    return CheckResult("mc_mcnemar", passed, r.p_value, alpha, ">=", detail, baseline=r.base_accuracy,
                       data={"n": r.n, "b": r.b, "c": r.c, "base_accuracy": r.base_accuracy,
                             "new_accuracy": r.new_accuracy, "alternative": alternative})
