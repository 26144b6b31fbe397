"""The suite-level verdict: PASS/FAIL per model variant as a statistical statement with a stated
false-alarm rate, computed from the item outcomes and the noise floor (gate/noise.py).

Why: a per-item rule (any failing item fails the release) has no stated false-alarm rate; measured on
the embedded model, noise alone failed 9-27 of 249 items. With a noise floor, each check family (one
check name: content, diversity, perplexity, ...) asks: does the variant fail more of the suite's cases
than benign replicates of the unmodified model do?

- variant: x of n cases fail the family's check (after the floor's envelope excused benign deviations);
- benign: each replicate judged leave-one-out against the envelope of the other replicates (exactly
  how a variant is judged against all of them): y failures in t replicate x case trials;
- exact one-sided Fisher test on [[x, n - x], [y, t - y]] (H0: the variant is just another benign
  replicate); the family FAILS when p < alpha / m, m = number of families judged (Bonferroni), so the
  suite's false-alarm rate under H0 is at most ``alpha`` (the `verdict_alpha` setting, default 0.05);
- one *fragile* case (its greedy output flips under benign noise) never fails a family on its own, however
  small the p-value; fragile cases are listed with their evidence (the user can fix, re-seed or drop them);
- a failing case with no usable floor (none recorded, or stale) keeps today's rule: any failure fails.
- severity: with y = 0 the smallest p for one failing case is 1/(K+1) (0.11 at K = 8), so the test alone
  cannot fail a family on one or two cases, however badly they regress. A *stable* (not fragile) failing
  case whose deviation lies beyond the family's suite envelope (the largest deviation benign noise
  produced on *any* case of the suite, x (1 + noise_margin)) therefore fails the family by itself: no
  benign replicate of any case came near it. This rule has no exact rate; benchmarks/verdicts.py measures
  the realised false-alarm rate of both rules together.

Replicate trials of one case are not independent draws, so the test is exact for the counts it is
given but the stated rate is an approximation; benchmarks/verdicts.py measures the realised rate.
Every failing item stays visible as evidence (both responses); the verdict decides the exit status
only in `verdict = "suite"` mode (default "auto": suite mode when a noise floor exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evalsuite.gate.outcome import CheckOutcome

__all__ = ["FamilyVerdict", "SuiteVerdict", "suite_verdicts", "verdict_lines"]


@dataclass
class FamilyVerdict:
    """One check family of one variant: the variant's failures against the benign replicates'."""

    check: str
    cases: int
    failures: int
    benign_failures: int
    benign_trials: int
    p_value: float | None
    alpha: float  # this family's share of the suite alpha
    failed: bool
    failing_cases: list[str] = field(default_factory=list)
    fragile_failures: list[str] = field(default_factory=list)
    severe_cases: list[str] = field(default_factory=list)  # stable cases beyond the suite envelope
    note: str = ""

    def describe(self) -> str:
        text = f"{self.check}: {self.failures}/{self.cases} cases failed"
        if self.benign_trials:
            p = f"{self.p_value:.2g}" if self.p_value is not None else "-"
            text += f" vs benign {self.benign_failures}/{self.benign_trials} (p={p}, alpha {self.alpha:.2g})"
        if self.fragile_failures:
            text += f"; fragile: {', '.join(self.fragile_failures)}"
        return text + (f"; {self.note}" if self.note else "")


@dataclass
class SuiteVerdict:
    """PASS/FAIL of one variant, how it was decided, and the fragile cases involved."""

    variant: str
    passed: bool
    mode: str  # "suite" (exact test against the floor) | "items" (any failing item fails)
    alpha: float
    families: list[FamilyVerdict]
    fragile: dict[str, dict[str, Any]] = field(default_factory=dict)  # case key -> evidence
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fisher_greater(x: int, n: int, y: int, t: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[x, n - x], [y, t - y]], alternative="greater").pvalue)


def _family(check: str, outcomes: list[CheckOutcome], alpha: float, severity: bool) -> FamilyVerdict:
    failing = [o for o in outcomes if not o.passed]
    fragile = [o.case_id for o in failing if o.extra.get("floor", {}).get("fragile")]
    counts = [o.extra.get("floor", {}).get("benign_loo") or (0, 0) for o in outcomes]
    y, t = sum(c[0] for c in counts), sum(c[1] for c in counts)
    fv = FamilyVerdict(check, len(outcomes), len(failing), y, t, None, alpha, False,
                       [o.case_id for o in failing], fragile)
    if not failing:
        return fv
    # a failing case without a usable floor (none recorded, or stale) adds no benign trials: judging it
    # by the others' trials would let it pass unseen, so it keeps the items rule
    unfloored = [o.case_id for o in failing if not (o.extra.get("floor", {}).get("benign_loo") or (0, 0))[1]]
    if unfloored:
        fv.failed, fv.note = True, f"no usable noise floor for {', '.join(unfloored)}: any failure there fails"
        return fv
    fv.p_value = _fisher_greater(len(failing), len(outcomes), y, t)
    significant = fv.p_value < alpha
    fv.failed = significant and (len(fragile) < len(failing) or len(failing) > 1)
    if significant and not fv.failed:
        fv.note = "only one fragile case failed: it cannot fail a release on its own"
    severe = [o for o in failing if _beyond_suite_envelope(o)] if severity else []
    if severe:
        fv.failed = True
        worst = max(severe, key=lambda o: o.extra["floor"]["deviation"])
        fv.severe_cases = [o.case_id for o in severe]
        fv.note = "; ".join(filter(None, [fv.note, (
            f"{len(severe)} stable case(s) beyond anything benign noise did to any case: {worst.case_id} "
            f"deviates {worst.extra['floor']['deviation']:g} (suite envelope {worst.extra['floor']['suite_edge']:g})"
        )]))
    return fv


def _beyond_suite_envelope(o: CheckOutcome) -> bool:
    floor = o.extra.get("floor", {})
    limit = floor.get("suite_edge")
    return limit is not None and not floor.get("fragile") and floor.get("deviation", 0.0) > limit


def suite_verdicts(outcomes: Sequence[CheckOutcome], *, alpha: float, mode: str = "auto",
                   severity: bool = True) -> list[SuiteVerdict]:
    """One verdict per variant, from the outcomes alone: each outcome judged against a floor carries its
    case's leave-one-out benign (failures, trials) in ``extra["floor"]["benign_loo"]`` (so the verdict can
    be computed wherever the reports arrive, e.g. the pytest-xdist controller). ``severity`` enables the
    suite-envelope rule (module docstring)."""
    by_variant: dict[str, dict[str, list[CheckOutcome]]] = {}
    for o in outcomes:
        by_variant.setdefault(o.recipe, {}).setdefault(o.check, []).append(o)
    verdicts = []
    for variant, families in by_variant.items():
        flat = [o for group in families.values() for o in group]
        has_floor = any("replicates" in o.extra.get("floor", {}) for o in flat)
        fragile = {o.case_id: o.extra["floor"]["fragile_evidence"] for o in flat
                   if o.extra.get("floor", {}).get("fragile")}
        use_suite = mode == "suite" or (mode == "auto" and has_floor)
        if not use_suite or not has_floor:
            failed = [o for o in flat if not o.passed]
            why = ("no noise floor recorded: any failing item fails the suite (record one with "
                   "noise_replicates > 0)" if not has_floor else "verdict = items: any failing item fails the suite")
            fams = [FamilyVerdict(c, len(g), sum(not o.passed for o in g), 0, 0, None, alpha,
                                  any(not o.passed for o in g), [o.case_id for o in g if not o.passed])
                    for c, g in families.items()]
            verdicts.append(SuiteVerdict(variant, not failed, "items", alpha, fams, fragile, why))
            continue
        share = alpha / max(1, len(families))
        fams = [_family(check, group, share, severity) for check, group in families.items()]
        verdicts.append(SuiteVerdict(
            variant, not any(f.failed for f in fams), "suite", alpha, fams, fragile,
            f"exact one-sided Fisher test per check family against the benign replicates (leave-one-out), "
            f"suite alpha {alpha:g} split over {len(fams)} families (Bonferroni)"
            + ("; a stable case beyond the suite's benign envelope fails its family" if severity else ""),
        ))
    return verdicts


def verdict_lines(verdicts: Sequence[SuiteVerdict]) -> list[str]:
    """The verdicts for the terminal summary: PASS/FAIL, why, the failing families, the fragile cases."""
    lines = []
    fragile: dict[str, dict[str, Any]] = {}
    for v in verdicts:
        lines.append(f"{v.variant}: suite verdict {'PASS' if v.passed else 'FAIL'} ({v.mode}; {v.note})")
        for f in v.families:
            if f.failures:
                lines.append(f"  {'FAIL' if f.failed else 'ok  '} {f.describe()}")
        fragile.update(v.fragile)
    for case, ev in fragile.items():  # a property of the case and the floor: listed once, not per variant
        example = str(ev.get("example_response", ""))[:80]
        lines.append(f"fragile case {case}: greedy output flips under {len(ev.get('flipped_under', []))} benign "
                     f"replicate(s), e.g. {ev.get('example_replicate')}: {example!r}")
    return lines
