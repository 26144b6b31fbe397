"""Noise floor: benign perturbations, the envelope a variant is judged against, the suite verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.errors import BaselineError, SettingError
from evalsuite.gate.noise import CaseFloor, NoiseFloor, deviation, edge
from evalsuite.gate.outcome import CheckOutcome
from evalsuite.gate.perturb import apply_perturbation, parse_perturbation, replicate_schedule
from evalsuite.gate.verdict import suite_verdicts, verdict_lines


# -- perturbations -----------------------------------------------------------------------------------
def _weights(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("spec", ["noise:0.01:3", "bf16", "fp16", "resave"])
def test_perturbation_is_undone_exactly(varied_moe, spec: str):
    model = varied_moe.model
    before = _weights(model)
    handle = apply_perturbation(model, parse_perturbation(spec))
    during = _weights(model)
    handle.restore()
    after = _weights(model)
    assert all(before[n].equal(after[n]) for n in before)
    changed = [n for n in before if not before[n].equal(during[n])]
    if spec == "resave":  # fp32 safetensors round trip: bit-identical
        assert not changed
    else:
        assert changed


def test_weight_noise_has_the_stated_scale_and_seed(varied_moe):
    model = varied_moe.model
    name, weight = next((n, p) for n, p in model.named_parameters() if ".experts." in n and p.dim() == 3)
    base = weight.detach().clone()
    with apply_perturbation(model, parse_perturbation("noise:0.03:5")):
        delta = weight.detach() - base
        first = weight.detach().clone()
    rms = base.pow(2).mean().sqrt()
    assert 0.025 < float(delta.pow(2).mean().sqrt() / rms) < 0.035
    with apply_perturbation(model, parse_perturbation("noise:0.03:5")):
        assert weight.detach().equal(first)  # fixed seed: the same replicate every time
    norms = [p for n, p in model.named_parameters() if p.dim() == 1]
    saved = [p.detach().clone() for p in norms]
    with apply_perturbation(model, parse_perturbation("noise:0.03:5")):
        assert all(p.equal(s) for p, s in zip(norms, saved, strict=True))  # norms and biases untouched


@pytest.mark.parametrize("bad", ["noise:0:1", "noise:0.5:1", "noise:0.01", "gauss", "noise:x:1"])
def test_bad_perturbation_is_named(bad: str):
    with pytest.raises(SettingError, match="noise:SCALE:SEED"):
        parse_perturbation(bad)


def test_replicate_schedule_cycles_scales_with_fixed_seeds():
    ids = [p.id for p in replicate_schedule(4, [0.01, 0.03])]
    assert ids == ["noise:0.01:0", "noise:0.03:1", "noise:0.01:2", "noise:0.03:3"]
    assert replicate_schedule(0, [0.01]) == []


# -- the envelope --------------------------------------------------------------------------------------
def _outcome(check: str, passed: bool, base, new, *, recipe: str = "v", case: str = "s/c", **extra) -> CheckOutcome:
    return CheckOutcome(recipe, case, check, passed, base, new, "tol", "b", "n", "detail", dict(extra))


def _floor(check: str, devs: list[float], passed: list[bool], flips: dict | None = None) -> CaseFloor:
    return CaseFloor("h", "s", "r", {check: {"deviation": devs, "passed": passed}}, flips or {})


def test_failing_check_inside_the_benign_envelope_is_excused():
    # diversity 0.78 vs the fixed 0.8: noise alone reached 0.76 on this case
    floor = _floor("diversity", [0.0, 0.24, 0.05], [True, False, True])
    just_past = _outcome("diversity", False, 1.0, 0.78)
    judged = floor.judge(just_past, 0.25, ["a", "b", "c"])
    assert judged.passed and "inside the benign noise envelope" in judged.detail
    assert judged.extra["floor"]["absolute_passed"] is False
    # a real collapse of diversity is far outside it
    assert not floor.judge(_outcome("diversity", False, 1.0, 0.5), 0.25, ["a", "b", "c"]).passed
    # the floor never adds a failure: a passing outcome stays passing
    assert floor.judge(_outcome("diversity", True, 1.0, 0.9), 0.25, []).passed


def test_a_quiet_case_keeps_its_absolute_threshold():
    floor = _floor("answer", [0.0, 0.0, 0.0], [True, True, True])
    lost = _outcome("answer", False, True, False)
    assert deviation(lost) == 1.0 and edge([0.0, 0.0], 0.25) == 0.0
    assert not floor.judge(lost, 0.25, ["a", "b", "c"]).passed
    noisy = _floor("answer", [0.0, 1.0, 0.0], [True, False, True])  # noise alone lost the answer once
    assert noisy.judge(lost, 0.25, ["a", "b", "c"]).passed


def test_benign_failures_are_counted_leave_one_out():
    # replicate 1 fails and is the only one that far out: against the others it is outside the envelope
    assert _floor("chrf", [0.0, 12.0, 1.0], [True, False, True]).benign_failures("chrf", 0.25) == (1, 3)
    # two replicates equally far: each lies inside the envelope of the other
    assert _floor("chrf", [12.0, 12.0, 1.0], [False, False, True]).benign_failures("chrf", 0.25) == (0, 3)


def test_floor_file_round_trip_staleness_and_corruption(tmp_path: Path):
    path = tmp_path / "suite" / "_noise.json"
    floor = NoiseFloor(path, [{"id": "noise:0.01:0", "mean_kl": 0.001}], {"c": _floor("chrf", [1.0], [True])})
    floor.save()
    loaded = NoiseFloor.load(path)
    assert loaded is not None and loaded.replicate_ids == ["noise:0.01:0"]
    assert isinstance(loaded.entry("c", case_hash="h", settings_hash="s", response="r"), CaseFloor)
    assert "stale" in loaded.entry("c", case_hash="h", settings_hash="s", response="other")
    assert "no noise floor" in loaded.entry("x", case_hash="h", settings_hash="s", response="r")
    assert NoiseFloor.load(tmp_path / "none.json") is None
    data = json.loads(path.read_text())
    data["cases"]["c"]["checks"]["chrf"] = "oops"
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="corrupt noise floor .*_noise.json"):
        NoiseFloor.load(path)


# -- the suite verdict -----------------------------------------------------------------------------------
def _judged(check: str, fails: int, n: int, *, fragile: set[int] = frozenset(), recipe: str = "v",
            loo: tuple[int, int] = (0, 8)) -> list:
    out = []
    for i in range(n):
        floor = {"replicates": loo[1], "fragile": i in fragile, "benign_loo": list(loo)}
        if i in fragile:
            floor["fragile_evidence"] = {"flipped_under": ["noise:0.01:0"], "example_replicate": "noise:0.01:0",
                                         "example_response": "flipped"}
        out.append(_outcome(check, i >= fails, 1.0, 0.5, recipe=recipe, case=f"s/c{i}", floor=floor))
    return out


def test_suite_verdict_passes_noise_and_fails_a_regression():
    noise = _judged("content", 1, 36) + _judged("diversity", 0, 36)
    damage = _judged("content", 9, 36, recipe="d") + _judged("diversity", 0, 36, recipe="d")
    passed, failed = suite_verdicts(noise + damage, alpha=0.05)
    assert passed.variant == "v" and passed.passed and passed.mode == "suite"
    assert failed.variant == "d" and not failed.passed
    content = next(f for f in failed.families if f.check == "content")
    assert content.failed and content.p_value < content.alpha == 0.025
    assert any("FAIL content: 9/36" in line for line in verdict_lines([failed]))


def test_failures_at_the_benign_rate_do_not_fail_the_suite():
    # every replicate of these cases failed content once in 8 (y/t = 36/288): 5 of 36 is what noise does
    v = suite_verdicts(_judged("content", 5, 36, loo=(1, 8)), alpha=0.05)[0]
    assert v.passed and v.families[0].p_value > 0.3


def test_one_fragile_case_cannot_fail_the_release_alone():
    only = _judged("answer", 1, 2, fragile={0}, loo=(0, 200))  # significant alone (noise never lost it), fragile
    verdict = suite_verdicts(only, alpha=0.05)[0]
    family = verdict.families[0]
    assert family.p_value < family.alpha and not family.failed and verdict.passed
    assert "cannot fail a release on its own" in family.note and "s/c0" in verdict.fragile
    lines = verdict_lines([verdict])
    assert any("fragile case s/c0: greedy output flips under 1 benign replicate" in line for line in lines)
    solid = _judged("answer", 1, 2, loo=(0, 200))  # the same failure on a stable case fails
    assert not suite_verdicts(solid, alpha=0.05)[0].passed


def test_without_a_floor_any_failure_fails_as_before():
    plain = [_outcome("chrf", False, 20.0, 5.0), _outcome("chrf", True, 20.0, 19.0, case="s/d")]
    v = suite_verdicts(plain, alpha=0.05)[0]
    assert not v.passed and v.mode == "items" and "no noise floor recorded" in v.note
    noise_only = _judged("content", 1, 36)
    assert not suite_verdicts(noise_only, alpha=0.05, mode="items")[0].passed


def test_a_failing_case_without_a_usable_floor_fails_its_family():
    # 35 floored cases that never failed benignly, plus one case whose floor is missing or stale: its
    # failure must not be diluted by the other cases' benign trials
    floored = _judged("content", 0, 35)
    bare = _outcome("content", False, 1.0, 0.5, case="s/new", floor={})
    verdict = suite_verdicts([*floored, bare], alpha=0.05)[0]
    assert not verdict.passed and "no usable noise floor for s/new" in verdict.families[0].note
    # the look-alike: the same case passing leaves the family to the test
    ok = _outcome("content", True, 1.0, 1.0, case="s/new", floor={})
    assert suite_verdicts([*floored, ok], alpha=0.05)[0].passed


def _one_failing(deviation: float, *, fragile: bool = False, suite_edge: float = 1.25) -> list:
    """35 stable cases that pass plus one failing case with this deviation, all under a K = 8 floor."""
    cases = _judged("content", 0, 35)
    floor = {"replicates": 8, "fragile": fragile, "benign_loo": [0, 8], "deviation": deviation,
             "suite_edge": suite_edge}
    if fragile:
        floor["fragile_evidence"] = {"flipped_under": ["noise:0.01:0"], "example_replicate": "noise:0.01:0",
                                     "example_response": "flipped"}
    return [*cases, _outcome("content", False, 1.0, 0.0, case="s/bad", floor=floor)]


def test_one_stable_case_beyond_the_suite_envelope_fails_its_family():
    # the exact test alone cannot: with no benign failure its smallest p is 1/(K+1) = 0.11
    severe = suite_verdicts(_one_failing(6.0), alpha=0.05)[0]
    family = severe.families[0]
    assert family.p_value == pytest.approx(1 / 9) and family.failed and not severe.passed
    assert family.severe_cases == ["s/bad"] and "s/bad deviates 6 (suite envelope 1.25)" in family.note
    # the look-alike: past its own (quiet) envelope but within what noise did to other cases of the suite
    assert suite_verdicts(_one_failing(1.0), alpha=0.05)[0].passed
    # a fragile case never fails a release on its own, however far out
    assert suite_verdicts(_one_failing(6.0, fragile=True), alpha=0.05)[0].passed
    # verdict_severity = false: the exact test only
    assert suite_verdicts(_one_failing(6.0), alpha=0.05, severity=False)[0].passed


def test_suite_envelope_is_the_worst_benign_deviation_of_any_case(tmp_path: Path):
    floor = NoiseFloor(tmp_path / "_noise.json", [], {
        "quiet": _floor("content", [0.0, 0.0], [True, True]),
        "noisy": _floor("content", [0.0, 2.0], [True, False]),
        "other": _floor("chrf", [7.0, 1.0], [True, True]),
    })
    assert floor.suite_edge("content", 0.25) == 2.5 and floor.suite_edge("chrf", 0.0) == 7.0
    assert floor.suite_edge("answer", 0.25) == 0.0
    judged = floor.cases["quiet"].judge(_outcome("content", False, 1.0, 0.0), 0.25, ["a", "b"], 2.5)
    assert not judged.passed and judged.extra["floor"]["suite_edge"] == 2.5
