from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from evalsuite.errors import ModelLoadError
from evalsuite.model.loading import default_model_path, fingerprint, load_model


def test_loads_tiny_checkpoint_with_left_padding(tiny_moe_path: Path) -> None:
    loaded = load_model(tiny_moe_path)
    assert loaded.model.config.model_type == "qwen3_moe"
    assert loaded.tokenizer.padding_side == "left"
    assert len(loaded.fingerprint) == 64
    assert not loaded.model.training


def test_fingerprint_is_stable_across_loads(tiny_moe_path: Path) -> None:
    assert load_model(tiny_moe_path).fingerprint == load_model(tiny_moe_path).fingerprint


def test_fingerprint_changes_with_one_weight(tiny_moe_path: Path) -> None:
    model = load_model(tiny_moe_path).model
    before = fingerprint(model)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "experts" in n)[3].view(-1)[0] += 1e-6
    assert fingerprint(model) != before


def test_fingerprint_changes_with_config(tiny_moe_path: Path) -> None:
    model = load_model(tiny_moe_path).model
    before = fingerprint(model)
    model.config.num_experts_per_tok = 1
    assert fingerprint(model) != before


def test_refuses_pickle_only_checkpoint(tiny_moe_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_moe_path, folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match=r"no \*\.safetensors.*model\.bin.*convert"):
        load_model(folder)


def test_missing_folder_and_bad_dtype_are_named(tiny_moe_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a directory"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="int3"):
        load_model(tiny_moe_path, dtype="int3")


def test_remote_code_is_never_run_unless_asked(tiny_moe_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(tiny_moe_path, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    loaded = load_model(folder)
    assert type(loaded.model).__module__.startswith("transformers.")


def test_embedded_default_model_is_the_default() -> None:
    loaded = load_model()
    assert loaded.path == default_model_path()
    assert loaded.tokenizer.pad_token is not None
