"""Baseline store: diffable files, atomic writes, and clear 'missing' / 'stale' errors."""

from __future__ import annotations

import json
import os
import re

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


def _stored(tmp_path, data) -> BaselineStore:
    store = BaselineStore(tmp_path, FP)
    path = store.case_path("demo", "greet")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return store


def _good() -> dict:
    return {
        "format": 1, "model_fingerprint": FP, "case_hash": "c1", "settings_hash": "s1", "kind": "generate",
        "response": "Hi", "response_ids": [5, 6], "prompt_ids": [1],
        "logprobs": {"token": [-0.1, -0.2], "top_ids": [[5, 1], [6, 2]], "top_logprobs": [[-0.1, -2.5], [-0.2, -2.0]]},
        "metrics": {},
    }


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: [d], "expected a JSON object, got list"),
        (lambda d: "text", "expected a JSON object, got str"),
        (lambda d: {**d, "response_ids": ["5", "6"]}, "'response_ids' must be a list of token ids"),
        (lambda d: {**d, "response_ids": [5, -1]}, "'response_ids' must be a list of token ids"),
        (lambda d: {**d, "response_ids": [True, 6]}, "'response_ids' must be a list of token ids"),
        (lambda d: {**d, "prompt_ids": {"a": 1}}, "'prompt_ids' must be a list"),
        (lambda d: {**d, "metrics": []}, "'metrics' must be a dict"),
        (lambda d: {**d, "logprobs": "x"}, "'logprobs' must be a dict"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "top_ids": [[5, 1]]}}, "top_ids must hold one list"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "top_ids": [[5, 1], [6]]}}, "equal length"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "top_logprobs": [[-0.1, float("nan")], [-1, -2]]}},
         "finite log-probs"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "token": [-0.1]}}, "logprobs.token"),
    ],
)
def test_corrupt_baseline_is_one_clear_error_for_that_case(tmp_path, edit, says):
    store = _stored(tmp_path, edit(_good()))
    with pytest.raises(BaselineError, match=rf"corrupt baseline .*greet\.json: .*{re.escape(says)}.*record it"):
        store.load("demo", "greet", case_hash="c1", settings_hash="s1")


def test_sound_baseline_and_empty_response_load(tmp_path):
    assert _stored(tmp_path, _good()).load("demo", "greet", case_hash="c1", settings_hash="s1").response == "Hi"
    nothing = {"token": [], "top_ids": [], "top_logprobs": []}
    empty = {**_good(), "response": "", "response_ids": [], "logprobs": nothing}
    assert _stored(tmp_path, empty).load("demo", "greet", case_hash="c1", settings_hash="s1").response_ids == []


def test_model_json_that_is_not_an_object_does_not_break_the_stale_hint(tmp_path):
    (tmp_path / "0123456789abcdef").mkdir()
    (tmp_path / "0123456789abcdef" / "model.json").write_text("[1, 2]")
    with pytest.raises(BaselineError, match="missing baseline: no baselines for model fingerprint"):
        BaselineStore(tmp_path, FP, model_path="m").load("demo", "greet", case_hash="c", settings_hash="s")


@pytest.mark.parametrize(
    ("suite", "case_id"),
    [("..", "model"), (".", "model"), ("demo", "../x"), ("demo", "a\n"), ("a/b", "c"), ("demo", ""),
     ("model.json", "x"), ("MODEL.JSON", "x"), ("demo", "x" * 101), ("demo", "a."), ("/abs", "x")],
)
def test_names_that_could_escape_or_clash_are_refused(tmp_path, suite, case_id):
    store = BaselineStore(tmp_path, FP)
    with pytest.raises(BaselineError, match="a baseline path is made from it"):
        store.case_path(suite, case_id)


def test_written_baselines_are_readable_by_the_group(tmp_path):
    old = os.umask(0o022)
    try:
        path = _write(BaselineStore(tmp_path, FP))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["greet.json"]  # no temp file left


_NAMES = (
    st.text(st.characters(), max_size=12)
    | st.from_regex(r"[A-Za-z0-9._\-/\\\n]{1,12}", fullmatch=True)
    | st.sampled_from([".", "..", "...", "model", "model.json", "a\n", "A", "a/..", "x.", "COM1"])
)


@settings(max_examples=300, deadline=None)
@given(suite=_NAMES, case_id=_NAMES)
def test_no_suite_or_case_name_makes_a_path_outside_the_fingerprint_folder(tmp_path_factory, suite, case_id):
    root = tmp_path_factory.mktemp("b")
    store = BaselineStore(root / "baselines", FP)
    try:
        path = store.case_path(suite, case_id)
    except BaselineError:
        return
    folder = store.folder.resolve()
    resolved = path.resolve()
    assert resolved.is_relative_to(folder) and resolved.relative_to(folder).parts == (suite, f"{case_id}.json")
    assert resolved != folder / "model.json" and "\n" not in str(resolved)


@settings(max_examples=150, deadline=None)
@given(suite=_NAMES, case_id=_NAMES, from_folder=st.booleans())
def test_names_from_case_files_never_escape_either(tmp_path_factory, suite, case_id, from_folder):
    """The same property through the YAML loader: a suite from the file name or `suite:`, an id from `id:`."""
    from evalsuite.errors import CaseFileError
    from evalsuite.gate.cases import load_case_file

    root = tmp_path_factory.mktemp("p")
    body = {"cases": [{"id": case_id, "prompt": "p", "domain": "d"}]}
    if not from_folder:
        body["suite"] = suite
    path = root / "s.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")  # JSON is YAML: any string survives the trip
    try:
        cases = load_case_file(path, suite=suite if from_folder else None)
    except CaseFileError:
        return
    store = BaselineStore(root / "baselines", FP)
    for case in cases:
        resolved = store.case_path(case.suite, case.id).resolve()
        assert resolved.parent.parent == store.folder.resolve()
