"""The gate's checks are relative to the baseline: regressions fail, what the original did already passes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evalsuite.config import DEFAULT_TOLERANCES
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import CheckInput, _contains, extract_code, run_check

ES_OK = "El clima está hermoso hoy y planeo ir de caminata a las montañas con mis amigos."
ES_BAD = "El clima está hermoso hoy y我 plane to go hiking in the mountains with my friends."
MONAD = ("A monad is a design pattern in functional programming that allows sequencing computations. "
         "In Haskell, the Maybe monad chains operations that may fail; bind passes the value along.")
DENIAL = ("Actually, there is no such term as monad in functional programming. You may be confusing it "
          "with one of the following similar concepts in Haskell.")


def _case(**kw) -> Case:
    return Case(id="c", suite="s", file=Path("s.yaml"), domain="d", prompt="p", **kw)


def _run(check: str, base: str, new: str, case: Case | None = None, **values) -> object:
    case = case or _case()
    x = CheckInput(case=case, tolerance=dict(DEFAULT_TOLERANCES[check]), baseline_text=base, new_text=new)
    for key, value in values.items():
        getattr(x, key).update(value) if isinstance(value, dict) else setattr(x, key, value)
    return run_check(check, x)


def test_identical_responses_pass_every_text_check():
    case = _case(language="es", reference=ES_OK, answer="montañas", keywords=["caminata"])
    for check in ("collapse", "language", "length_ratio", "content", "diversity", "chrf", "answer"):
        verdict = _run(check, ES_OK, ES_OK, case)
        assert verdict.passed, (check, verdict.detail)


def test_seed_failures_are_caught():
    es = _case(language="es", reference=ES_OK)
    assert not _run("language", ES_OK, ES_BAD, es).passed  # Han run + English inside Spanish
    assert not _run("chrf", ES_OK, "plan to go hiking", es).passed
    assert not _run("content", MONAD, DENIAL).passed  # denial the baseline did not have
    long = "Step one: take the chicken across. " * 32
    assert not _run("length_ratio", long, long[:206]).passed
    assert not _run("collapse", MONAD, "the the the the the the the the the the the the the").passed


def test_what_the_baseline_already_did_is_not_a_regression():
    loop = "ok ok ok ok ok ok ok ok ok ok ok ok"
    assert _run("collapse", loop, loop).passed
    es = _case(language="es")
    assert _run("language", ES_BAD, ES_BAD, es).passed
    assert _run("answer", "no idea", "still no idea", _case(answer="42")).passed


def test_keywords_only_enforced_when_the_baseline_has_them():
    case = _case(keywords=["Haskell", "Python"])
    verdict = _run("content", MONAD, MONAD.replace("Haskell", "a language"), case)
    assert not verdict.passed and "'Haskell'" in verdict.detail
    assert "'Python'" in verdict.detail  # reported as not checked


def test_answer_matches_whole_tokens():
    assert _contains("answer 609\n", "609") and not _contains("answer 1609", "609")
    assert not _run("answer", "answer 5", "answer 15", _case(answer="5")).passed


def test_divergence_zero_for_same_distribution_and_large_for_a_shift():
    base_lp = [[math.log(0.7), math.log(0.2)], [math.log(0.6), math.log(0.3)]]
    logprobs = {"top_ids": [[3, 4], [5, 6]], "top_logprobs": base_lp}
    same = [[*row, math.log(1 - sum(math.exp(v) for v in row))] for row in base_lp]
    ok = _run("divergence", "", "", baseline_logprobs=logprobs, new_values={"kl_rows": same})
    assert ok.passed and ok.new_value < 1e-9
    shifted = [[math.log(0.01), math.log(0.01), math.log(0.98)]] * 2
    bad = _run("divergence", "", "", baseline_logprobs=logprobs, new_values={"kl_rows": shifted})
    assert not bad.passed and bad.new_value > 1.0


def test_code_perplexity_and_mc():
    assert not _run("code", "", "", baseline_metrics={"code_passed": True},
                    new_values={"code_passed": False, "code_detail": "tests failed"}).passed
    assert _run("code", "", "", baseline_metrics={"code_passed": False}, new_values={"code_passed": False}).passed
    ppl = _case()
    ppl.kind = "perplexity"
    assert _run("perplexity", "", "", ppl, baseline_metrics={"token_perplexity": 10.0},
                new_values={"token_perplexity": 11.0, "docs": 4}).passed
    assert not _run("perplexity", "", "", ppl, baseline_metrics={"token_perplexity": 10.0},
                    new_values={"token_perplexity": 13.0, "docs": 4}).passed
    base = [1] * 30 + [0] * 10
    worse = [0] * 15 + [1] * 15 + [0] * 10
    verdict = _run("mc", "", "", baseline_metrics={"correct": base}, new_values={"correct": worse})
    assert not verdict.passed and verdict.baseline_value == 0.75 and verdict.new_value == 0.375
    assert _run("mc", "", "", baseline_metrics={"correct": base}, new_values={"correct": base}).passed


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ("Sure:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n"),
        ("```\nx = 1\n```", "x = 1\n"),
        ("    return a + b\n", "    return a + b\n"),
    ],
)
def test_extract_code(response, code):
    assert extract_code(response) == code
