"""Shared fixtures for evalsuite's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from evalsuite.model.loading import configure_torch
from evalsuite.model.tiny import build_tiny_moe

configure_torch(1)

# CI must be reproducible: the same examples every run. Local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def tiny_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 8-expert Qwen3-MoE checkpoint with a character tokenizer."""
    return build_tiny_moe(tmp_path_factory.mktemp("tiny-moe"))
