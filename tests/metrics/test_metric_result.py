from __future__ import annotations

import dataclasses

import pytest

from evalsuite.metrics.result import CheckResult


def test_result_is_frozen_and_renders() -> None:
    r = CheckResult("length_ratio", False, 0.18, 0.5, ">=", "answer shrank", baseline=1.0, data={"x": [1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.data["y"] = 2  # type: ignore[index]
    assert str(r).startswith("length_ratio FAIL value=0.180 >= 0.500 (baseline 1.000)")
    assert r.to_dict()["data"] == {"x": [1]}
    with pytest.raises(ValueError):
        CheckResult("x", True, 1.0, 1.0, "~", "")
