"""Shared fixtures for evalsuite's own tests."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="session")
def write_all_formats():
    """A writer of the same rows as JSONL, JSON, CSV, Parquet and a datasets save_to_disk folder."""

    def write_all_formats(folder: Path, rows: list[dict]) -> dict[str, Path]:
        """The same rows as JSONL, JSON, CSV, Parquet and a save_to_disk folder."""
        import datasets

        data = datasets.Dataset.from_list(rows)
        paths = {fmt: folder / f"data.{fmt}" for fmt in ("jsonl", "csv", "parquet", "json")}
        paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths["json"].write_text(json.dumps(rows))
        data.to_csv(paths["csv"], index=False)
        data.to_parquet(paths["parquet"])
        paths["saved"] = folder / "saved"
        data.save_to_disk(paths["saved"])
        return paths

    return write_all_formats


@pytest.fixture(scope="session")
def varied_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MoE whose greedy text varies with the prompt (see evalsuite.gate.testing)."""
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
