"""Instruct models through the plugin: the built-in `instruct` suite from outside this repository, chat
cases rendered through a Qwen3-style template (`enable_thinking`), and reasoning traces."""

from __future__ import annotations

import glob
import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from evalsuite.suites import builtin_names

ROOT = Path(__file__).resolve().parents[2]


def _install_like_a_wheel(site: Path) -> None:
    """Copy what a wheel of this project holds (Python modules + the package-data globs) into ``site``."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["evalsuite"]
    package = ROOT / "evalsuite"
    files = {Path(p) for pattern in patterns for p in glob.glob(str(package / pattern), recursive=True)}
    files |= {p for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    for path in files:
        if path.is_file():
            target = site / "evalsuite" / path.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def test_instruct_suite_runs_from_an_installed_package_in_a_folder_with_no_project(
    pytester: pytest.Pytester, chat_moe_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`--evalsuite-suite instruct` from an empty folder (no pyproject.toml, no prompts/), with evalsuite
    imported from a copy of what its wheel ships: the suite must come from the package data."""
    site = pytester.mkdir("site")
    _install_like_a_wheel(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    work = pytester.mkdir("work")
    monkeypatch.chdir(work)
    assert "instruct" in builtin_names()
    select = ["--evalsuite-suite", "instruct", "-k", "explain-closures or ppl-en", "-p", "no:cacheprovider",
              f"--evalsuite-model={chat_moe_path}", "-v"]
    record = pytester.runpytest_subprocess("--evalsuite-update-baselines", *select)
    out = record.stdout.str()
    assert record.ret == 0, out[-3000:]
    record.assert_outcomes(passed=7)
    where = pytester.run(sys.executable, "-c", "import evalsuite.plugin as p; print(p.__file__)")
    assert where.stdout.lines[-1] == str(site / "evalsuite" / "plugin.py"), where.stdout.str()
    stored = json.loads(next((work / "baselines").rglob("explain-closures.json")).read_text())
    assert stored["suite"] == "instruct" and stored["response"]
    gate = pytester.runpytest_subprocess("-m", "evalsuite", *select)
    gate.stdout.fnmatch_lines_random(["*knowledge.yaml::explain-closures::collapse[[]base[]] PASSED*",
                                      "*heldout.yaml::ppl-en::perplexity[[]base[]] PASSED*"])
    gate.assert_outcomes(passed=7)


def test_unknown_suite_names_the_built_in_ones(pytester: pytest.Pytester):
    result = pytester.runpytest("-m", "evalsuite", "--evalsuite-suite", "instrukt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*suite 'instrukt' not found*built-in: instruct*"])


CHAT_SUITE = """
defaults: {domain: chat, language: en, max_new_tokens: 120, reasoning: think}
cases:
  - id: two-plus-two
    prompt: what is two plus two
    answer: four
  - id: red-fruit
    prompt: name a red fruit
    answer: apple
  - id: spanish-off
    prompt: say hello in spanish
    chat_template_kwargs: {enable_thinking: false}
"""


@pytest.fixture
def chat_project(gate_project, chat_moe_path: Path) -> pytest.Pytester:
    return gate_project(CHAT_SUITE, model=chat_moe_path, settings='suites = ["chat"]\n', suite="chat",
                        file="think.yaml")


def _baseline(project: pytest.Pytester, case: str) -> dict:
    return json.loads(next((project.path / "baselines").rglob(f"{case}.json")).read_text())


def test_reasoning_trace_is_split_off_stored_and_checked(chat_project: pytest.Pytester, short_trace_moe_path: Path):
    chat_project.runpytest("--evalsuite-update-baselines").assert_outcomes(passed=23)
    on, off = _baseline(chat_project, "two-plus-two"), _baseline(chat_project, "spanish-off")
    # the rendered prompt is stored: thinking on leaves the trace to the model, off closes it in the prompt
    assert on["prompt"] == "<|im_start|>user\nwhat is two plus two<|im_end|>\n<|im_start|>assistant\n"
    assert off["prompt"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # the answer checks see the answer only; the trace is kept for the reasoning check
    assert on["response"] == "the answer is four"
    assert on["metrics"]["reasoning"] == {
        "trace": "add two and two: count up from two by two steps, that gives four", "closed": True}
    assert off["response"] == "hello is hola" and off["metrics"]["reasoning"]["trace"] == ""
    # the original passes against itself
    chat_project.runpytest("-m", "evalsuite").assert_outcomes(passed=23)
    # a model with the same answers but traces cut to 30%: only the reasoning check (and the logits) notice
    result = chat_project.runpytest("-m", "evalsuite", f"--evalsuite-compressed={short_trace_moe_path}", "-rf")
    out = result.stdout.str()
    label = f"ckpt:{short_trace_moe_path.name}"
    for case in ("two-plus-two", "red-fruit"):
        assert f"FAILED prompts/chat/think.yaml::{case}::reasoning[{label}]" in out
        for check in ("answer", "length_ratio", "content", "collapse"):
            assert f"{case}::{check}[{label}]" not in out, (case, check)
    assert "the reasoning trace shrank to" in out
    assert "spanish-off::reasoning" not in out  # thinking off: no trace on either side, nothing to compare


def test_changing_a_template_argument_makes_the_baseline_stale(chat_project: pytest.Pytester):
    chat_project.runpytest("--evalsuite-update-baselines", "-k", "two-plus-two").assert_outcomes(passed=8)
    # the project switches thinking off for every chat case: the rendered prompt changed
    pyproject = chat_project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\nchat_template_kwargs = {enable_thinking = false}\n")
    result = chat_project.runpytest("-m", "evalsuite", "-k", "two-plus-two")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(["*stale baseline*two-plus-two.json: the case changed*"])


def test_project_reasoning_setting_applies_to_chat_cases_without_one(chat_project: pytest.Pytester):
    suite = chat_project.path / "prompts" / "chat" / "think.yaml"
    suite.write_text(CHAT_SUITE.replace("reasoning: think", "chat: true"), encoding="utf-8")
    result = chat_project.runpytest("-m", "evalsuite", "--collect-only", "-q")
    assert "two-plus-two::reasoning" not in result.stdout.str()
    pyproject = chat_project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\nreasoning = "think"\n')
    result = chat_project.runpytest("-m", "evalsuite", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["prompts/chat/think.yaml::two-plus-two::reasoning[[]base[]]"])
