from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from evalsuite.cli import _pytest_args, build_parser, main


def test_gate_maps_to_pytest_options() -> None:
    args = build_parser().parse_args(
        ["gate", "prompts/instruct", "--model", "/m", "--recipe", "reap:0.25", "--recipe", "freq:0.5",
         "--html", "r.html", "-m", "generative", "--pytest-args", "-x", "-q"]
    )
    assert _pytest_args(args, update=False) == [
        "prompts/instruct", "--evalsuite-model=/m", "--evalsuite-recipe=reap:0.25",
        "--evalsuite-recipe=freq:0.5", "--evalsuite-html=r.html", "-m", "generative", "-x", "-q",
    ]


def test_a_bare_built_in_suite_name_is_the_packaged_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsuite.suites import builtin_root

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["record", "instruct", "--model", "/m"])
    assert _pytest_args(args, update=True)[0] == str(builtin_root() / "instruct")
    (tmp_path / "instruct").mkdir()  # a folder of that name here wins: it is a path
    assert _pytest_args(args, update=True)[0] == "instruct"


def test_record_is_the_only_command_that_updates_baselines() -> None:
    record = build_parser().parse_args(["record"])
    assert _pytest_args(record, update=True)[-1] == "--evalsuite-update-baselines"
    gate = build_parser().parse_args(["gate"])
    assert "--evalsuite-update-baselines" not in _pytest_args(gate, update=False)


def test_info_prints_layout_and_fingerprint(tiny_moe_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", str(tiny_moe_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_type"] == "qwen3_moe"
    assert len(info["fingerprint"]) == 64
    assert [layer["experts"] for layer in info["moe_layers"]] == [8, 8]


def test_compress_writes_a_plain_checkpoint(tiny_moe_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    assert main(["compress", "--model", str(tiny_moe_path), "--recipe", "random:0.5", "--out", str(out)]) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.config.num_experts == 4
    record = json.loads((out / "evalsuite_compression.json").read_text())
    assert all(len(layer["removed"]) == 4 for layer in record["layers"])


def test_bad_recipe_is_a_clean_error(tiny_moe_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compress", "--model", str(tiny_moe_path), "--recipe", "nonsense:0.5", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "reap" in err
