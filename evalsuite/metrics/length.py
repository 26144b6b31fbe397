"""Answer-length ratio against the baseline response.

API:
    length_ratio(text, baseline, *, unit="chars") -> float      len(text) / len(baseline)
    check_length_ratio(text, baseline, *, min_ratio=0.5, max_ratio=3.0, unit="chars") -> CheckResult
        value = ratio; threshold/op = min_ratio ">=" (or max_ratio "<=" when the answer grew too much).

Why: a pruned model cut a 1,119-character worked solution to 206 characters (ratio 0.18) and passed
every length-floor test; only a comparison with the baseline's own length catches that.
"""

from __future__ import annotations

import math

from evalsuite.metrics._text import tokenize
from evalsuite.metrics.result import CheckResult


def _size(text: str, unit: str) -> int:
    if unit == "chars":
        return len(text.strip())
    if unit == "tokens":
        return len(tokenize(text))
    raise ValueError(f"unit must be 'chars' or 'tokens', got {unit!r}")


def length_ratio(text: str, baseline: str, *, unit: str = "chars") -> float:
    """len(text)/len(baseline); 1.0 when both are empty, inf when only the baseline is empty."""
    new, base = _size(text, unit), _size(baseline, unit)
    if base == 0:
        return 1.0 if new == 0 else math.inf
    return new / base


def check_length_ratio(
    text: str,
    baseline: str,
    *,
    min_ratio: float = 0.5,
    max_ratio: float = 3.0,
    unit: str = "chars",
) -> CheckResult:
    """Fail when the answer shrank (or ballooned) too much relative to the baseline answer."""
    ratio = length_ratio(text, baseline, unit=unit)
    new, base = _size(text, unit), _size(baseline, unit)
    if ratio < min_ratio:
        passed, threshold, op = False, min_ratio, ">="
        detail = f"answer shrank to {ratio:.0%} of the baseline ({new} vs {base} {unit})"
    elif ratio > max_ratio:
        passed, threshold, op = False, max_ratio, "<="
        detail = f"answer grew to {ratio:.0%} of the baseline ({new} vs {base} {unit})"
    else:
        passed, threshold, op = True, min_ratio, ">="
        detail = f"length {new} vs baseline {base} {unit} (ratio {ratio:.2f})"
    return CheckResult(
        "length_ratio", passed, ratio, threshold, op, detail, baseline=1.0,
        data={"new": new, "baseline": base, "unit": unit, "min_ratio": min_ratio, "max_ratio": max_ratio},
    )
