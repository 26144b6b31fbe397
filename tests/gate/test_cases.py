"""Prompt-case YAML: valid files become cases; every mistake names the file, the case and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.config import DEFAULT_TOLERANCES
from evalsuite.errors import CaseFileError
from evalsuite.gate.cases import load_case_file

GOOD = """
suite: demo
defaults:
  domain: chat
  language: en
  max_new_tokens: 32
cases:
  - id: greet
    prompt: "Say hello."
    keywords: [hello]
  - id: es-weather
    domain: translation
    language: es
    prompt: "English: The weather is nice.\\nSpanish:"
    reference: "Hace buen tiempo."
    checks:
      chrf: {max_drop: 5}
      divergence: false
  - id: add
    domain: code
    language: code
    prompt: "def add(a, b):\\n"
    tests: ["assert add(1, 2) == 3"]
    entry_point: add
"""


def _write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    folder = tmp_path / "prompts" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file(tmp_path):
    cases = load_case_file(_write(tmp_path, GOOD))
    assert [c.id for c in cases] == ["greet", "es-weather", "add"]
    greet, es, add = cases
    assert greet.suite == "demo" and greet.max_new_tokens == 32 and greet.keywords == ["hello"]
    assert "chrf" not in greet.checks and "divergence" in greet.checks
    assert es.checks["chrf"]["max_drop"] == 5
    assert "divergence" not in es.checks
    assert add.checks["code"] == DEFAULT_TOLERANCES["code"]
    assert add.tests == ["assert add(1, 2) == 3"]


def test_project_tolerances_then_case_overrides(tmp_path):
    project = {k: dict(v) for k, v in DEFAULT_TOLERANCES.items()}
    project["chrf"]["max_drop"] = 3.0
    project["length_ratio"]["min_ratio"] = 0.7
    cases = load_case_file(_write(tmp_path, GOOD), tolerances=project)
    assert cases[1].checks["chrf"]["max_drop"] == 5  # the case wins
    assert cases[0].checks["length_ratio"]["min_ratio"] == 0.7  # the project default applies


@pytest.mark.parametrize(
    ("case_yaml", "case", "field", "says"),
    [
        ("- {id: a, domain: x, language: en}", "a", "prompt", "required"),
        ("- {id: a, prompt: p, language: en}", "a", "domain", "required"),
        ("- {id: a, prompt: p, domain: x, colour: red}", "a", "colour", "unknown field"),
        ("- {id: a, prompt: p, domain: x, max_new_tokens: many}", "a", "max_new_tokens", "must be int"),
        ("- {id: a, prompt: p, domain: x, keywords: [1, 2]}", "a", "keywords", "non-empty strings"),
        ("- {id: a, prompt: p, domain: x, checks: {chrf: {max_drop: 1}}}", "a", "checks.chrf", "reference"),
        ("- {id: a, prompt: p, domain: x, checks: {speed: {}}}", "a", "checks.speed", "unknown check"),
        ("- {id: a, prompt: p, domain: x, checks: {length_ratio: {min: 1}}}", "a", "checks.length_ratio", "min"),
        ("- {id: a, prompt: p, domain: x, checks: {length_ratio: {min_ratio: x}}}", "a", "checks.length_ratio",
         "float"),
        ("- {id: a, prompt: p, domain: x}\n  - {id: a, prompt: q, domain: x}", "a", "id", "duplicate"),
        ("- {id: 'bad id', prompt: p, domain: x}", "#1", "id", "id"),
        ("- {id: a, kind: multiple_choice, domain: x}", "a", "data", "needs `data`"),
        ("- {id: a, kind: perplexity, domain: x, data: nope.jsonl}", "a", "data", "does not exist"),
        ("- {id: a, kind: perplexity, domain: x, prompt: p, data: d.jsonl}", "a", "prompt", "not allowed"),
    ],
)
def test_errors_name_file_case_and_field(tmp_path, case_yaml, case, field, says):
    path = _write(tmp_path, "cases:\n  " + case_yaml + "\n")
    with pytest.raises(CaseFileError) as info:
        load_case_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"case {case!r}" in message
    assert f"field {field!r}" in message
    assert says in message


def test_not_yaml_and_wrong_shape(tmp_path):
    with pytest.raises(CaseFileError, match="not valid YAML"):
        load_case_file(_write(tmp_path, "cases: [\n"))
    with pytest.raises(CaseFileError, match="unknown top-level key"):
        load_case_file(_write(tmp_path, "tests: []\n"))


# YAML 1.1 readers turn NEL and the Unicode line/paragraph separators into line breaks, so prompts are drawn
# from text YAML can carry unchanged.
_YAML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029"), min_size=1
)


@settings(max_examples=30, deadline=None)
@given(prompt=_YAML_TEXT.filter(lambda s: s.strip()), other=st.text(min_size=1))
def test_case_hash_tracks_the_prompt_not_the_tolerances(tmp_path_factory, prompt, other):
    import yaml

    def case_with(**extra):
        body = {"cases": [{"id": "x", "domain": "d", "prompt": prompt, **extra}]}
        folder = tmp_path_factory.mktemp("h")
        path = folder / "s.yaml"
        path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        return load_case_file(path)[0]

    plain = case_with()
    assert plain.prompt == prompt
    tightened = case_with(checks={"length_ratio": {"min_ratio": 0.9}}, keywords=["k"])
    assert plain.content_hash(64) == tightened.content_hash(64)
    assert plain.content_hash(64) != plain.content_hash(65)
    if other.strip() and other != prompt:
        changed = case_with()
        changed.prompt = other
        assert changed.content_hash(64) != plain.content_hash(64)
