"""The built-in `instruct` suite (evalsuite/suites/instruct) loads with the gate's own loader and covers
what it promises.

Why: this suite is what users run against real instruction-tuned MoE models; a malformed case would
fail their collection, and a wrong test or reference would turn every run red (or green) for the
wrong reason. So the code tests are run against known-good solutions, and the translation references
are checked to be in the language and script they claim.
"""

from __future__ import annotations

import ast
import json
from collections import Counter

import pytest

from evalsuite.gate.cases import Case, load_case_file, resolve_data_path
from evalsuite.metrics.language import LANG_SCRIPTS, char_script, check_language, normalize_lang
from evalsuite.suites import builtin_root

SUITE = builtin_root() / "instruct"


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    files = sorted(SUITE.glob("*.yaml"))
    assert files, f"no YAML files in {SUITE}"
    return [case for f in files for case in load_case_file(f)]


def _by_domain(cases: list[Case], domain: str) -> list[Case]:
    return [c for c in cases if c.domain == domain]


def test_every_file_loads_and_ids_are_unique_across_the_suite(cases: list[Case]) -> None:
    generative = [c for c in cases if c.generative]
    assert 40 <= len(generative) <= 70  # a real model answers each in seconds to minutes: keep it a gate
    dupes = [k for k, n in Counter(c.key for c in cases).items() if n > 1]
    assert not dupes, f"case ids must be unique across files of one suite: {dupes}"
    assert {c.suite for c in cases} == {"instruct"}
    assert all(c.chat for c in generative), "an instruct suite talks through the chat template"
    assert all(c.max_new_tokens for c in generative), "real models need an explicit budget per case"


def test_heldout_perplexity_per_language_and_multiple_choice(cases: list[Case]) -> None:
    ppl = {c.language for c in cases if c.kind == "perplexity"}
    assert {"en", "es", "fr", "de", "ru", "zh", "ja", "code"} <= ppl
    mc = [c for c in cases if c.kind == "multiple_choice"]
    assert len(mc) >= 2
    for case in (*mc, *(c for c in cases if c.kind == "perplexity")):
        rows = [json.loads(line) for line in resolve_data_path(case).read_text(encoding="utf-8").splitlines()]
        assert rows, case.id
        fields = {"context", "choices", "gold"} if case.kind == "multiple_choice" else {"text"}
        assert all(fields <= set(r) for r in rows), f"{case.id}: records need {fields}"


def test_domains_are_all_covered(cases: list[Case]) -> None:
    counts = Counter(c.domain for c in cases)
    for domain, minimum in {
        "translation": 12,
        "code": 6,
        "math": 5,
        "reasoning": 5,
        "knowledge": 8,
        "long_form": 3,
    }.items():
        assert counts[domain] >= minimum, f"{domain}: {counts[domain]} < {minimum}"


def test_languages_and_scripts(cases: list[Case]) -> None:
    targets = {normalize_lang(c.language) for c in _by_domain(cases, "translation")} - {"en"}
    assert len(targets) >= 8, targets
    scripts = {frozenset(LANG_SCRIPTS.get(lang, {"Latin"})) for lang in targets}
    assert len(scripts) >= 3, scripts
    # CJK specifically: the seeds' contamination was a Han character inside Spanish
    assert {"zh", "ja", "ko"} <= targets
    # non-English answers outside translation too (reasoning, knowledge, long answers)
    other = {c.domain for c in cases if c.domain != "translation" and c.language not in ("en", "code")}
    assert len(other) >= 3, other


def test_translation_references_are_in_the_target_language_and_script(cases: list[Case]) -> None:
    for case in _by_domain(cases, "translation"):
        assert case.reference, f"{case.id}: translation needs a reference for chrF"
        assert "chrf" in case.checks
        lang = normalize_lang(case.language)
        expected = LANG_SCRIPTS.get(lang, frozenset({"Latin"}))
        used = {char_script(ch) for ch in case.reference} - {"Common", "Unknown", "Inherited"}
        assert used <= set(expected), f"{case.id}: reference uses scripts {used}, expected {set(expected)}"
        result = check_language(case.reference, lang, min_letters=15)
        assert result.passed, f"{case.id}: reference does not read as {lang!r}: {result.detail}"
        for kw in case.keywords:
            assert kw.lower() in case.reference.lower(), f"{case.id}: keyword {kw!r} not in the reference"


def test_long_answers_have_a_length_floor(cases: list[Case]) -> None:
    for case in _by_domain(cases, "long_form"):
        assert case.max_new_tokens and case.max_new_tokens >= 512, case.id
        assert case.checks["collapse"]["min_chars"] >= 300, case.id


def test_knowledge_cases_name_their_key_terms(cases: list[Case]) -> None:
    for case in _by_domain(cases, "knowledge"):
        assert case.keywords, f"{case.id}: an explanation case needs keywords that a good answer contains"
        assert "content" in case.checks


