"""[tool.evalsuite]: the documented table matches the code's defaults; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.config import DEFAULT_TOLERANCES, GateSettings, load_pyproject_table
from evalsuite.errors import EvalsuiteError

ROOT = Path(__file__).resolve().parents[2]


def test_project_table_documents_the_defaults():
    table, path = load_pyproject_table(ROOT)
    assert path == ROOT / "pyproject.toml"
    settings = GateSettings.from_table(table, ROOT)
    assert settings.tolerances == DEFAULT_TOLERANCES
    assert set(table["tolerances"]) == set(DEFAULT_TOLERANCES) - {"answer"}  # answer has no settings
    assert settings.model is None and settings.max_new_tokens == 64


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"modle": "x"}, "unknown key 'modle'"),
        ({"max_new_tokens": "many"}, "max_new_tokens must be int"),
        ({"tolerances": {"chrf": {"max_dorp": 1}}}, "unknown setting 'max_dorp' for check 'chrf'"),
        ({"tolerances": {"speed": {}}}, "unknown check 'speed'"),
        ({"tolerances": {"mc": {"alpha": "low"}}}, "alpha must be float"),
    ],
)
def test_bad_table_names_the_key(table, says):
    with pytest.raises(EvalsuiteError, match=says):
        GateSettings.from_table(table, ROOT)


def test_generation_hash_ignores_batch_size():
    a = GateSettings(batch_size=1)
    b = GateSettings(batch_size=16)
    assert a.generation_hash() == b.generation_hash()
    assert a.generation_hash() != GateSettings(top_k_logprobs=4).generation_hash()
