"""Fixtures for the plugin's tests: a tiny reasoning chat model (shared MoE fixtures: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


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
