from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from seed_texts import MONAD_BASE, RIVER_BASE

from evalsuite.metrics.diversity import check_diversity, distinct_n, ngrams, repetition_rate


def test_values() -> None:
    assert distinct_n("a b a b", 1) == 0.5
    assert distinct_n("a b a b", 2) == 2 / 3
    assert repetition_rate("a b a b", 1) == 0.5
    assert distinct_n("", 2) == 0.0 and repetition_rate("", 2) == 0.0
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]


def test_baseline_passes_itself() -> None:
    for base in (MONAD_BASE, RIVER_BASE):
        r = check_diversity(base, base)
        assert r.passed and r.value == 1.0


def test_merged_model_style_repetition_fails() -> None:
    degraded = ("A monad is a monad in functional programming. A monad is a monad. "
                "A monad is a monad in programming. A monad is a monad in functional programming.")
    r = check_diversity(degraded, MONAD_BASE)
    assert not r.passed and "distinct-" in r.detail


words = st.lists(st.sampled_from(["a", "b", "c", "d", "monad", "的"]), max_size=60)


@given(words, st.integers(min_value=1, max_value=4))
def test_distinct_in_unit_interval(tokens: list[str], n: int) -> None:
    d = distinct_n(tokens, n)
    assert 0.0 <= d <= 1.0
    assert abs(d + repetition_rate(tokens, n) - (1.0 if ngrams(tokens, n) else 0.0)) < 1e-12
