"""The result object every check in :mod:`evalsuite.metrics` returns.

API:
    CheckResult(check, passed, value, threshold, op, detail, baseline=None, data={})
        check      short check name ("collapse", "language", "length_ratio", ...)
        passed     True when the measured value is within tolerance
        value      the measured number (what the report shows as "new value")
        threshold  the tolerance it was compared against
        op         how value is compared with threshold to pass: ">=", "<=", "=="
        detail     one human-readable line naming what was found (offending sentence, lost terms, ...)
        baseline   the baseline's value of the same measure, when there is one
        data       structured extras for reports (lists of offending sentences, per-n values, ...)
    str(result) -> "collapse PASS value=0.000 <= 0.200: ..."

Why one shape for every check: the pytest gate and the reports render all checks the same way (prompt,
check, baseline value, new value, tolerance) without knowing each check's internals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_OPS = {">=", "<=", "==", ">", "<"}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: pass/fail, the measured value, the tolerance and what was found."""

    check: str
    passed: bool
    value: float
    threshold: float
    op: str
    detail: str
    baseline: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"CheckResult.op must be one of {sorted(_OPS)}, got {self.op!r}")
        # Read-only view so a frozen result is not mutated through its extras.
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def __str__(self) -> str:
        state = "PASS" if self.passed else "FAIL"
        base = "" if self.baseline is None else f" (baseline {_fmt(self.baseline)})"
        return (
            f"{self.check} {state} value={_fmt(self.value)} {self.op} {_fmt(self.threshold)}{base}: "
            f"{self.detail}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for reports and stored results."""
        return {
            "check": self.check,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "baseline": self.baseline,
            "detail": self.detail,
            "data": dict(self.data),
        }


def compare(value: float, op: str, threshold: float) -> bool:
    """Apply ``op``; NaN never passes (a metric that could not be computed is not a pass)."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if op == ">=":
        return value >= threshold
    if op == "<=":
        return value <= threshold
    if op == ">":
        return value > threshold
    if op == "<":
        return value < threshold
    if op == "==":
        return value == threshold
    raise ValueError(f"unknown comparison {op!r}")


def _fmt(x: float) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isinf(x) or math.isnan(x):
        return str(x)
    return f"{x:.4g}" if abs(x) < 1e-3 and x != 0 else f"{x:.3f}"


def shorten(text: str, limit: int = 80) -> str:
    """One-line excerpt for ``detail`` strings."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
