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
