"""Noise floor and suite verdict end to end: record with benign replicates, gate noise and damage."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# four prompt cases of the tiny model (three kinds of check), one line each
SUITE = """
defaults: {domain: chat, language: en, max_new_tokens: 12}
cases:
  - {id: greet, prompt: "hello world"}
  - {id: es-cat, domain: translation, language: es, prompt: "translate: the cat", reference: "el gato"}
  - {id: sums, prompt: "ab cd ef gh ij kl", answer: "zz"}
  - {id: tale, prompt: "once upon a time"}
"""


@pytest.fixture
def floored_project(gate_project, varied_moe_path: Path):
    """The demo suite on the varied MoE, recording a floor of 4 weight-noise replicates."""

    def make(extra: str = "") -> pytest.Pytester:
        return gate_project(SUITE, model=varied_moe_path,
                            settings=f"max_new_tokens = 12\nnoise_replicates = 4\nnoise_scales = [0.01]\n{extra}")

    return make


def _global_props(xml_path: Path) -> dict[str, str]:
    root = ET.parse(xml_path).getroot()
    return {p.get("name"): p.get("value") for p in root.iter("property") if p.get("name", "").startswith("evalsuite_")}


def test_floor_recorded_then_noise_passes_and_damage_fails(floored_project, damaged_path: Path):
    project = floored_project()
    record = project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts")
    record.assert_outcomes(passed=26)
    record.stdout.fnmatch_lines(["base: suite verdict PASS (items; baselines and noise floor recorded in this run;*"])
    floor_file = next((project.path / "baselines").rglob("_noise.json"))
    floor = json.loads(floor_file.read_text())
    assert [r["id"] for r in floor["replicates"]] == [f"noise:0.01:{i}" for i in range(4)]
    assert set(floor["cases"]) == {"greet", "es-cat", "sums", "tale"}
    assert all(len(c["checks"]["divergence"]["deviation"]) == 4 for c in floor["cases"].values())
    assert all(r["mean_kl"] <= 0.05 for r in floor["replicates"])  # the stated bound (noise_max_kl)

    # benign noise with an unseen seed: suite verdict PASS, exit 0
    noise = project.runpytest("-p", "no:cacheprovider", "prompts", "--evalsuite-recipe=benign:noise:0.01:77",
                              "--junitxml=noise.xml")
    assert noise.ret == 0
    noise.stdout.fnmatch_lines(["benign:noise:0.01:77: suite verdict PASS (suite; exact one-sided Fisher*"])
    assert _global_props(project.path / "noise.xml")["evalsuite_verdict[benign:noise:0.01:77]"] == "PASS"

    # a damaged model: suite verdict FAIL naming the family, exit 1, JUnit carries the verdict
    label = f"ckpt:{damaged_path.name}"
    damaged = project.runpytest("-p", "no:cacheprovider", "prompts", f"--evalsuite-compressed={damaged_path}",
                                "--junitxml=damaged.xml", "--evalsuite-html=report.html")
    assert damaged.ret == 1
    damaged.stdout.fnmatch_lines([f"{label}: suite verdict FAIL*", "  FAIL divergence: */4 cases failed vs benign*"])
    props = _global_props(project.path / "damaged.xml")
    assert props[f"evalsuite_verdict[{label}]"] == "FAIL"
    assert "cases failed vs benign" in props[f"evalsuite_family[{label}][divergence]"]
    page = (project.path / "report.html").read_text()
    assert 'id="suite-verdict"' in page and f"{label}: suite verdict FAIL" in page

    # re-recording one case (-k) refreshes its entry and keeps every other case's (same replicate ids)
    again = project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts", "-k", "greet")
    assert again.ret == 0
    assert set(json.loads(floor_file.read_text())["cases"]) == {"greet", "es-cat", "sums", "tale"}


def test_exit_status_follows_the_suite_verdict_only_in_suite_mode(floored_project, damaged_path: Path):
    # an alpha no test can reach, the exact test alone (no severity rule): the damaged model's items fail,
    # the suite verdict passes
    project = floored_project("verdict_alpha = 1e-12\nverdict_severity = false\n")
    project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts").assert_outcomes(passed=26)
    args = ["-p", "no:cacheprovider", "prompts", f"--evalsuite-compressed={damaged_path}"]
    suite = project.runpytest(*args)
    assert suite.ret == 0 and suite.parseoutcomes()["failed"] >= 3  # failing items stay visible
    suite.stdout.fnmatch_lines(["*suite verdict PASS (suite;*"])
    items = project.runpytest(*args, "--evalsuite-verdict=items")
    assert items.ret == 1
    items.stdout.fnmatch_lines(["*suite verdict FAIL (items; verdict = items: any failing item fails the suite)"])


def test_sweep_finds_the_largest_passing_ratio(floored_project):
    pytester = floored_project()
    pytester.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", "prompts").assert_outcomes(passed=26)
    result = pytester.runpytest("-p", "no:cacheprovider", "prompts", "--evalsuite-sweep=freq",
                                "--evalsuite-ratios=0.125,0.5", "--evalsuite-html=sweep.html", "--junitxml=out.xml")
    out = result.stdout.str()
    # the same pytest parametrisation as recipes: one item per check and ratio
    counts = result.parseoutcomes()
    assert counts.get("passed", 0) + counts.get("failed", 0) == 2 * 26
    verdicts = dict(re.findall(r"^(frequency:[0-9.]+): suite verdict (PASS|FAIL)", out, re.M))
    assert verdicts == {"frequency:0.125": "PASS", "frequency:0.5": "FAIL"}  # half the experts breaks the tiny model
    result.stdout.fnmatch_lines(["sweep freq: largest passing ratio 0.125", "  0.125 *PASS*", "  0.5 *FAIL*"])
    assert result.ret == 0  # a sweep reports; its failing ratios are the point, not an error
    page = (pytester.path / "sweep.html").read_text()
    assert 'id="sweep"' in page and "<svg" in page and "largest passing ratio 0.125" in page
    assert 'name="evalsuite_sweep[freq]" value="0.125"' in (pytester.path / "out.xml").read_text()
