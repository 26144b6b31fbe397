"""The result of one check on one prompt case under one compression recipe: the gate's one verdict type.

Why a shared dataclass owned by the gate: the gate's checks produce these, and every reporter (terminal
summary, HTML report, JSON artifacts) consumes them, so both sides agree on one plain record instead of
ad-hoc dicts; reporting imports the gate, never the other way round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CheckOutcome", "describe_record"]


@dataclass(frozen=True)
class CheckOutcome:
    """One (recipe, case, check) verdict with enough context to explain a failure without rerunning.

    `baseline_value`, `new_value` and `tolerance` are whatever the check measures (a float, an int,
    a string, a list ...); reporters render them with `repr`-like formatting. `baseline_response` /
    `new_response` are the generated texts when the check is generative, else `None`.
    """

    recipe: str
    case_id: str
    check: str
    passed: bool
    baseline_value: Any = None
    new_value: Any = None
    tolerance: Any = None
    baseline_response: str | None = None
    new_response: str | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for JSON artifacts."""
        return asdict(self)


def describe_record(record: Any) -> str:
    """One line of what a recipe did, from its compression record."""
    if not isinstance(record, dict) or not isinstance(record.get("layers"), list):
        return "compressed"
    rows = [r for r in record["layers"] if isinstance(r, dict)]
    removed = sum(len(r.get("removed", [])) for r in rows)
    total = sum(int(r.get("experts", 0)) for r in rows)
    calibration = record.get("calibration")
    if isinstance(calibration, dict):
        calibration = calibration.get("name")
    text = f"removed {removed} of {total} experts over {len(rows)} layers"
    return text + (f", calibrated on {calibration}" if calibration else "")
