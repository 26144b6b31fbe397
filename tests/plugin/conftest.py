"""Fixtures for the plugin's tests: a gate project for pytester, a damaged model, a tiny reasoning chat model
(shared MoE fixtures: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


# -- a gate project ------------------------------------------------------------------------------------
@pytest.fixture
def gate_project(pytester: pytest.Pytester):
    """Make ``pytester``'s folder a gate project: ``[tool.evalsuite]`` with these settings (and ``model``
    when given) plus one suite file ``prompts/<suite>/<file>``. Returns the pytester."""

    def make(suite_yaml: str, *, model: Path | None = None, settings: str = "", suite: str = "demo",
             file: str = "basic.yaml") -> pytest.Pytester:
        head = f'model = "{model}"\n' if model is not None else ""
        pytester.makefile(".toml", pyproject=f"[tool.evalsuite]\n{head}{settings}")
        (pytester.path / "prompts" / suite).mkdir(parents=True, exist_ok=True)
        (pytester.path / "prompts" / suite / file).write_text(suite_yaml, encoding="utf-8")
        return pytester

    return make


@pytest.fixture(scope="module")
def damaged_path(varied_moe_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The varied MoE with all but one expert per layer damaged: fails named checks."""
    from evalsuite.gate.testing import damage_experts

    return damage_experts(varied_moe_path, tmp_path_factory.mktemp("damaged"), keep=1)


# -- a tiny reasoning chat model ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def chat_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe"))


@pytest.fixture(scope="session")
def short_trace_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.model.tiny_chat import build_chat_moe

    return build_chat_moe(tmp_path_factory.mktemp("chat-moe-short"), trace_fraction=0.3)


@pytest.fixture()
def gate_verdicts():
    """Read a gate run's JUnit XML: {(case id, check): passed} from the items' user properties."""
    import xml.etree.ElementTree as ET

    def read(xml: Path) -> dict[tuple[str, str], bool]:
        out = {}
        for case in ET.parse(xml).iter("testcase"):
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            if "case" in props and "passed" in props:
                out[(props["case"], props["check"])] = props["passed"] == "True"
        return out

    return read
