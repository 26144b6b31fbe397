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



@pytest.fixture(autouse=True)
def _keep_library_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep modules first imported inside an in-process pytester run (torch, numpy, lm-eval, ...).

    Why: pytester drops every module an inner run imported; C extensions and torch operator
    registrations cannot be imported a second time in one process ("cannot load module more than
    once", "Only a single TORCH_LIBRARY ..."), so the next inner run would break. Only the inner runs'
    own test modules and conftests are dropped.
    """
    from _pytest.pytester import Pytester, SysModulesSnapshot

    def snapshot(self: Pytester) -> SysModulesSnapshot:
        return SysModulesSnapshot(preserve=lambda name: not name.startswith(("test_", "conftest")))

    monkeypatch.setattr(Pytester, "_Pytester__take_sys_modules_snapshot", snapshot)


# -- a tiny reasoning chat model ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def chat_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe"))


@pytest.fixture(scope="session")
def short_trace_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe-short"), trace_fraction=0.3)
