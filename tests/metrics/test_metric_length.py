from __future__ import annotations

import math

from seed_texts import RIVER_BASE, RIVER_CUT

from evalsuite.metrics.length import check_length_ratio, length_ratio


def test_seed_truncation_fails() -> None:
    r = check_length_ratio(RIVER_CUT, RIVER_BASE)
    assert not r.passed and r.value < 0.25
    assert "shrank" in r.detail and str(len(RIVER_BASE.strip())) in r.detail


def test_baseline_passes_itself() -> None:
    r = check_length_ratio(RIVER_BASE, RIVER_BASE)
    assert r.passed and r.value == 1.0


def test_ballooning_fails_and_edge_cases() -> None:
    assert not check_length_ratio(RIVER_BASE * 4, RIVER_BASE).passed
    assert length_ratio("", "") == 1.0
    assert math.isinf(length_ratio("x", ""))
    assert length_ratio("a b c", "a b c d e f", unit="tokens") == 0.5
