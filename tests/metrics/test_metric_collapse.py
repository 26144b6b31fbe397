from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from seed_texts import MONAD_BASE, RIVER_BASE, SPANISH_BASE

from evalsuite.metrics.collapse import check_collapse, degenerate_fraction, find_loops, longest_char_run


def test_baselines_pass() -> None:
    for text in (MONAD_BASE, RIVER_BASE, SPANISH_BASE, "短いが正しい日本語の答えです。モナドは設計パターンです。"):
        r = check_collapse(text)
        assert r.passed, r.detail


def test_empty_and_short_fail() -> None:
    assert not check_collapse("").passed
    assert "empty" in check_collapse("   \n").detail
    r = check_collapse("Yes.")
    assert not r.passed and "too short" in r.detail


def test_repetition_loop_fails_and_names_the_unit() -> None:
    looped = "A monad is a design pattern. " + "I think the answer is yes. " * 8
    r = check_collapse(looped)
    assert not r.passed
    assert "I think the answer is yes" in r.detail and "x8" in r.detail
    loops = find_loops(looped)
    assert loops and loops[0].repeats == 8


def test_cjk_loop_detected() -> None:
    r = check_collapse("单子是一种设计模式。" + "我我我我我我我我我我我我我我我我我我我我我我我我")
    assert not r.passed


def test_degenerate_char_run_fails() -> None:
    text = "The answer is " + "!" * 60
    assert longest_char_run(text) == ("!", 60)
    r = check_collapse(text)
    assert not r.passed and "run of 60" in r.detail


def test_short_legit_repeats_are_tolerated() -> None:
    assert check_collapse("Step one: mix. Step two: stir. Step three: bake. Done, done.").passed
    assert degenerate_fraction(RIVER_BASE) < 0.05


@given(st.text(max_size=300))
def test_fraction_in_unit_interval(text: str) -> None:
    assert 0.0 <= degenerate_fraction(text) <= 1.0
    r = check_collapse(text)
    assert 0.0 <= r.value <= 1.0


def test_code_and_markdown_are_not_loops() -> None:
    code = (
        "Here is the grid:\n```python\ngrid = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]\n"
        "assert f(1) == 1\nassert f(2) == 2\n```\n| a | b |\n|------|------|\n| 1 | 2 |\nDone... really......"
    )
    assert check_collapse(code).passed, check_collapse(code).detail
    stuck = "Here is the code:\n```python\n" + "x = x + 1\n" * 12 + "```\n"
    assert not check_collapse(stuck).passed
