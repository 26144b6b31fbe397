"""Code pass@k with the unbiased estimator of Chen et al. (2021).

API:
    pass_at_k(n, c, k) -> float            1 - C(n-c, k) / C(n, k), n samples of which c passed
    mean_pass_at_k(counts, k) -> float     mean over problems; counts = [(n, c), ...]
    check_pass_at_k(counts, *, k=1, baseline_counts=None, baseline_value=None, max_drop=0.05)
        -> CheckResult        value = mean pass@k, threshold = baseline - max_drop, op ">=".

Why the estimator: with n > k samples per problem, 1 - C(n-c,k)/C(n,k) is unbiased, while the naive
"any of the first k passed" has high variance and the c/n plug-in is biased for k > 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.metrics.result import CheckResult


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem, computed as a stable product (no huge binomials)."""
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems."""
    if not counts:
        raise ValueError("no problems given")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def check_pass_at_k(
    counts: Sequence[tuple[int, int]],
    *,
    k: int = 1,
    baseline_counts: Sequence[tuple[int, int]] | None = None,
    baseline_value: float | None = None,
    max_drop: float = 0.05,
) -> CheckResult:
    """Fail when pass@k dropped more than ``max_drop`` (absolute) below the baseline's."""
    value = mean_pass_at_k(counts, k)
    base = baseline_value
    if base is None and baseline_counts is not None:
        base = mean_pass_at_k(baseline_counts, k)
    if base is None:
        raise ValueError("give baseline_counts or baseline_value to compare pass@k against")
    thr = base - max_drop
    passed = value >= thr
    detail = f"pass@{k} {value:.3f} vs baseline {base:.3f} over {len(counts)} problems (min {thr:.3f})"
    return CheckResult(f"pass@{k}", passed, value, thr, ">=", detail, baseline=base,
                       data={"k": k, "counts": [list(x) for x in counts]})
