"""The gate's side of the sandbox: the level comes from settings, a refused level is an error (never a
failing or passing sample), and the level used is in the code check's detail and its JUnit property."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.config import DEFAULT_TOLERANCES, GateSettings
from evalsuite.errors import EvalsuiteError
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import CheckInput, check_code
from evalsuite.gate.plan import run_code
from evalsuite.sandbox import SandboxUnavailable, _levels

CASE = Case(id="add", suite="s", file=Path("s.yaml"), kind="code", prompt='def add(a, b):\n    """Sum."""\n',
            tests=["assert add(1, 2) == 3"], entry_point="add", checks={"code": dict(DEFAULT_TOLERANCES["code"])})


@pytest.mark.parametrize("level", ["namespaces", "bwrap", "weak"])
def test_code_check_reports_its_isolation_level(level: str) -> None:
    good = run_code(CASE, "    return a + b\n", level=level)
    assert good["code_passed"] and good["code_sandbox"] == level
    assert good["code_detail"] == f"tests passed [sandbox: {level}]"
    early = run_code(CASE, "    return a - b\nimport os\nos._exit(0)\n", level=level)
    assert not early["code_passed"] and "completion report" in early["code_detail"]
    outcome = check_code(CheckInput(case=CASE, tolerance=CASE.checks["code"], baseline_metrics={"code_passed": True},
                                    new_values=early))
    assert not outcome.passed and outcome.extra["sandbox"] == level and f"[sandbox: {level}]" in outcome.detail


def test_refused_level_makes_the_code_check_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_levels, "unshare_prefix", lambda: (None, "unshare: Operation not permitted"))
    monkeypatch.setattr(_levels, "bwrap_exe", lambda: (None, "bubblewrap is not installed"))
    with pytest.raises(SandboxUnavailable, match="s/add: code check not run: .*Operation not permitted.*weak"):
        run_code(CASE, "    return a + b\n")
    assert run_code(CASE, "    return a + b\n", level="weak")["code_passed"]  # the explicit opt-in


def test_sandbox_setting_is_validated(tmp_path: Path) -> None:
    assert GateSettings().sandbox == "strong"
    assert GateSettings.from_table({"sandbox": "weak"}, tmp_path).sandbox == "weak"
    with pytest.raises(EvalsuiteError, match=r"sandbox.*'none'.*strong, namespaces, bwrap, weak"):
        GateSettings.from_table({"sandbox": "none"}, tmp_path)
