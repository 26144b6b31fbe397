"""HTML report: hostile model output stays text, writes are atomic, the summary counts are right."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evalsuite.errors import StorageError
from evalsuite.reporting import html as report
from evalsuite.reporting.html import render_html_report, write_html_report
from evalsuite.reporting.outcome import CheckOutcome

HOSTILE = (
    "</pre></div><script>alert('x')</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(2)">"quoted" & \'single\'</a><!-- comment --> ]]> '
    "\x00nul \x1bESC \ud800 lone surrogate 我 plane"
)


class _Collect(HTMLParser):
    """Records every start tag and the text inside each <pre>, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.pres: list[str] = []
        self.cells: list[list[str]] = []
        self._in_pre = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "pre":
            self._in_pre = True
            self.pres.append("")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.cells.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pres[-1] += data
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Collect:
    parser = _Collect()
    parser.feed(text)
    parser.close()
    return parser


def _outcome(recipe: str, case: str, check: str, passed: bool, **kw) -> CheckOutcome:
    return CheckOutcome(
        recipe=recipe,
        case_id=case,
        check=check,
        passed=passed,
        baseline_value=kw.pop("baseline_value", 1.0),
        new_value=kw.pop("new_value", 0.5),
        tolerance=kw.pop("tolerance", {"min_ratio": 0.5}),
        baseline_response=kw.pop("baseline_response", "El clima está hermoso hoy."),
        new_response=kw.pop("new_response", "El clima está hermoso hoy y我 plane to go hiking"),
        detail=kw.pop("detail", "ok" if passed else "dropped"),
    )


