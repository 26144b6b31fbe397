"""Under pytest-xdist the summary and the one HTML report hold every check (built from the reports)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("xdist")

SUITE = """
defaults: {domain: chat, language: en, max_new_tokens: 8}
cases:
  - {id: greet, prompt: "hello world"}
  - {id: fox, prompt: "the quick brown fox"}
  - {id: sums, prompt: "ab cd ef gh", answer: "zz"}
  - {id: cat, prompt: "translate: the cat", reference: "el gato", language: es, domain: translation}
"""


def _rows(html: Path) -> int:
    return html.read_text(encoding="utf-8").count('<td class="num mono">') // 2  # baseline + new cell per row


def test_xdist_report_is_complete(gate_project, varied_moe_path: Path) -> None:
    pytester = gate_project(SUITE, model=varied_moe_path, settings="max_new_tokens = 8\n", file="s.yaml")
    refused = pytester.runpytest_subprocess("-m", "evalsuite", "-n", "2", "--evalsuite-update-baselines")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*records one baseline set in one process*without pytest-xdist*"])
    pytester.runpytest_subprocess("-m", "evalsuite", "--evalsuite-update-baselines").assert_outcomes(passed=26)

    parallel = pytester.runpytest_subprocess("-m", "evalsuite", "-n", "2", "--evalsuite-html=parallel.html")
    parallel.assert_outcomes(passed=26)
    header = next(line for line in parallel.outlines if line.startswith("recipe "))
    row = next(line for line in parallel.outlines if line.startswith("base "))
    cells = dict(zip(header.split(), row.split(), strict=True))  # every check of every case, from the workers
    assert sum(int(v.split("/")[1]) for k, v in cells.items() if k not in ("recipe", "failed")) == 26
    assert _rows(pytester.path / "parallel.html") == 26  # one report, every row (not one worker's share)
