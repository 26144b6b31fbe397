"""Code pass@k: seeded samples (batch- and order-independent), stored in the baseline, a paired test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.config import DEFAULT_TOLERANCES, merge_tolerance
from evalsuite.errors import BaselineError, SettingError
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import CheckInput, run_check
from evalsuite.model.generation import generate_sampled


def _code_case(**tolerance) -> Case:
    case = Case(id="c", suite="s", file=Path("s.yaml"), domain="code", prompt="def f():\n", tests=["assert f() == 1"],
                entry_point="f", language="code")
    case.checks = {"code": merge_tolerance(DEFAULT_TOLERANCES, "code", tolerance, where="checks.code")}
    return case


def _judge(base: list[int], new: list[int], **tolerance):
    case = _code_case(samples=len(base), k=tolerance.pop("k", [1, 5]), **tolerance)
    tol = case.checks["code"]
    stored = {"n": len(base), "temperature": tol["temperature"], "seed": tol["seed"], "passed": base}
    x = CheckInput(case=case, tolerance=tol, baseline_metrics={"code_samples": stored},
                   new_values={"code_samples": {**stored, "passed": new}})
    return run_check("code", x)


def test_paired_test_fails_a_real_drop_and_passes_noise():
    base = [1] * 8 + [0] * 2
    lost = _judge(base, [1, 0, 0, 0, 0, 0, 0, 1, 0, 0])  # 6 samples the original solved are lost, none gained
    assert not lost.passed and lost.extra["lost"] == 6 and lost.extra["mcnemar_p"] < 0.05
    assert lost.extra["pass_at_k"]["baseline"][1] == 0.8 and lost.extra["pass_at_k"]["new"][1] == 0.2
    assert "pass@1 0.800 -> 0.200" in lost.detail and "pass@5" in lost.detail
    shuffled = _judge(base, [1, 1, 1, 0, 1, 1, 1, 1, 1, 0])  # one lost, one gained: noise
    assert shuffled.passed and shuffled.extra["mcnemar_p"] == 0.75


def test_a_drop_within_max_drop_passes():
    base = [1] * 10
    new = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    assert not _judge(base, new).passed
    assert _judge(base, new, max_drop=0.6, k=[1]).passed  # pass@1 fell 0.5 <= 0.6


def test_baseline_without_the_asked_samples_is_stale():
    case = _code_case(samples=4, k=[1, 2])
    x = CheckInput(case=case, tolerance=case.checks["code"], baseline_metrics={"code_passed": True},
                   new_values={"code_samples": {"passed": [1, 1, 1, 1]}})
    with pytest.raises(BaselineError, match="asks for n=4 samples at temperature 0.8 .* holds no samples; re-record"):
        run_check("code", x)


@pytest.mark.parametrize(("override", "field"), [({"samples": 2, "k": [5]}, "k"), ({"k": [0]}, "k"),
                                                 ({"temperature": 0.0}, "temperature")])
def test_bad_sampling_settings_are_named(override: dict, field: str):
    with pytest.raises(SettingError, match=f"checks.code.{field}"):
        merge_tolerance(DEFAULT_TOLERANCES, "code", override, where="checks.code")


def test_samples_are_seeded_per_prompt_not_per_batch(varied_moe):
    model, tok = varied_moe.model, varied_moe.tokenizer
    a, b = tok("def add(a, b):")["input_ids"], tok("hello world")["input_ids"]
    both = generate_sampled(model, tok, [a, b], n=4, temperature=1.0, seed=3, max_new_tokens=8)
    alone = generate_sampled(model, tok, [b], n=4, temperature=1.0, seed=3, max_new_tokens=8)
    assert [g.token_ids for g in both[1]] == [g.token_ids for g in alone[0]]
    assert len({tuple(g.token_ids) for g in both[0]}) > 1  # samples differ from each other
    other = generate_sampled(model, tok, [b], n=4, temperature=1.0, seed=4, max_new_tokens=8)
    assert [g.token_ids for g in other[0]] != [g.token_ids for g in alone[0]]


CODE_SUITE = """
cases:
  - id: ident
    domain: code
    language: code
    max_new_tokens: 6
    prompt: "def ident(x):\\n    return x  #"
    stop: ["\\n"]
    entry_point: ident
    tests: ["assert ident(3) == 3"]
    checks: {code: {samples: 5, k: [1, 3], temperature: 1.5}}
"""


def test_samples_are_recorded_and_compared(pytester: pytest.Pytester, varied_moe_path: Path):
    pytester.makefile(".toml", pyproject=f'[tool.evalsuite]\nmodel = "{varied_moe_path}"\nsandbox = "weak"\n')
    (pytester.path / "prompts" / "demo").mkdir(parents=True)
    (pytester.path / "prompts" / "demo" / "code.yaml").write_text(CODE_SUITE, encoding="utf-8")
    pytester.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts").assert_outcomes(passed=7)
    stored = json.loads(next((pytester.path / "baselines").rglob("ident.json")).read_text())["metrics"]
    assert stored["code_samples"]["n"] == 5 and len(stored["code_samples"]["passed"]) == 5
    assert stored["code_samples"]["temperature"] == 1.5
    result = pytester.runpytest("-p", "no:cacheprovider", "prompts", "--junitxml=out.xml")
    result.assert_outcomes(passed=7)  # the same model draws the same samples: nothing lost
    assert "over n=5 samples at T=1.5; paired McNemar: 0 sample(s) lost" in (pytester.path / "out.xml").read_text()
