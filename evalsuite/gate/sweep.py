"""Ratio sweep: one compression method over a list of ratios, and the largest ratio that still passes.

Why: the seeds recommend staged pruning (2/5/10/15%); what a user wants to know before a release is how
far a method can go on their suite. A sweep is ordinary gate parametrisation: every (method, ratio)
becomes one recipe variant (`check[freq:0.25]` items), judged by the suite verdict (gate/verdict.py);
this module expands the sweep into recipes and summarises the verdicts per method.

"Largest passing ratio" is the largest swept ratio r such that every swept ratio <= r passes (a ratio
that passes above a failing one is reported as non-monotone, never as the answer: the gate cannot vouch
for a ratio whose smaller neighbour failed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalsuite.errors import SettingError
from evalsuite.gate.outcome import CheckOutcome
from evalsuite.gate.verdict import SuiteVerdict

__all__ = ["SweepMethod", "SweepPoint", "sweep_lines", "sweep_recipes", "sweep_summary"]


def _split(method: str) -> tuple[str, str]:
    """"freq@english,grouping=hc" -> ("freq", "@english,grouping=hc"): the ratio goes after the method."""
    cut = min((i for i in (method.find("@"), method.find(",")) if i >= 0), default=len(method))
    return method[:cut].strip(), method[cut:].strip()


def sweep_recipes(methods: Sequence[str], ratios: Sequence[float]) -> dict[str, tuple[str, float]]:
    """recipe text -> (method, ratio) for every swept pair, in method then ratio order."""
    if methods and not ratios:
        raise SettingError("sweep_ratios", "is empty; give the ratios to sweep, e.g. [0.125, 0.25, 0.5]")
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r < 1:
            raise SettingError("sweep_ratios", f"got {r!r}; each ratio is the fraction of experts to remove, 0 < r < 1")
    out: dict[str, tuple[str, float]] = {}
    for method in methods:
        head, tail = _split(method)
        if not head or ":" in head:
            raise SettingError("sweep", f"got {method!r}; give a method without an amount (e.g. reap, "
                               "freq@english, merge-cka-uniform), the ratios come from sweep_ratios")
        for r in sorted(set(ratios)):
            out[f"{head}:{r:g}{tail}"] = (method, float(r))
    return out


@dataclass
class SweepPoint:
    """One swept ratio: its verdict, failing items per check, and the worst perplexity ratio."""

    ratio: float
    label: str
    passed: bool
    failures: dict[str, int] = field(default_factory=dict)
    perplexity_ratio: float | None = None


@dataclass
class SweepMethod:
    method: str
    points: list[SweepPoint]

    @property
    def largest_passing(self) -> float | None:
        """The largest ratio below which (inclusive) every swept ratio passes."""
        best = None
        for p in sorted(self.points, key=lambda p: p.ratio):
            if not p.passed:
                break
            best = p.ratio
        return best

    @property
    def non_monotone(self) -> list[float]:
        """Ratios that pass above a failing smaller one (reported, never taken as the answer)."""
        failed = [p.ratio for p in self.points if not p.passed]
        return sorted(p.ratio for p in self.points if p.passed and failed and p.ratio > min(failed))


def sweep_summary(
    recipes: dict[str, tuple[str, float]], labels: dict[str, str], verdicts: Sequence[SuiteVerdict],
    outcomes: Sequence[CheckOutcome],
) -> list[SweepMethod]:
    """Per method, the swept points; ``labels`` maps recipe text -> variant label (the recipe's short form)."""
    by_label = {v.variant: v for v in verdicts}
    methods: dict[str, list[SweepPoint]] = {}
    for text, (method, ratio) in recipes.items():
        label = labels[text]
        verdict = by_label.get(label)
        if verdict is None:
            continue  # not run (deselected, or an error before any check)
        mine = [o for o in outcomes if o.recipe == label]
        failures: dict[str, int] = {}
        for o in mine:
            failures[o.check] = failures.get(o.check, 0) + (not o.passed)
        ppl = [float(o.extra["ratio"]) for o in mine if o.check == "perplexity" and _finite(o.extra.get("ratio"))]
        methods.setdefault(method, []).append(
            SweepPoint(ratio, label, verdict.passed, failures, max(ppl) if ppl else None))
    return [SweepMethod(m, sorted(points, key=lambda p: p.ratio)) for m, points in methods.items()]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sweep_lines(methods: Sequence[SweepMethod]) -> list[str]:
    """The sweep for the terminal summary: per method, each ratio's verdict and the largest that passes."""
    lines = []
    for m in methods:
        best = m.largest_passing
        head = f"sweep {m.method}: largest passing ratio {best:g}" if best is not None else \
            f"sweep {m.method}: no swept ratio passes"
        lines.append(head + (f" (non-monotone: {', '.join(f'{r:g}' for r in m.non_monotone)} pass above a failing "
                             "ratio)" if m.non_monotone else ""))
        for p in m.points:
            failing = ", ".join(f"{c} {n}" for c, n in p.failures.items() if n) or "none"
            ppl = f"{p.perplexity_ratio:.3f}" if p.perplexity_ratio is not None else "-"
            verdict = "PASS" if p.passed else "FAIL"
            lines.append(f"  {p.ratio:<6g} {verdict}  perplexity ratio {ppl}  failing: {failing}")
    return lines
