"""Baselines are backend- and dtype-specific: another backend's baselines are stale, unless the run asks
for a cross-backend comparison; hf baselines keep their key (committed ones stay valid)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.config import GateSettings, key_hash
from evalsuite.errors import BaselineError
from evalsuite.gate.cases import load_case_file
from evalsuite.gate.runner import Gate


@pytest.fixture()
def recorded(tiny_moe_path: Path, tmp_path: Path):
    """One case's baseline as the hf backend records it (float32)."""
    (tmp_path / "s.yaml").write_text("cases:\n  - {id: a, domain: d, prompt: one}\n", encoding="utf-8")
    case = load_case_file(tmp_path / "s.yaml", suite="s")[0]
    hf = Gate(GateSettings(model=str(tiny_moe_path), dtype="float32", rootdir=tmp_path))
    key = hf.generation_key()
    assert "backend" not in key  # the key committed hf baselines were recorded under
    hf.store().write_case("s", "a", case_hash=hf.case_hash(case), settings=key, settings_hash=key_hash(key),
                          payload={"response": "r", "response_ids": [1], "prompt_ids": [2]})
    return case


def _gate(tiny_moe_path: Path, tmp_path: Path, **settings) -> Gate:
    return Gate(GateSettings(**{"model": str(tiny_moe_path), "dtype": "float32", "rootdir": tmp_path, **settings}))


def test_same_backend_and_dtype_trust_the_baseline(recorded, tiny_moe_path: Path, tmp_path: Path):
    assert _gate(tiny_moe_path, tmp_path).baseline(recorded).response == "r"


@pytest.mark.parametrize("settings", [{"backend": "vllm"}, {"backend": "openai"}, {"dtype": "bfloat16"}])
def test_another_backend_or_dtype_is_stale(recorded, tiny_moe_path: Path, tmp_path: Path, settings):
    with pytest.raises(BaselineError, match="stale baseline .*generation settings changed"):
        _gate(tiny_moe_path, tmp_path, **settings).baseline(recorded)


def test_cross_backend_comparison_is_explicit(recorded, tiny_moe_path: Path, tmp_path: Path):
    gate = _gate(tiny_moe_path, tmp_path, backend="vllm", dtype="bfloat16", baseline_backend="hf",
                 baseline_dtype="float32")
    assert gate.baseline(recorded).response == "r"
    assert gate.generation_key()["backend"] == "vllm"  # its own outputs are still labelled as vLLM's
