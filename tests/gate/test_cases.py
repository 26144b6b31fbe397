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
        ("- {id: a, prompt: p, domain: x, checks: {length_ratio: {min_ratio: x}}}", "a",
         "checks.length_ratio.min_ratio", "float"),
        # ranges, not only types: each of these silently turned a check off or made it pass
        ("- {id: a, prompt: p, domain: x, checks: {collapse: {max_degenerate_fraction: .nan}}}", "a",
         "checks.collapse.max_degenerate_fraction", "got nan; must be a finite number >= 0 and <= 1"),
        ("- {id: a, prompt: p, domain: x, checks: {length_ratio: {max_ratio: .inf}}}", "a",
         "checks.length_ratio.max_ratio", "got inf"),
        ("- {id: a, prompt: p, domain: x, checks: {length_ratio: {min_ratio: 1.5}}}", "a",
         "checks.length_ratio.min_ratio", "above 1 an unchanged response fails"),
        ("- {id: a, prompt: p, domain: x, checks: {content: {min_retention: -1}}}", "a",
         "checks.content.min_retention", "got -1"),
        ("- {id: a, prompt: p, domain: x, tests: [assert f()], checks: {code: {timeout_s: 0}}}", "a",
         "checks.code.timeout_s", "must be a finite number > 0"),
        ("- {id: a, prompt: p, domain: x, tests: [assert f()], checks: {code: {timeout_s: .nan}}}", "a",
         "checks.code.timeout_s", "got nan"),
        ("- {id: a, prompt: p, domain: x, tests: [assert f()], checks: {code: {timeout_s: -3}}}", "a",
         "checks.code.timeout_s", "got -3"),
        ("- {id: a, prompt: p, domain: x, answer: ''}", "a", "answer", "must not be empty"),
        ("- {id: a, prompt: p, domain: x, answer: '  '}", "a", "answer", "must not be empty"),
        ("- {id: a, prompt: p, domain: x, answer: .nan}", "a", "answer", "finite"),
        ("- {id: a, prompt: p, domain: x, reference: ''}", "a", "reference", "must not be empty"),
        ("- {id: a, prompt: p, domain: x, max_new_tokens: 0}", "a", "max_new_tokens", "between 1 and"),
        ("- {id: a, prompt: p, domain: x, max_new_tokens: 1000000000}", "a", "max_new_tokens", "between 1 and"),
        ("- {id: a, kind: perplexity, domain: x, data: d.jsonl, limit: 0}", "a", "limit", ">= 1"),
        ("- {id: a, prompt: p, domain: x, tests: [assert f()], entry_point: 'f()'}", "a", "entry_point",
         "function name"),
        ("- {id: a, prompt: p, domain: x, checks: {mc: {alpha: 0}}}", "a", "checks.mc", "discriminative"),
        ("- {id: a, prompt: p, domain: x}\n  - {id: a, prompt: q, domain: x}", "a", "id", "duplicate"),
        ("- {id: 'bad id', prompt: p, domain: x}", "#1", "id", "id"),
        ("- {id: \"a\\n\", prompt: p, domain: x}", "#1", "id", "got 'a\\n'"),  # `$` matched before \n
        ("- {id: '..', prompt: p, domain: x}", "#1", "id", "got '..'"),
        ("- {id: 'a/b', prompt: p, domain: x}", "#1", "id", "got 'a/b'"),
        ("- {id: 'a.', prompt: p, domain: x}", "#1", "id", "must not end in '.'"),
        ("- {id: \"a\\tb\", prompt: p, domain: x}", "#1", "id", "got 'a\\tb'"),
        ("- {id: " + "x" * 101 + ", prompt: p, domain: x}", "#1", "id", "1-100 letters"),
        ("- {id: Greet, prompt: p, domain: x}\n  - {id: greet, prompt: q, domain: x}", "greet", "id",
         "ignoring case"),
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


@pytest.mark.parametrize("stem", ["...", "..", ".hidden", "a b", "-x"])
def test_suite_named_after_a_bad_file_name_is_refused(tmp_path, stem):
    path = tmp_path / f"{stem}.yaml"
    path.write_text("- {id: model, prompt: p, domain: x}\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"field 'suite': the suite name .* comes from the file or folder name"):
        load_case_file(path, suite=path.stem)


@pytest.mark.parametrize("suite", ["'..'", "'a/b'", "\"s\\n\"", "''"])
def test_bad_suite_key_is_refused(tmp_path, suite):
    with pytest.raises(CaseFileError, match="field 'suite'"):
        load_case_file(_write(tmp_path, f"suite: {suite}\ncases:\n  - {{id: a, prompt: p, domain: x}}\n"))


def test_benign_look_alikes_load(tmp_path):
    text = (
        "suite: v1.2_demo-x\ncases:\n"
        "  - {id: en-es.v2, prompt: p, domain: x, answer: 0, reference: r, max_new_tokens: 32768}\n"
        "  - {id: A1, prompt: p, domain: x, checks: {code: false, length_ratio: {min_ratio: 0, max_ratio: 1}}}\n"
        "  - {id: b, prompt: p, domain: x, tests: [assert f()], entry_point: f,"
        " checks: {code: {timeout_s: 0.5, max_drop: 1}}}\n"
    )
    cases = load_case_file(_write(tmp_path, text))
    assert [c.id for c in cases] == ["en-es.v2", "A1", "b"]
    assert cases[0].answer == "0" and cases[0].max_new_tokens == 32768
    assert cases[2].checks["code"]["timeout_s"] == 0.5


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("cases:\n  - {id: a, prompt: p, prompt: q, domain: x}\n", "prompt"),
        ("cases:\n  - id: a\n    prompt: p\n    domain: x\n    domain: y\n", "domain"),
        ("cases: []\ncases:\n  - {id: a, prompt: p, domain: x}\n", "cases"),
        ("defaults: {checks: {chrf: false, chrf: {max_drop: 1}}}\ncases: []\n", "chrf"),
    ],
)
def test_duplicate_yaml_keys_are_refused(tmp_path, text, key):
    with pytest.raises(CaseFileError, match=rf"not valid YAML \(line \d+, column \d+\): key '{key}' given twice"):
        load_case_file(_write(tmp_path, text))


def test_unhashable_yaml_key_is_a_clear_error(tmp_path):
    with pytest.raises(CaseFileError, match="not valid YAML"):
        load_case_file(_write(tmp_path, "cases:\n  - {[1]: x}\n"))
