"""Fixtures for the gate's tests: a tiny MoE with varied greedy text, and a damaged copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def varied_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.gate.testing import build_varied_moe

    return build_varied_moe(tmp_path_factory.mktemp("varied-moe"))


@pytest.fixture(scope="session")
def varied_moe(varied_moe_path: Path):
    from evalsuite.model.loading import load_model

    return load_model(varied_moe_path)
