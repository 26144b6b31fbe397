"""Terminal output of the gate: one failure block per red check, and a summary per check and recipe.

Why plain text blocks: a CI log is read top to bottom; a failure must say which case, which check,
the baseline value, the new value and the tolerance, and show both responses, without a traceback.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from evalsuite.reporting.outcome import CheckOutcome

__all__ = ["format_failure", "summary_lines", "summary_table"]

_RESPONSE_LIMIT = 1200


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _block(text: str | None) -> str:
    if text is None:
        return "    (none)"
    if not text.strip():
        return "    (empty response)"
    shown = text if len(text) <= _RESPONSE_LIMIT else text[:_RESPONSE_LIMIT] + f" … [{len(text)} chars]"
    return textwrap.indent(shown, "    | ", predicate=lambda _line: True)


def format_failure(outcome: CheckOutcome) -> str:
    """The failure text pytest shows for one red gate item."""
    extra = outcome.extra or {}
    lines = [
        f"evalsuite check failed: {outcome.check}",
        f"  case:      {outcome.case_id}" + (f"  ({extra['file']})" if extra.get("file") else ""),
        f"  recipe:    {outcome.recipe}",
        f"  check:     {outcome.check}",
        f"  baseline:  {_fmt(outcome.baseline_value)}",
        f"  new:       {_fmt(outcome.new_value)}",
        f"  tolerance: {outcome.tolerance}",
        f"  detail:    {outcome.detail}",
    ]
    if extra.get("prompt"):
        lines += ["  prompt:", _block(str(extra["prompt"]))]
    if outcome.baseline_response is not None or outcome.new_response is not None:
        lines += ["  baseline response:", _block(outcome.baseline_response)]
        lines += ["  new response:", _block(outcome.new_response)]
    return "\n".join(lines)


def summary_table(outcomes: Sequence[CheckOutcome]) -> list[tuple[str, str, int, int]]:
    """(recipe, check, passed, failed) rows, recipes and checks in first-seen order."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        counts[(o.recipe, o.check)][0 if o.passed else 1] += 1
    return [(r, c, p, f) for (r, c), (p, f) in counts.items()]


def summary_lines(
    outcomes: Sequence[CheckOutcome], gate: Any = None, *, compression: dict[str, str] | None = None
) -> list[str]:
    """Lines for pytest_terminal_summary: per recipe, pass/fail per check, then the failing cases.

    `compression`: variant label -> what its recipe did (default: from the gate's own records)."""
    lines: list[str] = []
    rows = summary_table(outcomes)
    checks = list(dict.fromkeys(c for _, c, _, _ in rows))
    recipes = list(dict.fromkeys(r for r, _, _, _ in rows))
    cell = {(r, c): (p, f) for r, c, p, f in rows}
    width = max([len("recipe")] + [len(r) for r in recipes])
    cols = [max(len(c), 7) for c in checks]
    lines.append(" ".join(["recipe".ljust(width)] + [c.rjust(w) for c, w in zip(checks, cols, strict=True)]
                          + ["  failed"]))
    for recipe in recipes:
        cells, failed = [], 0
        for check, w in zip(checks, cols, strict=True):
            if (recipe, check) not in cell:
                cells.append("-".rjust(w))
                continue
            p, f = cell[(recipe, check)]
            failed += f
            cells.append((f"{p}/{p + f}" if not f else f"{f} FAIL").rjust(w))
        # per-item count only: the release decision is the suite verdict line (gate/verdict.py)
        lines.append(" ".join([recipe.ljust(width), *cells, "  " + str(failed).rjust(len("failed"))]))
    failures = [o for o in outcomes if not o.passed]
    if failures:
        lines.append("")
        lines.append("failed checks (recipe | case | check | baseline -> new | tolerance):")
        for o in failures:
            lines.append(
                f"  {o.recipe} | {o.case_id} | {o.check} | {_fmt(o.baseline_value)} -> {_fmt(o.new_value)}"
                f" | {o.tolerance}"
            )
    recorded = getattr(gate, "recorded", None) or {}
    if recorded:
        counts = {k: sum(1 for v in recorded.values() if v == k) for k in ("new", "changed", "unchanged")}
        folder = gate.store().folder if hasattr(gate, "store") else ""
        lines.append("")
        lines.append(
            f"baselines recorded in {folder}: {counts['new']} new, {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged"
        )
        changed = [k for k, v in recorded.items() if v == "changed"]
        if changed:
            lines.append("  changed (review the diff): " + ", ".join(changed))
    if compression is None:
        from evalsuite.gate.outcome import describe_record

        records = getattr(gate, "records", None) or {}
        compression = {label: describe_record(record) for label, record in records.items()}
    if compression:
        lines.append("")
        lines.extend(f"{label}: {text}" for label, text in compression.items())
    timing = getattr(gate, "timing", None)
    if timing is not None and (timing.generate_s or timing.load_s):
        lines.append("")
        lines.append(
            f"time: load {timing.load_s:.1f}s, compress {timing.compress_s:.1f}s, "
            f"generate {timing.generate_s:.1f}s ({timing.prompts} prompts), teacher-forced scoring "
            f"{timing.score_s:.1f}s, discriminative {sum(timing.extra.values()):.1f}s"
        )
    return lines
