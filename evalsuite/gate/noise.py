"""The noise floor: how far each check of each case moves when the *unmodified* model is perturbed
benignly (gate/perturb.py), recorded with the baselines and used to judge a variant.

Why: measured on the embedded model, weight noise of 1e-2 x rms leaves perplexity and teacher-forced
KL unchanged yet failed 9-10 of 249 items, and 3e-2 flagged more cases than a real 12.5% pruning;
noise concentrates on near-tie tokens, near-degenerate baselines and values just past a fixed
threshold. A release gate that fires on noise gets switched off. So:

- every check outcome is reduced to one *deviation* from the baseline (higher = worse, in the check's
  own units; `DEVIATIONS`);
- a case's *benign envelope* for a check is the largest deviation any replicate produced, widened by a
  relative margin (`edge`); a failing check whose deviation lies inside it is excused (the absolute
  threshold still applies first: the floor only ever excuses, it never adds a failure);
- a case whose greedy output flips under a replicate is *fragile*; it is reported by name with the
  replicate's response as evidence, and cannot fail a release on its own (gate/verdict.py).

Storage: ``baselines/<fingerprint>/<suite>/_noise.json`` (one file per suite, next to the case files;
case ids cannot start with '_', so it never clashes with one), written atomically, merged with the
cases of the suite that were not recorded this time. Each case entry carries the hashes of the case,
the settings and the baseline response it was measured against: a floor measured for another baseline
is ignored for that case (reported as stale), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalsuite.gate.outcome import CheckOutcome

__all__ = ["DEVIATIONS", "FLOOR_FILE", "CaseFloor", "NoiseFloor", "deviation", "edge", "response_hash"]

FLOOR_FILE = "_noise.json"
FORMAT = 1


def _num(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _diversity(o: CheckOutcome) -> float:
    base, new = _num(o.baseline_value), _num(o.new_value)
    return max(0.0, 1.0 - new / base) if base > 0 else 0.0


def _length(o: CheckOutcome) -> float:
    ratio = _num(o.extra.get("ratio"), 1.0)
    return abs(math.log(ratio)) if ratio > 0 else math.inf


def _content(o: CheckOutcome) -> float:
    return max(0.0, 1.0 - _num(o.new_value, 1.0)) + len(o.extra.get("lost_keywords") or [])


#: check name -> deviation of an outcome from its baseline (>= 0, higher = worse). A check not listed
#: (a check added later) falls back to 0 when it passed and 1 when it failed.
DEVIATIONS: dict[str, Callable[[CheckOutcome], float]] = {
    "collapse": lambda o: _num(o.new_value),
    "language": lambda o: max(0.0, _num(o.new_value) - _num(o.baseline_value)),
    "length_ratio": _length,
    "content": _content,
    "diversity": _diversity,
    "divergence": lambda o: _num(o.new_value),
    "chrf": lambda o: max(0.0, _num(o.baseline_value) - _num(o.new_value)),
    "answer": lambda o: float(bool(o.baseline_value) and not o.new_value),
    "code": lambda o: max(0.0, _num(o.baseline_value) - _num(o.new_value)),
    "perplexity": lambda o: max(0.0, _num(o.extra.get("ratio"), 1.0) - 1.0),
    "mc": lambda o: max(0.0, _num(o.baseline_value) - _num(o.new_value)),
}


def deviation(o: CheckOutcome) -> float:
    """How far ``o`` is from its baseline, for the envelope comparison."""
    fn = DEVIATIONS.get(o.check)
    value = fn(o) if fn else float(not o.passed)
    return round(value, 6) if math.isfinite(value) else 1e9


def edge(deviations: Sequence[float], margin: float) -> float:
    """The benign envelope: the largest benign deviation, widened by ``margin`` (relative)."""
    return max(deviations, default=0.0) * (1.0 + margin)


def response_hash(stored: Any) -> str:
    """Which baseline a case's floor was measured against: its response ids (generative) or its stored
    values (perplexity / multiple choice)."""
    data = stored.data
    what = data.get("response_ids") if "response_ids" in data else data.get("metrics")
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CaseFloor:
    """One case's floor: per check, each replicate's deviation and absolute verdict; greedy flips."""

    case_hash: str
    settings_hash: str
    response: str  # response_hash of the baseline it was measured against
    checks: dict[str, dict[str, list]] = field(default_factory=dict)  # check -> {deviation, passed}
    flips: dict[str, str] = field(default_factory=dict)  # replicate id -> its (different) greedy response

    @property
    def fragile(self) -> bool:
        return bool(self.flips)

    def to_dict(self) -> dict[str, Any]:
        return {"case_hash": self.case_hash, "settings_hash": self.settings_hash, "response": self.response,
                "flips": self.flips, "checks": self.checks}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseFloor:
        return cls(str(data["case_hash"]), str(data["settings_hash"]), str(data["response"]),
                   {str(k): {"deviation": [float(x) for x in v["deviation"]], "passed": [bool(x) for x in v["passed"]]}
                    for k, v in dict(data.get("checks", {})).items()},
                   {str(k): str(v) for k, v in dict(data.get("flips", {})).items()})

    def judge(self, outcome: CheckOutcome, margin: float, replicates: list[str],
              suite_edge: float | None = None) -> CheckOutcome:
        """The outcome judged against this case's envelope (see the module docstring); ``suite_edge`` (the
        envelope over every case of the suite) travels with it for the verdict's severity rule."""
        benign = self.checks.get(outcome.check)
        if benign is None:
            return outcome
        dev = deviation(outcome)
        limit = edge(benign["deviation"], margin)
        info = {"replicates": len(benign["deviation"]), "deviation": dev, "edge": round(limit, 6),
                "benign_loo": list(self.benign_failures(outcome.check, margin)), "absolute_passed": outcome.passed,
                "fragile": self.fragile}
        if suite_edge is not None:
            info["suite_edge"] = round(suite_edge, 6)
        if self.fragile:
            rid, text = next(iter(self.flips.items()))
            info["fragile_evidence"] = {"flipped_under": sorted(self.flips), "example_replicate": rid,
                                        "example_response": text}
        extra = {**outcome.extra, "floor": info}
        if outcome.passed or dev > limit:
            return replace(outcome, extra=extra)
        note = (f"; excused: deviation {dev:g} is inside the benign noise envelope {limit:g} "
                f"(worst of {len(replicates)} benign replicates x (1 + margin {margin:g}))")
        return replace(outcome, passed=True, detail=outcome.detail + note, extra=extra)

    def benign_failures(self, check: str, margin: float) -> tuple[int, int]:
        """Leave-one-out failures of the replicates themselves: replicate r judged against the envelope of
        the others, exactly as a variant is judged against all of them. Returns (failures, trials)."""
        benign = self.checks.get(check)
        if benign is None:
            return 0, 0
        devs, passed = benign["deviation"], benign["passed"]
        fails = sum(
            1 for r, (d, ok) in enumerate(zip(devs, passed, strict=True))
            if not ok and d > edge(devs[:r] + devs[r + 1:], margin)
        )
        return fails, len(devs)


