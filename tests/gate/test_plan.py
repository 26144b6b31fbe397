"""The middle floor: one registry entry per check, one batched backend call per request type."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.backends.base import EngineInfo
from evalsuite.config import DEFAULT_TOLERANCES, GateSettings
from evalsuite.errors import CaseFileError
from evalsuite.gate.cases import load_case_file
from evalsuite.gate.checks import REGISTRY, CheckSpec
from evalsuite.gate.models import Timing
from evalsuite.gate.outcome import CheckOutcome
from evalsuite.gate.plan import build_plan, execute
from evalsuite.model.generation import Generation, TokenScores

YAML = """
cases:
  - {id: a, domain: d, prompt: "one", answer: "1"}
  - {id: b, domain: d, prompt: "two", stop: ["\\n"]}
  - {id: c, domain: d, prompt: "three", checks: {divergence: false}}
"""


class CountingBackend:
    """Answers every request type and counts the calls (what the work plan promises to batch)."""

    info = EngineInfo("fake", "float32", "0")

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def generate(self, requests, *, top_k=0):
        self.calls.append(("generate", len(requests)))
        return [Generation(list(r.prompt_ids), [7, 8], "text", "length") for r in requests]

    def score(self, requests, *, top_k):
        self.calls.append(("score", len(requests)))
        return [TokenScores([-1.0], [[7]], [[-1.0]], [[-1.0] * len(g) for g in r.gather]) for r in requests]

    def loglikelihood_rolling(self, texts):
        raise AssertionError("no perplexity case here")

    def multiple_choice(self, items):
        raise AssertionError("no multiple-choice case here")

    def close(self):
        pass


class _Stored:
    response_ids = [7, 8]
    logprobs = {"top_ids": [[7, 9], [8, 9]]}


def test_one_backend_call_per_request_type(tmp_path: Path):
    (tmp_path / "s.yaml").write_text(YAML, encoding="utf-8")
    cases = load_case_file(tmp_path / "s.yaml", suite="s")
    plan = build_plan(cases, prompt_ids=lambda c: [len(c.prompt)], budget=lambda c: 4, baseline=lambda c: _Stored())
    assert set(plan.generate) == {"s/a", "s/b", "s/c"}
    assert set(plan.score) == {"s/a", "s/b"}  # c switched divergence off: nothing teacher-forced for it
    assert plan.generate["s/b"].stop == ("\n",)
    backend = CountingBackend()
    results = execute(plan, backend, top_k=8, timing=Timing())
    assert backend.calls == [("generate", 3), ("score", 2)]
    assert len(results[("s/a", "kl_rows")][0]) == 3  # baseline's 2 ids + the tail bucket


def test_registry_is_the_one_place_a_check_is_declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert set(DEFAULT_TOLERANCES) == set(REGISTRY)
    assert all(DEFAULT_TOLERANCES[name] == spec.tolerance for name, spec in REGISTRY.items())

    def shout(x) -> CheckOutcome:
        return x.verdict(x.new_text.isupper(), None, None, "upper case", "shouting")

    spec = CheckSpec("shout", "generative", {"min": 1}, shout, applies=lambda case: case.prompt.startswith("t"))
    monkeypatch.setitem(REGISTRY, "shout", spec)
    (tmp_path / "s.yaml").write_text(YAML, encoding="utf-8")
    cases = {c.id: c for c in load_case_file(tmp_path / "s.yaml", suite="s", tolerances={**DEFAULT_TOLERANCES,
                                                                                        "shout": {"min": 2}})}
    assert cases["b"].checks["shout"] == {"min": 2}  # the project's tolerance, merged once
    assert "shout" not in cases["a"].checks
    (tmp_path / "bad.yaml").write_text("cases:\n  - {id: x, domain: d, prompt: one, checks: {shout: {}}}\n")
    with pytest.raises(CaseFileError, match="shout"):
        load_case_file(tmp_path / "bad.yaml", suite="s")


def test_settings_reject_unknown_backend_and_device():
    from evalsuite.errors import EvalsuiteError

    with pytest.raises(EvalsuiteError, match=r"\.backend: got 'tgi'; choose one of hf, vllm, openai"):
        GateSettings.from_table({"backend": "tgi"}, Path("."))
    with pytest.raises(EvalsuiteError, match=r"\.device_map: got 'everywhere'; use one of auto"):
        GateSettings.from_table({"device_map": "everywhere"}, Path("."))
    with pytest.raises(EvalsuiteError, match=r"\.max_memory: must be dict"):
        GateSettings.from_table({"device_map": "auto", "max_memory": "1GiB"}, Path("."))
    with pytest.raises(EvalsuiteError, match="backend 'hf' only"):
        GateSettings.from_table({"backend": "vllm", "device_map": "auto"}, Path("."))
    table = {"device_map": {"model": "cpu"}, "max_memory": {"cpu": "1GiB"}}
    assert GateSettings.from_table(table, Path(".")).device_map == {"model": "cpu"}


def test_only_non_hf_backends_enter_the_baseline_key():
    s = GateSettings(dtype="float32")
    assert "backend" not in s.generation_key()  # committed hf baselines stay valid
    assert s.generation_hash() != s.generation_hash(backend="vllm")
    assert s.generation_hash(dtype="bfloat16") != s.generation_hash()
