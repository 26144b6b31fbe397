"""Baseline store: diffable files, atomic writes, and clear 'missing' / 'stale' errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.errors import BaselineError
from evalsuite.gate.baselines import BaselineStore, dumps_diffable

FP = "ab" * 32


def _write(store: BaselineStore, case_hash: str = "c1", settings_hash: str = "s1"):
    return store.write_case(
        "demo",
        "greet",
        case_hash=case_hash,
        settings={"dtype": "float32"},
        settings_hash=settings_hash,
        payload={
            "response": "Hello there",
            "response_ids": [5, 6, 7],
            "logprobs": {
                "top_ids": [[5, 1], [6, 2], [7, 3]],
                "top_logprobs": [[-0.1, -2.5], [-0.2, -2.0], [-0.3, -1.5]],
            },
        },
    )


def test_roundtrip_and_diffable_layout(tmp_path):
    store = BaselineStore(tmp_path, FP)
    path = _write(store)
    assert path == tmp_path / FP[:16] / "demo" / "greet.json"
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["response"] == "Hello there" and data["model_fingerprint"] == FP
    assert "torch" in data["versions"] and data["settings"] == {"dtype": "float32"}
    # one line per token position, so a refreshed baseline diffs position by position
    assert "      [5, 1],\n      [6, 2],\n      [7, 3]\n" in text
    loaded = store.load("demo", "greet", case_hash="c1", settings_hash="s1")
    assert loaded.response_ids == [5, 6, 7]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(_json)
def test_dumps_diffable_roundtrips_any_json(obj):
    assert json.loads(dumps_diffable(obj)) == obj


def test_dumps_diffable_is_json():
    obj = {"a": [1, 2], "b": [[1.5, 2], [3, 4]], "c": {"d": "é\n"}, "e": [], "f": [{"x": 1}]}
    assert json.loads(dumps_diffable(obj)) == obj


def test_missing_and_stale_messages(tmp_path):
    store = BaselineStore(tmp_path, FP, model_path="models/m")
    with pytest.raises(BaselineError, match=r"missing baseline: no baselines for model fingerprint abab.*update"):
        store.load("demo", "greet", case_hash="c1", settings_hash="s1")
    store.write_model_info({"path": "models/m"})
    _write(store)
    with pytest.raises(BaselineError, match="missing baseline for case demo/other"):
        store.load("demo", "other", case_hash="c1", settings_hash="s1")
    with pytest.raises(BaselineError, match="the case changed"):
        store.load("demo", "greet", case_hash="c2", settings_hash="s1")
    with pytest.raises(BaselineError, match="generation settings changed"):
        store.load("demo", "greet", case_hash="c1", settings_hash="s2")
    changed = BaselineStore(tmp_path, "cd" * 32, model_path="models/m")
    with pytest.raises(BaselineError, match="the model changed"):
        changed.load("demo", "greet", case_hash="c1", settings_hash="s1")
