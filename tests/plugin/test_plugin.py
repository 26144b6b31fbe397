"""The pytest plugin end to end on a tiny MoE, through pytester (in-process inner pytest runs)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SUITE = """
defaults:
  domain: chat
  language: en
  max_new_tokens: 12
cases:
  - id: greet
    prompt: "hello world"
  - id: es-cat
    domain: translation
    language: es
    prompt: "translate: the cat"
    reference: "el gato"
  - id: sums
    prompt: "ab cd ef gh ij kl"
    answer: "zz"
"""


@pytest.fixture
def project(gate_project, varied_moe_path: Path) -> pytest.Pytester:
    return gate_project(SUITE, model=varied_moe_path, settings="max_new_tokens = 12\n")


def _props(xml_path: Path) -> dict[str, dict[str, str]]:
    out = {}
    for case in ET.parse(xml_path).iter("testcase"):
        out[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    return out


def test_missing_baseline_fails_then_record_then_pass(project: pytest.Pytester):
    # a gate run with no baseline fails clearly and records nothing
    result = project.runpytest("-m", "generative", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=19)  # one setup error, not one per item
    result.stdout.fnmatch_lines(["*missing baseline: no baselines for model fingerprint*--evalsuite-update-baselines*"])
    assert not (project.path / "baselines").exists()

    # the explicit flag records (and the same run checks the model against what it just recorded)
    result = project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=20)
    result.stdout.fnmatch_lines(["baselines recorded in *: 3 new, 0 changed, 0 unchanged"])
    files = sorted(p.relative_to(project.path).as_posix() for p in (project.path / "baselines").rglob("*.json"))
    assert len(files) == 4 and files[0].endswith("/demo/es-cat.json") and files[-1].endswith("/model.json")
    stored = json.loads(next((project.path / "baselines").rglob("greet.json")).read_text())
    assert stored["response"] and len(stored["logprobs"]["top_ids"]) == len(stored["response_ids"])

    # no false alarms: the original model passes against its own baseline
    result = project.runpytest("-m", "generative", "-p", "no:cacheprovider", "--junitxml=out.xml")
    result.assert_outcomes(passed=20)
    result.stdout.fnmatch_lines(["*evalsuite gate summary*", "base * 0"])
    props = _props(project.path / "out.xml")
    assert props["divergence[base]"]["case"] == "es-cat" or props["divergence[base]"]["case"] in {"greet", "sums"}
    assert {"recipe", "check", "baseline_value", "new_value", "tolerance"} <= set(props["chrf[base]"])

    # prompt ids are checked on their own (a tokenizer library change is not in the file fingerprint)
    es_cat = next((project.path / "baselines").rglob("es-cat.json"))
    data = json.loads(es_cat.read_text())
    data["prompt_ids"][0] += 1
    es_cat.write_text(json.dumps(data))
    result = project.runpytest("-p", "no:cacheprovider", "prompts", "-k", "es-cat")
    result.assert_outcomes(failed=7)
    result.stdout.fnmatch_lines(["*stale baseline*es-cat.json: the tokenizer of base encodes the prompt differently*"])

    # a changed prompt makes that case's baseline stale, naming why; other cases still run
    suite = project.path / "prompts" / "demo" / "basic.yaml"
    suite.write_text(SUITE.replace("hello world", "hello there"), encoding="utf-8")
    result = project.runpytest("-p", "no:cacheprovider", "prompts", "-k", "greet")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(["*stale baseline*greet.json: the case changed*"])


DISCRIMINATIVE = """
cases:
  - {id: ppl-local, kind: perplexity, domain: prose, data: ppl.jsonl, checks: {perplexity: {max_ratio: 1.05}}}
  - {id: mc-local, kind: multiple_choice, domain: arithmetic, data: mc.jsonl}
"""

CUSTOM_TEST = """
def test_variant_fixtures(evalsuite_model, evalsuite_base_model, evalsuite_baseline):
    assert evalsuite_model.variant.label.startswith("ckpt:")
    assert evalsuite_model.model is not evalsuite_base_model.model
    assert evalsuite_baseline.fingerprint == evalsuite_base_model.fingerprint
"""


def _discriminative_data(folder: Path) -> None:
    (folder / "disc.yaml").write_text(DISCRIMINATIVE, encoding="utf-8")
    texts = ["the cat sat on the mat", "el perro duerme bajo el sol", "def add(a, b): return a + b"]
    (folder / "ppl.jsonl").write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n"
                                              for i, t in enumerate(texts)))
    rows = [{"id": f"m{i}", "context": f"Q: {i}+1=?\nA:", "choices": [f" {i + 1}", f" {i + 2}"], "gold": 0}
            for i in range(6)]
    (folder / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_damaged_model_fails_on_named_checks(project: pytest.Pytester, damaged_path: Path):
    pytest.importorskip("lm_eval")
    pytest.importorskip("accelerate")
    _discriminative_data(project.path / "prompts" / "demo")
    project.makepyfile(test_custom=CUSTOM_TEST)
    record = project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts")
    record.assert_outcomes(passed=22)
    record.stdout.fnmatch_lines(["evalsuite: RECORD baselines of the base model*"])
    result = project.runpytest(
        "-p", "no:cacheprovider", f"--evalsuite-compressed={damaged_path}", "--evalsuite-html=report/gate.html",
        "prompts", "test_custom.py", "-rfp",
    )
    assert result.ret == 1
    out = result.stdout.str()
    label = f"ckpt:{damaged_path.name}"
    for needle in ("evalsuite check failed: divergence", "baseline:", "new:", "tolerance:",
                   "baseline response:", "new response:", "mean KL",
                   f"FAILED prompts/demo/basic.yaml::greet::divergence[{label}]",
                   f"FAILED prompts/demo/disc.yaml::ppl-local::perplexity[{label}]"):
        assert needle in out
    assert f"PASSED test_custom.py::test_variant_fixtures[{label}]" in out
    result.stdout.fnmatch_lines([f"{label} *FAIL*"])
    assert (project.path / "report" / "gate.html").is_file()


def test_broken_case_file_fails_collection_naming_the_field(project: pytest.Pytester):
    bad = project.path / "prompts" / "demo" / "bad.yaml"
    bad.write_text("cases:\n  - {id: oops, prompt: hi, domain: chat, max_new_tokens: lots}\n", encoding="utf-8")
    result = project.runpytest("-p", "no:cacheprovider", "prompts", "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.yaml: case 'oops': field 'max_new_tokens': must be int*"])


def test_marker_alone_collects_prompts_and_ids_read_well(project: pytest.Pytester):
    project.makeini("[pytest]\ntestpaths = tests\n")
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_other.py").write_text("def test_x():\n    pass\n")
    result = project.runpytest("-m", "generative", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["prompts/demo/basic.yaml::es-cat::chrf[[]base[]]", "*20/21 tests collected*"])
    result = project.runpytest("-m", "discriminative", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*no tests collected (21 deselected)*"])
    # an ordinary marker expression does not pull the gate into a normal test run
    result = project.runpytest("-m", "not slow", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["tests/test_other.py::test_x", "1 test collected*"])
