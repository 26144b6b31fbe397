"""The per-script text rules through the gate's checks (evalsuite.gate.checks), relative to a baseline:
each regression fails its check, its benign look-alike passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_metric_answer import PAIRS as ANSWER_PAIRS
from test_metric_codeswitch import DRIFT_PAIRS, OTHER_SCRIPT_PAIRS, SAME_SCRIPT_PAIRS
from test_metric_diversity import CODE_PAIRS
from test_metric_terms import PAIRS as TERM_PAIRS

from evalsuite.config import DEFAULT_TOLERANCES
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import CheckInput, baseline_metrics, run_check
from evalsuite.gate.outcome import CheckOutcome


def _run(check: str, base: str, new: str, **case_fields: object) -> CheckOutcome:
    case = Case(id="c", suite="s", file=Path("s.yaml"), domain="d", prompt="p", **case_fields)
    x = CheckInput(case=case, tolerance=dict(DEFAULT_TOLERANCES[check]), baseline_text=base, new_text=new)
    return run_check(check, x)


LANGUAGE = [(lang, good, bad, good) for lang, bad, good in OTHER_SCRIPT_PAIRS + SAME_SCRIPT_PAIRS + DRIFT_PAIRS]


@pytest.mark.parametrize(("lang", "base", "bad", "good"), LANGUAGE, ids=[p[0] for p in LANGUAGE])
def test_language_check(lang: str, base: str, bad: str, good: str) -> None:
    # the benign sentence is the baseline: the regression is a new finding, the look-alike is not
    assert not _run("language", base, bad, language=lang).passed
    assert _run("language", base, good, language=lang).passed


@pytest.mark.parametrize(("lang", "base", "bad", "good"), TERM_PAIRS, ids=[p[0] for p in TERM_PAIRS])
def test_content_check(lang: str, base: str, bad: str, good: str) -> None:
    assert not _run("content", base, bad).passed
    verdict = _run("content", base, good)
    assert verdict.passed, verdict.detail


@pytest.mark.parametrize(("lang", "answer", "base", "bad", "good"), ANSWER_PAIRS, ids=[p[0] for p in ANSWER_PAIRS])
def test_answer_check(lang: str, answer: str, base: str, bad: str, good: str) -> None:
    lost = _run("answer", base, bad, answer=answer)
    assert not lost.passed and lost.baseline_value is True and lost.new_value is False
    assert _run("answer", base, good, answer=answer).passed
    assert baseline_metrics(Case(id="c", suite="s", file=Path("s.yaml"), domain="d", prompt="p", answer=answer),
                            good)["answer_present"] is True


@pytest.mark.parametrize(("lang", "base", "loop", "code"), CODE_PAIRS, ids=[p[0] for p in CODE_PAIRS])
def test_diversity_check(lang: str, base: str, loop: str, code: str) -> None:
    assert not _run("diversity", base, loop).passed
    verdict = _run("diversity", base, code)
    assert verdict.passed, verdict.detail