@dataclass
class NoiseFloor:
    """The floor of one suite (see the module docstring for where it lives)."""

    path: Path
    replicates: list[dict[str, Any]] = field(default_factory=list)  # {id, mean_kl}
    cases: dict[str, CaseFloor] = field(default_factory=dict)
    _worst: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def replicate_ids(self) -> list[str]:
        return [str(r["id"]) for r in self.replicates]

    @classmethod
    def load(cls, path: Path) -> NoiseFloor | None:
        """The floor at ``path``; None when there is none (today's absolute checks apply).

        A damaged file raises BaselineError: a floor that cannot be read must not silently turn the
        relaxed verdicts back into strict ones (or the other way round) without the user knowing."""
        from evalsuite.errors import BaselineError

        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            return cls(path, [dict(r) for r in data["replicates"]],
                       {str(k): CaseFloor.from_dict(v) for k, v in dict(data["cases"]).items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BaselineError(
                f"corrupt noise floor {path}: {exc}; restore it from version control or re-record it with "
                "`evalsuite record` (noise_replicates > 0)"
            ) from None

    def save(self) -> Path:
        from evalsuite.gate.baselines import dumps_diffable
        from evalsuite.io import atomic_write_text

        payload = {"format": FORMAT, "replicates": self.replicates,
                   "cases": {k: self.cases[k].to_dict() for k in sorted(self.cases)}}
        return atomic_write_text(self.path, dumps_diffable(payload) + "\n")

    def suite_edge(self, check: str, margin: float) -> float:
        """The envelope of ``check`` over every case of the suite: the largest deviation benign noise
        produced anywhere. A stable case failing beyond it is a regression no benign replicate of any
        case came near (gate/verdict.py's severity rule). Asked once per judged outcome, so the maximum
        over the suite is computed once per check (the cases of a loaded floor do not change)."""
        if check not in self._worst:
            self._worst[check] = max((d for case in self.cases.values()
                                      for d in case.checks.get(check, {}).get("deviation", [])), default=0.0)
        return edge([self._worst[check]], margin)

    def entry(self, case_id: str, *, case_hash: str, settings_hash: str, response: str) -> CaseFloor | str:
        """The case's floor, or why there is none usable (a sentence for the report)."""
        found = self.cases.get(case_id)
        if found is None:
            return "no noise floor recorded for this case"
        if (found.case_hash, found.settings_hash, found.response) != (case_hash, settings_hash, response):
            return "noise floor is stale (recorded for another case text, settings or baseline response); re-record"
        return found