def test_hostile_text_is_escaped_everywhere() -> None:
    bad = _outcome(
        f"rec{HOSTILE}",
        f"case{HOSTILE}",
        f"check{HOSTILE}",
        False,
        baseline_value=HOSTILE,
        new_value=[HOSTILE],
        tolerance={HOSTILE: HOSTILE},
        baseline_response=HOSTILE,
        new_response="new " + HOSTILE,
        detail=HOSTILE,
    )
    good = _outcome("r", "c", "collapse", True, baseline_response=HOSTILE, new_response=HOSTILE)
    text = render_html_report([bad, good], title=f"title {HOSTILE}", run_info={HOSTILE: HOSTILE})
    parsed = _parse(text)
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "img", "iframe", "object"}
    # the only links are the report's own in-page anchors
    assert all(attrs.get("href", "").startswith("#r") for t, attrs in parsed.tags if t == "a")
    assert all(not k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert "<script" not in text and "<img" not in text and "<!-- comment" not in text
    # responses come back as the exact text, controls/surrogates shown as visible escapes
    visible = HOSTILE.replace("\x00", "\\x00").replace("\x1b", "\\x1b").replace("\ud800", "\\xd800")
    assert visible in parsed.pres
    assert "new " + visible in parsed.pres
    text.encode("utf-8")  # no lone surrogate reached the output


def test_report_is_self_contained() -> None:
    text = render_html_report([_outcome("r", "c", "language", False)], title="t", run_info={"model": "m"})
    lowered = text.lower()
    for needle in ("<script", "<link", "src=", "url(", "http://", "https://", "@import"):
        assert needle not in lowered, needle
    assert "<style>" in text
    assert "default-src 'none'" in text


def test_summary_table_counts_per_recipe_and_check() -> None:
    outcomes = [
        _outcome("reap:0.25", "t1", "language", True),
        _outcome("reap:0.25", "t2", "language", False),
        _outcome("reap:0.25", "t1", "length_ratio", True),
        _outcome("reap:0.25", "t2", "length_ratio", True),
        _outcome("freq:0.5", "t1", "language", False),
        _outcome("freq:0.5", "t2", "language", False),
        _outcome("freq:0.5", "t1", "perplexity", True),
    ]
    parsed = _parse(render_html_report(outcomes, title="gate", run_info={}))
    header = next(row for row in parsed.cells if row and row[0] == "Recipe")
    assert header == ["Recipe", "language", "length_ratio", "perplexity", "All checks"]
    rows = {row[0]: row[1:] for row in parsed.cells if row and row[0] in ("reap:0.25", "freq:0.5")}
    assert rows["reap:0.25"] == ["1 failed / 2", "2 passed", "—", "1 failed / 4"]
    assert rows["freq:0.5"] == ["2 failed / 2", "—", "1 passed", "2 failed / 3"]


def test_failing_case_shows_values_tolerance_detail_and_both_responses() -> None:
    fail = _outcome(
        "freq:0.5",
        "translate_es_weather",
        "language",
        False,
        baseline_value=0,
        new_value=2,
        tolerance={"max_new_findings": 0},
        detail="CJK run '我' inside Spanish",
    )
    also = _outcome("freq:0.5", "translate_es_weather", "collapse", True)
    passing = _outcome("freq:0.5", "explain_monad", "content", True, baseline_response="A monad is ...")
    text = render_html_report([fail, also, passing], title="gate", run_info={"model": "x"})
    failures = text[text.index('id="failures"') : text.index('id="passing"')]
    parsed = _parse(failures)
    row = next(r for r in parsed.cells if r and r[0] == "language")
    assert row == ["language", "0", "2", "max_new_findings=0", "CJK run '我' inside Spanish"]
    assert parsed.pres == [fail.baseline_response, fail.new_response]
    assert "explain_monad" not in failures
    assert "Passed on this case: collapse" in failures
    # passing cases exist only inside collapsed <details>
    passing_part = text[text.index('id="passing"') :]
    assert "explain_monad" in passing_part and "A monad is ..." in passing_part
    assert "<details open" not in text


def test_case_context_and_check_extras_are_shown() -> None:
    outcome = CheckOutcome(
        recipe="merge:0.5",
        case_id="instruct/explain-closures",
        check="content",
        passed=False,
        baseline_value=1.0,
        new_value=0.2,
        tolerance="key-term retention >= 0.5",
        baseline_response="A closure captures variables.",
        new_response="There is no such thing as a closure.",
        detail="new denial",
        extra={
            "prompt": "What is a <closure>?",
            "file": "prompts/instruct/knowledge.yaml",
            "domain": "knowledge",
            "language": "en",
            "lost_keywords": ["scope"],
        },
    )
    text = render_html_report([outcome], title="t", run_info={})
    parsed = _parse(text)
    assert "What is a <closure>?" in parsed.pres
    assert "domain: knowledge · language: en · file: prompts/instruct/knowledge.yaml" in text
    row = next(r for r in parsed.cells if r and r[0] == "content")
    assert row[-1] == "new denial" + "lost_keywords=[scope]"


def test_letters_of_a_script_the_baseline_never_used_are_marked() -> None:
    outcome = _outcome(
        "r",
        "c",
        "language",
        False,
        baseline_response="El clima está hermoso hoy y planeo ir a las montañas.",
        new_response="El clima está hermoso hoy y我 plane <b>to</b> go hiking",
    )
    text = render_html_report([outcome], title="t", run_info={})
    assert '<mark title="script not in the baseline response">我</mark> plane &lt;b&gt;to&lt;/b&gt;' in text
    assert text.count("<mark ") == 1  # Latin letters, accents, spaces and punctuation are not marked
    # the text a reader (or a copy-paste) gets is unchanged
    assert outcome.new_response in _parse(text).pres


def test_values_and_empty_responses_are_readable() -> None:
    outcome = _outcome(
        "r",
        "c",
        "diversity",
        False,
        baseline_value=0.123456789,
        new_value=None,
        tolerance={"n": [1, 2, 3], "per_n": {1: {"new": 0.5}}, "flag": True},
        new_response="",
    )
    parsed = _parse(render_html_report([outcome], title="t", run_info={}))
    row = next(r for r in parsed.cells if r and r[0] == "diversity")
    assert row[1:4] == ["0.123457", "—", "n=[1, 2, 3], per_n={1={new=0.5}}, flag=true"]
    assert "(empty response)" in parsed.pres


def test_all_passing_and_empty_reports() -> None:
    ok = render_html_report([_outcome("r", "c", "collapse", True)], title="t", run_info=None)
    assert "PASSED: all 1 checks passed" in ok
    empty = render_html_report([], title="t", run_info=None)
    assert "No checks ran." in empty


def test_write_creates_folders_and_is_readable(tmp_path: Path) -> None:
    target = tmp_path / "artifacts" / "nested" / "report.html"
    out = write_html_report([_outcome("r", "c", "collapse", False)], target, title="t", run_info={"k": 1})
    assert out == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.stat(target).st_mode & 0o044 == 0o044
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


class _Boom:
    """A value whose rendering fails: the report crashes half-way through being written."""

    def __str__(self) -> str:
        raise RuntimeError("boom while rendering")

    __repr__ = __str__


def test_crash_mid_write_leaves_previous_report(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_html_report([_outcome("r", "old_case", "collapse", True)], target, title="old", run_info={})
    before = target.read_bytes()
    # the first outcomes render fine (and are streamed to the temp file), the last one explodes
    outcomes = [_outcome("r", f"c{i}", "collapse", False, detail="x" * 10_000) for i in range(20)]
    outcomes.append(_outcome("r", "bad", "collapse", False, new_value=_Boom()))
    with pytest.raises(RuntimeError, match="boom"):
        write_html_report(outcomes, target, title="new", run_info={})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_failed_rename_leaves_previous_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous", encoding="utf-8")

    def fail_replace(src, dst) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(report.os, "replace", fail_replace)
    with pytest.raises(StorageError, match="disk gone"):
        write_html_report([_outcome("r", "c", "collapse", True)], target, title="t", run_info={})
    assert target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
