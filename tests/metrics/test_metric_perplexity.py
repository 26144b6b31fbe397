from __future__ import annotations

import math

import pytest

from evalsuite.metrics.perplexity import (
    check_perplexity,
    perplexity,
    perplexity_from_logprobs,
    perplexity_ratio,
)


def test_values() -> None:
    assert perplexity(0.0, 10) == 1.0
    assert perplexity_from_logprobs([math.log(0.5)] * 4) == pytest.approx(2.0)
    assert perplexity_ratio(26.0, 2.0) == 13.0
    with pytest.raises(ValueError):
        perplexity(1.0, 0)
    with pytest.raises(ValueError):
        perplexity_ratio(1.0, 0.0)


def test_seed_13x_fails_and_baseline_passes() -> None:
    r = check_perplexity(13 * 7.5, 7.5, label="wikitext")
    assert not r.passed and "x13.00" in r.detail and "wikitext" in r.detail
    assert check_perplexity(7.5, 7.5).passed
    assert not check_perplexity(float("nan"), 7.5).passed
    assert not check_perplexity(float("inf"), 7.5).passed
