from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalsuite.metrics.significance import check_mc_regression, mcnemar_exact

BASE = [True] * 80 + [False] * 20


def test_baseline_against_itself_passes() -> None:
    r = check_mc_regression(BASE, BASE)
    assert r.passed and r.value == 1.0 and r.data["b"] == r.data["c"] == 0


def test_significant_regression_fails() -> None:
    new = [False] * 20 + [True] * 60 + [False] * 20  # 20 items flipped right -> wrong
    r = check_mc_regression(BASE, new)
    assert not r.passed and r.data["b"] == 20 and r.data["c"] == 0
    assert r.value < 1e-5 and "20 right->wrong" in r.detail


def test_same_accuracy_different_items_is_paired() -> None:
    # 5 lost, 5 gained: same accuracy, no evidence of regression.
    new = [False] * 5 + [True] * 75 + [True] * 5 + [False] * 15
    r = check_mc_regression(BASE, new)
    assert r.passed and r.data["b"] == 5 and r.data["c"] == 5


def test_small_noisy_drop_is_not_significant_but_drop_limit_applies() -> None:
    new = [False] * 3 + [True] * 77 + [False] * 20
    assert check_mc_regression(BASE, new).passed  # p = 0.125
    assert not check_mc_regression(BASE, new, max_accuracy_drop=0.02).passed


def test_exact_p_values_and_inputs() -> None:
    assert mcnemar_exact(10, 0).p_value == pytest.approx(0.5**10)
    assert mcnemar_exact(10, 0, alternative="two-sided").p_value == pytest.approx(2 * 0.5**10)
    assert float(mcnemar_exact(3, 3)) > 0.5
    by_id = mcnemar_exact({"a": True, "b": True}, {"b": True, "a": False})
    assert by_id.b == 1 and by_id.c == 0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])
    with pytest.raises(ValueError):
        mcnemar_exact({"a": True}, {"b": True})


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=40))
def test_p_value_in_unit_interval(pairs: list[tuple[bool, bool]]) -> None:
    base = [a for a, _ in pairs]
    new = [b for _, b in pairs]
    for alt in ("greater", "two-sided", "less"):
        assert 0.0 <= mcnemar_exact(base, new, alternative=alt).p_value <= 1.0
