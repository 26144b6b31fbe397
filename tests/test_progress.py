"""Progress: one start and one end line per phase in a log, a bar on a terminal, nothing when disabled."""

from __future__ import annotations

import io
import sys

import pytest

from evalsuite.progress import progress


def test_log_gets_one_line_per_phase_start_and_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), "routing statistics")) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "evalsuite: routing statistics (3 batches) ..."
    assert lines[1].startswith("evalsuite: routing statistics: 3 batches in ") and len(lines) == 2


def test_terminal_gets_a_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    assert list(progress(range(5), "generating 5 responses")) == list(range(5))
    assert "\revalsuite: generating 5 responses:   0%|" in stream.getvalue() and "0/5" in stream.getvalue()  # a bar


def test_disabled_is_silent(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALSUITE_PROGRESS", "0")
    assert list(progress(iter("ab"), "scoring")) == ["a", "b"]
    assert capsys.readouterr().err == ""
