"""Fixtures for the plugin's tests: a tiny reasoning chat model (shared MoE fixtures: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


# -- a tiny reasoning chat model ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def chat_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe"))


@pytest.fixture(scope="session")
def short_trace_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe-short"), trace_fraction=0.3)
