"""Model presets meet issue 11's shape limits, their size table is exact, and the probe runs."""

from __future__ import annotations

import sys

import pytest

from training import probe_throughput
from training.model_config import MAX_SHIPPED_MB, PRESETS, model_config, param_counts


@pytest.mark.parametrize("preset", ["v2", "v2-lite"])
def test_v2_presets_are_fine_grained_and_shippable(preset: str) -> None:
    p = PRESETS[preset]
    assert p.experts >= 16 and p.top_k >= 2 and p.expert_width < p.hidden
    assert param_counts(preset)["bf16_MB"] <= MAX_SHIPPED_MB


@pytest.mark.parametrize("preset", ["v2", "tiny"])
def test_param_counts_match_the_built_model(preset: str) -> None:
    from transformers import Qwen3MoeForCausalLM

    model = Qwen3MoeForCausalLM(model_config(preset, 8192, 0, 1))
    assert sum(p.numel() for p in model.parameters()) == param_counts(preset)["total"]
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    assert experts == param_counts(preset)["experts"]


def test_unknown_preset_is_named() -> None:
    with pytest.raises(KeyError, match="v3.*choose one of"):
        model_config("v3", 100, 0, 1)


def test_probe_runs_on_a_tiny_model(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "probe",
        "--preset",
        "tiny",
        "--vocab",
        "64",
        "--threads",
        "1",
        "--kernels",
        "eager",
        "--ctx",
        "16",
        "--batch-tokens",
        "64",
        "--seconds",
        "0.05",
        "--decode-tokens",
        "2",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    probe_throughput.main()
    out = capsys.readouterr().out
    assert "new tokens/s" in out and "train with: --threads 1 --experts-impl eager --ctx 16 --batch 4" in out
