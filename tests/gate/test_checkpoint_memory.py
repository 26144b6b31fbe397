"""Gating a checkpoint on disk holds one model: the base's baselines are found by its file fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalsuite.config import GateSettings
from evalsuite.gate import models, runner
from evalsuite.model.fingerprint import fingerprint_checkpoint


@pytest.fixture()
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every folder load_model is asked for (the gate's per-process model memo is emptied first)."""
    from evalsuite.model import loading

    seen: list[Path] = []
    real = loading.load_model
    monkeypatch.setattr(models, "_LOADED", {})
    monkeypatch.setattr(loading, "load_model", lambda path, **kw: seen.append(Path(path)) or real(path, **kw))
    return seen


def test_compressed_gate_never_loads_the_base(tiny_moe_path: Path, tmp_path: Path, loads: list[Path]) -> None:
    first, second = tmp_path / "a" / "final", tmp_path / "b" / "final"
    for folder in (first, second):
        shutil.copytree(tiny_moe_path, folder)
    settings = GateSettings(model=str(tiny_moe_path), compressed=[str(first), str(second)], rootdir=tmp_path)
    gate = runner.Gate(settings)
    assert gate.store().fingerprint == fingerprint_checkpoint(tiny_moe_path)
    for variant in gate.variants:
        assert gate.activate(variant).path == Path(variant.spec)
        held = [m for m in models._LOADED.values()] + list(gate.models._checkpoints.values())
        assert len({id(m) for m in held}) == 1  # the previous checkpoint was released first
    assert loads == [first, second]  # the base model itself was never loaded
    assert gate.run_info()["fingerprint"] == fingerprint_checkpoint(tiny_moe_path)[:16]


def test_recipe_variants_still_load_the_base(tiny_moe_path: Path, tmp_path: Path, loads: list[Path]) -> None:
    gate = runner.Gate(GateSettings(model=str(tiny_moe_path), rootdir=tmp_path))
    gate.activate(gate.variants[0])
    assert loads == [tiny_moe_path]
