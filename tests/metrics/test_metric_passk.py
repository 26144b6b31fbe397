from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalsuite.metrics.passk import check_pass_at_k, mean_pass_at_k, pass_at_k


def test_known_values() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - math.comb(7, 2) / math.comb(10, 2))
    assert pass_at_k(5, 4, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_baseline_passes_and_regression_fails() -> None:
    base = [(10, 8), (10, 5), (10, 9)]
    assert check_pass_at_k(base, baseline_counts=base).passed
    r = check_pass_at_k([(10, 2), (10, 1), (10, 4)], baseline_counts=base, k=1)
    assert not r.passed and r.check == "pass@1" and r.baseline == pytest.approx(mean_pass_at_k(base, 1))


@st.composite
def nck(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 200))
    c = draw(st.integers(0, n))
    k = draw(st.integers(1, n))
    return n, c, k


@given(nck())
def test_in_unit_interval_and_matches_binomials(x: tuple[int, int, int]) -> None:
    n, c, k = x
    v = pass_at_k(n, c, k)
    assert 0.0 <= v <= 1.0
    exact = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert v == pytest.approx(exact, abs=1e-9)


@given(nck())
def test_monotone_in_k(x: tuple[int, int, int]) -> None:
    n, c, k = x
    if k < n:
        assert pass_at_k(n, c, k) <= pass_at_k(n, c, k + 1) + 1e-12
