from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.errors import ModelLoadError
from evalsuite.model import fingerprint as fingerprint_module
from evalsuite.model.fingerprint import fingerprint_checkpoint
from evalsuite.model.loading import default_model_path, load_model


def test_loads_tiny_checkpoint_with_left_padding(tiny_moe_path: Path) -> None:
    loaded = load_model(tiny_moe_path)
    assert loaded.model.config.model_type == "qwen3_moe"
    assert loaded.tokenizer.padding_side == "left"
    assert len(loaded.fingerprint) == 64
    assert not loaded.model.training


def test_fingerprint_is_stable_across_loads(tiny_moe_path: Path) -> None:
    assert load_model(tiny_moe_path).fingerprint == load_model(tiny_moe_path).fingerprint


def _copy(tiny_moe_path: Path, tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_moe_path, folder)
    return folder, fingerprint_checkpoint(folder)


def test_fingerprint_is_the_files_not_the_folder(tiny_moe_path: Path, tmp_path: Path) -> None:
    folder, fp = _copy(tiny_moe_path, tmp_path)
    assert fp == fingerprint_checkpoint(tiny_moe_path)  # another folder, same files
    (folder / "README.md").write_text("model card")  # not what the gate measures
    config = json.loads((folder / "config.json").read_text())
    config["transformers_version"] = "9.9.9"  # how the file was written, not what the model computes
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    assert fingerprint_checkpoint(folder) == fp


def test_fingerprint_changes_with_one_weight_byte(tiny_moe_path: Path, tmp_path: Path) -> None:
    folder, fp = _copy(tiny_moe_path, tmp_path)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 1
    weights.write_bytes(bytes(data))
    assert fingerprint_checkpoint(folder) != fp


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("config.json", lambda d: d.update(num_experts_per_tok=1)),
        ("tokenizer_config.json", lambda d: d.update(chat_template="{{ messages }}")),
        ("generation_config.json", lambda d: d.update(eos_token_id=3)),
    ],
)
def test_fingerprint_changes_with_config_tokenizer_and_generation_config(
    tiny_moe_path: Path, tmp_path: Path, name: str, edit
) -> None:
    folder, fp = _copy(tiny_moe_path, tmp_path)
    data = json.loads((folder / name).read_text())
    edit(data)
    (folder / name).write_text(json.dumps(data))
    assert fingerprint_checkpoint(folder) != fp


def test_fingerprint_cache_skips_unchanged_files_and_notices_rewrites(
    tiny_moe_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "copy"
    shutil.copytree(tiny_moe_path, folder)
    read: list[str] = []
    real = fingerprint_module._digest
    monkeypatch.setattr(fingerprint_module, "_digest", lambda p: read.append(p.name) or real(p))
    first = fingerprint_checkpoint(folder)
    assert "model.safetensors" in read and (tmp_path / "cache" / "fingerprints.json").is_file()
    read.clear()
    assert fingerprint_checkpoint(folder) == first and read == []  # nothing re-read
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 1
    weights.write_bytes(bytes(data))  # same size: mtime/inode tell the change
    assert fingerprint_checkpoint(folder) != first and read == ["model.safetensors"]


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
