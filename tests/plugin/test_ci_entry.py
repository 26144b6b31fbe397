"""The CI entry point: `pytest -m evalsuite --evalsuite-model PATH` from the project, with no prompts path.

Why: the design card's CI form puts the model path after a space. pytest's rootdir search runs before
plugins register their options, takes that path for a test path and roots the session at the model
folder (or a common ancestor), where no `[tool.evalsuite]` lives. Before the fix the gate then looked
for baselines in the wrong folder, selected 0 items and pytest exited 5, which CI scripts often
tolerate: the gate was skipped silently.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from evalsuite.plugin import project_root

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
defaults: {domain: chat, language: en, max_new_tokens: 8}
cases:
  - id: greet
    prompt: "hello world"
"""

DISCRIMINATIVE = """
cases:
  - {id: ppl-local, kind: perplexity, domain: prose, data: ppl.jsonl}
  - {id: mc-local, kind: multiple_choice, domain: arithmetic, data: mc.jsonl}
"""


@pytest.fixture
def project(gate_project) -> pytest.Pytester:
    """A project with [tool.evalsuite] (no model set there) and one tiny suite."""
    return gate_project(SUITE, settings='max_new_tokens = 8\nsuites = ["demo"]\n')


def test_model_path_after_a_space_still_uses_the_projects_config_and_baselines(
    project: pytest.Pytester, varied_moe_path: Path
):
    # the model lives outside the project, as /models/x does in CI
    assert not varied_moe_path.is_relative_to(project.path)
    record = project.runpytest("--evalsuite-update-baselines", "--evalsuite-model", str(varied_moe_path))
    record.assert_outcomes(passed=6)
    assert list((project.path / "baselines").rglob("greet.json")), "baselines must land in the project"
    result = project.runpytest("-m", "evalsuite", "--evalsuite-model", str(varied_moe_path))
    result.assert_outcomes(passed=6)
    # pytest still roots elsewhere; the header says where the settings came from and how to align pytest
    result.stdout.fnmatch_lines([
        f"evalsuite: gate; model {varied_moe_path}; baselines {project.path / 'baselines'}*",
        f"evalsuite: settings from {project.path / 'pyproject.toml'}; pytest chose rootdir *--rootdir={project.path}",
    ])


def test_project_root_is_pytests_rootdir_when_pytest_found_the_config(project: pytest.Pytester):
    project.makefile(".toml", pyproject="[tool.pytest.ini_options]\naddopts = ''\n[tool.evalsuite]\n")
    config = project.parseconfigure()
    assert config.inipath is not None and project_root(config) == Path(config.rootpath) == project.path


def test_a_gate_run_that_selects_nothing_fails_with_a_message(project: pytest.Pytester, varied_moe_path: Path):
    result = project.runpytest("-m", "evalsuite", "-k", "no-such-case", f"--evalsuite-model={varied_moe_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*evalsuite: this gate run selected no gate items*-k 'no-such-case'*"])
    # a prompts path that selects nothing is a gate run too
    result = project.runpytest("prompts/demo", "-k", "no-such-case", f"--evalsuite-model={varied_moe_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_another_projects_generative_marker_is_left_alone(pytester: pytest.Pytester):
    """No [tool.evalsuite], no --evalsuite-* option: `-m generative` is that project's own marker."""
    pytester.makeini("[pytest]\nmarkers =\n    generative: the project's own marker\n")
    pytester.makepyfile(test_own="import pytest\n\n@pytest.mark.generative\ndef test_own():\n    pass\n")
    pytester.runpytest("-m", "generative").assert_outcomes(passed=1)
    assert pytester.runpytest("-m", "generative", "-k", "nothing").ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_missing_prompts_folder_says_how_to_fix_it(pytester: pytest.Pytester):
    pytester.makefile(".toml", pyproject='[tool.evalsuite]\nprompts = "suites"\n')
    result = pytester.runpytest("-m", "evalsuite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the prompts folder */suites does not exist*--evalsuite-prompts=DIR*"])


def _readme_ci_marker() -> str:
    """The `-m` expression of the CI command the README documents."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [ln for ln in re.findall(r"`(pytest [^`]+)`", text) if "--junitxml" in ln]
    assert len(lines) == 1, f"README should document one CI pytest command, found {lines}"
    argv = shlex.split(lines[0])
    return argv[argv.index("-m") + 1]


def test_documented_ci_command_runs_every_check_kind(project: pytest.Pytester, varied_moe_path: Path):
    demo = project.path / "prompts" / "demo"
    (demo / "disc.yaml").write_text(DISCRIMINATIVE, encoding="utf-8")
    (demo / "ppl.jsonl").write_text('{"text": "the cat sat"}\n', encoding="utf-8")
    (demo / "mc.jsonl").write_text('{"context": "1+1=", "choices": [" 2", " 3"], "gold": 0}\n', encoding="utf-8")
    marker = _readme_ci_marker()
    result = project.runpytest("-m", marker, "--collect-only", "-q", f"--evalsuite-model={varied_moe_path}")
    result.stdout.fnmatch_lines_random([
        "prompts/demo/basic.yaml::greet::collapse[[]base[]]",
        "prompts/demo/disc.yaml::ppl-local::perplexity[[]base[]]",
        "prompts/demo/disc.yaml::mc-local::mc[[]base[]]",
    ])
    # `-m generative` alone leaves the discriminative checks out (what the README used to say)
    result = project.runpytest("-m", "generative", "--collect-only", "-q", f"--evalsuite-model={varied_moe_path}")
    assert "ppl-local" not in result.stdout.str() and "greet::collapse" in result.stdout.str()
