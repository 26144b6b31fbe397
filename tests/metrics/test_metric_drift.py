from __future__ import annotations

import pytest
from seed_texts import MONAD_BASE, MONAD_DENIAL, RIVER_BASE, RIVER_CUT

from evalsuite.metrics.drift import (
    check_content_drift,
    check_denial,
    check_term_retention,
    find_denial,
    key_terms,
)


def test_seed_monad_denial_fails() -> None:
    r = check_denial(MONAD_DENIAL, MONAD_BASE)
    assert not r.passed and "no such term" in r.detail
    d = check_content_drift(MONAD_DENIAL, MONAD_BASE)
    assert not d.passed and d.data["denial_regressed"]


def test_baseline_passes_itself() -> None:
    for base in (MONAD_BASE, RIVER_BASE):
        assert check_content_drift(base, base).passed
        assert check_content_drift(base, base).value == 1.0


def test_lost_key_terms_fail_and_are_named() -> None:
    r = check_term_retention(RIVER_CUT, RIVER_BASE, min_retention=0.7)
    assert not r.passed
    assert "step" in r.data["lost"] or "bank" in r.data["lost"]
    assert "lost:" in r.detail


def test_key_terms_skip_stopwords() -> None:
    terms = key_terms(MONAD_BASE)
    assert "monad" in terms and "functional" in terms
    assert not {"this", "with", "that", "about"} & set(terms)


@pytest.mark.parametrize(
    "text",
    [
        "There is no such thing as a monad.",
        "Monads don't exist in Python.",
        "I can't help with that.",
        "I'm sorry, but I cannot answer.",
        "La mónada no existe en la programación.",
        "No puedo responder a eso.",
        "Une monade n'existe pas.",
        "So etwas gibt es nicht.",
        "Такого понятия не существует.",
        "这个概念不存在。",
    ],
)
def test_denial_patterns_multilingual(text: str) -> None:
    assert find_denial(text) is not None


def test_denial_in_both_is_not_a_regression() -> None:
    base = "There is no such function in the standard library; use itertools instead."
    assert check_denial("There is no such function in the stdlib.", base).passed
    assert find_denial(MONAD_BASE) is None


def test_ordinary_does_not_exist_is_not_a_denial() -> None:
    base = "A dictionary maps keys to values. Use get() to read a key with a default value."
    new = "A dictionary maps keys to values. If the file does not exist, get() returns the default value."
    assert check_denial(new, base).passed
    assert not check_denial("Dictionaries do not exist in Python.", base).passed
    assert check_denial("Esto no se puede hacer con un diccionario.", base).passed
