"""Ratio sweep: recipes from (method, ratios), the largest passing ratio, the plot (end to end:
tests/plugin/test_verdicts.py)."""

from __future__ import annotations

import pytest

from evalsuite.errors import SettingError
from evalsuite.gate.outcome import CheckOutcome
from evalsuite.gate.sweep import SweepMethod, SweepPoint, sweep_lines, sweep_recipes, sweep_summary
from evalsuite.gate.verdict import SuiteVerdict
from evalsuite.reporting.verdicts import sweep_section, sweep_svg


def test_sweep_expands_methods_into_recipes():
    recipes = sweep_recipes(["freq@english", "merge-cka-uniform,grouping=hc"], [0.5, 0.25, 0.25])
    assert list(recipes) == ["freq:0.25@english", "freq:0.5@english", "merge-cka-uniform:0.25,grouping=hc",
                             "merge-cka-uniform:0.5,grouping=hc"]
    assert recipes["freq:0.5@english"] == ("freq@english", 0.5)
    assert sweep_recipes([], []) == {}


@pytest.mark.parametrize(("methods", "ratios", "field"), [
    (["freq"], [], "sweep_ratios"), (["freq"], [1.5], "sweep_ratios"), (["freq"], [0], "sweep_ratios"),
    (["freq:0.5"], [0.25], "sweep"),
])
def test_bad_sweeps_are_named(methods, ratios, field):
    with pytest.raises(SettingError, match=f"^{field}: "):
        sweep_recipes(methods, ratios)


def _points(*passed: bool) -> list[SweepPoint]:
    return [SweepPoint(0.1 * (i + 1), f"m:{0.1 * (i + 1):g}", ok, {"content": int(not ok)}, 1.0 + i / 10)
            for i, ok in enumerate(passed)]


def test_largest_passing_ratio_never_skips_a_failure():
    assert SweepMethod("m", _points(True, True, False, False)).largest_passing == pytest.approx(0.2)
    bumpy = SweepMethod("m", _points(True, False, True))
    assert bumpy.largest_passing == pytest.approx(0.1) and bumpy.non_monotone == [pytest.approx(0.3)]
    assert SweepMethod("m", _points(False, True)).largest_passing is None
    lines = sweep_lines([bumpy])
    assert lines[0].startswith("sweep m: largest passing ratio 0.1 (non-monotone: 0.3")


def test_summary_from_verdicts_and_outcomes():
    recipes = sweep_recipes(["reap"], [0.25, 0.5])
    labels = {t: t for t in recipes}
    verdicts = [SuiteVerdict("reap:0.25", True, "suite", 0.05, []), SuiteVerdict("reap:0.5", False, "suite", 0.05, [])]
    outcomes = [CheckOutcome("reap:0.5", "s/a", "chrf", False), CheckOutcome("reap:0.5", "s/b", "chrf", False),
                CheckOutcome("reap:0.5", "s/p", "perplexity", True, extra={"ratio": 1.4}),
                CheckOutcome("reap:0.25", "s/p", "perplexity", True, extra={"ratio": 1.02})]
    (method,) = sweep_summary(recipes, labels, verdicts, outcomes)
    assert method.largest_passing == 0.25
    assert method.points[1].failures == {"chrf": 2, "perplexity": 0} and method.points[1].perplexity_ratio == 1.4


def test_plot_is_inline_svg_with_a_line_per_failing_check():
    method = SweepMethod("freq<x>", _points(True, True, False))
    svg = sweep_svg(method)
    assert svg.startswith("<svg") and svg.count("<polyline") == 2  # content failures + perplexity ratio
    assert "largest passing ratio 0.2" in svg and "freq&lt;x&gt;" in svg and "<x>" not in svg
    assert 'id="sweep"' in sweep_section([method]) and sweep_section([]) == ""
