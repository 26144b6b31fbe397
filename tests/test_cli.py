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


def test_info_is_compact_and_reads_no_weights(
    tiny_moe_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalsuite.model import loading

    real = loading.load_model
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("info loaded the model"))
    assert main(["info", "--model", str(tiny_moe_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_type"] == "qwen3_moe" and len(info["fingerprint"]) == 64
    assert info["moe_layers"] == [{"layers": [0, 1], "summary": "8 experts, top-2, per-expert tensors"}]
    assert main(["info", "--model", str(tiny_moe_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].strip() == "MoE layers 0-1 (2): 8 experts, top-2, per-expert tensors"
    monkeypatch.setattr(loading, "load_model", real)
    assert main(["info", "--model", str(tiny_moe_path), "--probe"]) == 0
    assert "per-expert tensors; softmax, top-2" in capsys.readouterr().out.splitlines()[1]


# every flag of `gate` / `record`: how it is given, and where it must arrive in the pytest run
FLAGS = {
    "suites": ([], lambda s, c, g: c.args == ["prompts/x"]),
    "model": (["--model", "/m"], lambda s, c, g: s.model == "/m"),
    "dtype": (["--dtype", "bfloat16"], lambda s, c, g: s.dtype == "bfloat16"),
    "trust_remote_code": (["--trust-remote-code"], lambda s, c, g: s.trust_remote_code is True),
    "baselines": (["--baselines", "bl"], lambda s, c, g: Path(s.baselines).name == "bl"),
    "marker": (["-m", "generative"], lambda s, c, g: c.option.markexpr == "generative"),
    "recipe": (
        ["--recipe", "reap:0.25", "--recipe", "freq:0.5"], lambda s, c, g: s.recipes == ["reap:0.25", "freq:0.5"]
    ),
    "compressed": (
        ["--compressed", "runs/a/final", "--compressed", "runs/b/final"],
        lambda s, c, g: [v.label for v in g.variants] == ["ckpt:a/final", "ckpt:b/final"],
    ),
    "html": (["--html", "r.html"], lambda s, c, g: Path(s.html).name == "r.html"),
    "pytest_args": (["--pytest-args", "-x"], lambda s, c, g: c.option.maxfail == 1),
    "backend": (["--backend", "vllm"], lambda s, c, g: s.backend == "vllm"),
    "device": (["--device", "cpu"], lambda s, c, g: s.device == "cpu"),
    "device_map": (["--device-map", "sequential"], lambda s, c, g: s.device_map == "sequential"),
    "max_memory": (["--max-memory", '{"cpu": "2GiB"}'], lambda s, c, g: s.max_memory == {"cpu": "2GiB"}),
    "offload_folder": (["--offload-folder", "off"], lambda s, c, g: s.offload_folder == "off"),
    "threads": (["--threads", "3"], lambda s, c, g: s.threads == 3),
    "batch_size": (["--batch-size", "5"], lambda s, c, g: s.batch_size == 5),
    "server_url": (["--server-url", "http://h:1"], lambda s, c, g: s.server_url == "http://h:1"),
    "server_model": (["--server-model", "m"], lambda s, c, g: s.server_model == "m"),
    "vllm_command": (["--vllm-command", "py -m v"], lambda s, c, g: s.vllm_command == ["py", "-m", "v"]),
    "vllm_args": (["--vllm-args", "--max-model-len 4096"], lambda s, c, g: s.vllm_args == ["--max-model-len", "4096"]),
    "tensor_parallel": (["--tensor-parallel", "2"], lambda s, c, g: s.tensor_parallel == 2),
    "pipeline_parallel": (["--pipeline-parallel", "2"], lambda s, c, g: s.pipeline_parallel == 2),
    "baseline_backend": (["--baseline-backend", "hf"], lambda s, c, g: s.baseline_backend == "hf"),
    "baseline_dtype": (["--baseline-dtype", "float32"], lambda s, c, g: s.baseline_dtype == "float32"),
    "noise_replicates": (["--noise-replicates", "3"], lambda s, c, g: s.noise_replicates == 3),
    "method": (["--method", "freq", "--method", "reap@english", "--ratios", "0.25", "0.5"],
               lambda s, c, g: [v.label for v in g.variants] == ["frequency:0.25", "frequency:0.5", "reap:0.25@english",
                                                                  "reap:0.5@english"]),
    "ratios": (["--method", "freq", "--ratios", "0.1", "0.2"], lambda s, c, g: s.sweep_ratios == [0.1, 0.2]),
}


@pytest.mark.parametrize("command", ["gate", "record", "sweep"])
def test_every_flag_reaches_the_pytest_run(pytester: pytest.Pytester, command: str) -> None:
    from evalsuite.gate.runner import Gate
    from evalsuite.plugin import _settings

    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[command]
    dests = {a.dest for a in sub._actions if a.dest != "help"}
    assert dests <= set(FLAGS), f"new flags {dests - set(FLAGS)}: wire them to the run and add them here"
    for dest in sorted(dests):
        given, arrived = FLAGS[dest]
        required = ["--method", "freq", "--ratios", "0.5"] if command == "sweep" and dest not in {"method", "ratios"} \
            else []
        args = parser.parse_args([command, "prompts/x", *required, *given])
        config = pytester.parseconfig(*_pytest_args(args, update=command == "record"))
        settings = _settings(config)
        assert arrived(settings, config, Gate(settings)), f"{command} {' '.join(given)} did not reach the run"


@pytest.mark.parametrize(
    "command", [["profile"], ["compress", "--recipe", "reap:0.25", "--out", "x"], ["info", "--probe"]]
)
def test_model_flags_reach_the_loader(tiny_moe_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    from evalsuite.model import loading

    seen: dict = {}

    def capture(path, **kwargs):
        seen.update(kwargs, path=path)
        raise loading.ModelLoadError("stop here")

    monkeypatch.setattr(loading, "load_model", capture)
    flags = ["--dtype", "bfloat16", "--trust-remote-code", "--device-map", "auto", "--max-memory", '{"cpu": "1GiB"}',
             "--offload-folder", "off"]
    assert main([*command, "--model", str(tiny_moe_path), *flags]) == 2
    assert seen == {"path": str(tiny_moe_path), "dtype": "bfloat16", "trust_remote_code": True, "device": "cpu",
                    "device_map": "auto", "max_memory": {"cpu": "1GiB"}, "offload_folder": "off"}


def test_gate_without_suite_runs_the_configured_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsuite.errors import EvalsuiteError
    from evalsuite.suites import builtin_root

    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\nsuites = ["instruct"]\n')
    monkeypatch.chdir(tmp_path)
    assert _pytest_args(build_parser().parse_args(["gate"]), update=False)[0] == str(builtin_root() / "instruct")
    (tmp_path / "pyproject.toml").write_text("[tool.evalsuite]\n")
    with pytest.raises(EvalsuiteError, match="no suite given and no prompts folder"):
        _pytest_args(build_parser().parse_args(["gate"]), update=False)
    (tmp_path / "prompts").mkdir()
    assert _pytest_args(build_parser().parse_args(["gate"]), update=False)[0] == str(tmp_path / "prompts")


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