def test_math_and_reasoning_have_checkable_results(cases: list[Case]) -> None:
    for case in _by_domain(cases, "math"):
        assert case.answer, f"{case.id}: a math case needs an `answer`"
        assert case.answer not in case.prompt, f"{case.id}: answer {case.answer!r} appears in the prompt"
    for case in _by_domain(cases, "reasoning"):
        assert case.answer or case.keywords, case.id
        assert case.checks["length_ratio"]["min_ratio"] >= 0.6, "abbreviated reasoning must be caught"
        # an absolute floor too: the seeds' truncated river-crossing answer had 206 characters
        assert case.checks["collapse"]["min_chars"] >= 120, case.id
        if case.answer:
            assert case.answer not in case.prompt, f"{case.id}: the restated problem already contains the answer"


# Known-good solutions, written independently of the prompts' wording, to prove the tests are right.
SOLUTIONS: dict[str, str] = {
    "is_palindrome": """
def is_palindrome(s):
    kept = [c.lower() for c in s if c.isalnum()]
    return kept == kept[::-1]
""",
    "merge_intervals": """
def merge_intervals(intervals):
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out
""",
    "roman_to_int": """
def roman_to_int(s):
    v = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for a, b in zip(s, s[1:] + " "):
        total += -v[a] if b != " " and v[a] < v[b] else v[a]
    return total
""",
    "word_frequencies": """
import re
def word_frequencies(text):
    out = {}
    for w in re.findall(r"[^\\W_]+", text.lower()):
        out[w] = out.get(w, 0) + 1
    return out
""",
    "flatten": """
def flatten(nested):
    out = []
    for x in nested:
        out.extend(flatten(x) if isinstance(x, list) else [x])
    return out
""",
    "rle_encode": """
import itertools
def rle_encode(s):
    return "".join(f"{ch}{len(list(run))}" for ch, run in itertools.groupby(s))
""",
    "binary_search": """
def binary_search(items, target):
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
""",
    "is_balanced": """
def is_balanced(s):
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in s:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack
""",
    "second_largest": """
def second_largest(nums):
    distinct = sorted(set(nums))
    return distinct[-2] if len(distinct) >= 2 else None
""",
    "transpose": """
def transpose(matrix):
    return [list(row) for row in zip(*matrix)]
""",
}

WRONG: dict[str, str] = {
    # plausible bugs a degraded model writes; each must be caught by at least one test
    "is_palindrome": "def is_palindrome(s):\n    return s == s[::-1]\n",
    "merge_intervals": "def merge_intervals(intervals):\n    return sorted(intervals)\n",
    "roman_to_int": "def roman_to_int(s):\n    v = dict(I=1, V=5, X=10, L=50, C=100, D=500, M=1000)\n"
    "    return sum(v[c] for c in s)\n",
    "rle_encode": "def rle_encode(s):\n    import itertools\n"
    "    return ''.join(c + (str(len(list(r))) if len(s) > 1 else '') for c, r in itertools.groupby(s))\n",
    "second_largest": "def second_largest(nums):\n    return sorted(nums)[-2] if len(nums) > 1 else None\n",
    "is_balanced": "def is_balanced(s):\n    return s.count('(') == s.count(')')\n",
}


def _run(program: str) -> None:
    exec(compile(program, "<case>", "exec"), {"__name__": "__case__"})  # our own trusted code only


def test_code_cases_have_tests_that_a_correct_solution_passes(cases: list[Case]) -> None:
    code = _by_domain(cases, "code")
    assert {c.entry_point for c in code} == set(SOLUTIONS), "every code case needs a reference solution here"
    for case in code:
        assert case.entry_point and len(case.tests) >= 3, case.id
        assert "code" in case.checks
        assert f"`{case.entry_point}(" in case.prompt, f"{case.id}: the prompt must name the function"
        for line in case.tests:
            tree = ast.parse(line)
            assert isinstance(tree.body[0], ast.Assert), f"{case.id}: test line is not an assert: {line}"
        _run(SOLUTIONS[case.entry_point] + "\n" + "\n".join(case.tests))
        if case.entry_point in WRONG:
            with pytest.raises(AssertionError):
                _run(WRONG[case.entry_point] + "\n" + "\n".join(case.tests))


def test_conversation_cases_render_every_turn(cases: list[Case]) -> None:
    """Multi-turn and system-prompt cases: every turn reaches the template, the user's turn comes last."""
    from evalsuite.gate.chat import conversation, render_case
    from evalsuite.model.tiny_chat import build_chat_tokenizer

    tok = build_chat_tokenizer()
    conv = _by_domain(cases, "conversation")
    assert len(conv) >= 4
    assert any(c.messages for c in conv) and any(c.system for c in conv)
    for case in conv:
        turns = conversation(case)
        assert turns[-1] == {"role": "user", "content": case.prompt}, case.id
        text = render_case(tok, case).text
        positions = [text.index(t["content"]) for t in turns]
        assert positions == sorted(positions), case.id
