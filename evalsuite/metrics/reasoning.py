"""Reasoning traces: split a response into its trace and its answer, and judge the trace against a baseline.

Why: reasoning models (Qwen3 with thinking on, DeepSeek-R1, GPT-OSS) write a trace before the answer.
The answer checks (language, answer, code, chrF, ...) must see the answer only: a trace in English
before a Spanish answer is not contamination, and a keyword found in the trace is not an answer. The
trace is a signal of its own: the seeds' pruned model cut a 1,119-character solution to 206 characters
that never solved the puzzle, and in a reasoning model that shows first as a trace that shrinks,
collapses into a loop or never ends (the budget runs out inside it, so no answer is given).

Styles:
- ``think``: ``<think>...</think>`` (Qwen3, DeepSeek-R1, QwQ). The opening tag may sit at the end of the
  rendered prompt (templates that force thinking); pass the prompt so the split knows.
- ``harmony``: GPT-OSS channels, ``<|channel|>analysis<|message|>...<|end|>`` then
  ``<|start|>assistant<|channel|>final<|message|>...``; the text must be decoded with special tokens kept.
- ``none``: no trace, the whole response is the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalsuite.metrics.collapse import check_collapse
from evalsuite.metrics.result import CheckResult, shorten

__all__ = ["REASONING_STYLES", "ReasoningSplit", "split_reasoning", "check_reasoning"]

REASONING_STYLES = ("none", "think", "harmony")

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_HARMONY_MESSAGE = re.compile(
    r"(?:<\|start\|>[^<]*)?<\|channel\|>(?P<channel>\w+)[^<]*<\|message\|>(?P<body>.*?)"
    r"(?=<\|end\|>|<\|return\|>|<\|call\|>|<\|start\|>|\Z)",
    re.DOTALL,
)
_HARMONY_TOKEN = re.compile(r"<\|[a-z_]+\|>")


@dataclass(frozen=True)
class ReasoningSplit:
    """A response cut into its reasoning trace and its answer; ``closed`` = the trace ended (or there was none)."""

    reasoning: str
    answer: str
    closed: bool


def _split_think(text: str, prompt: str) -> ReasoningSplit:
    opened_in_prompt = prompt.rfind(_THINK_OPEN) > prompt.rfind(_THINK_CLOSE)
    end = text.find(_THINK_CLOSE)
    start = text.find(_THINK_OPEN)
    if end >= 0:
        begin = start + len(_THINK_OPEN) if 0 <= start < end else 0
        return ReasoningSplit(text[begin:end].strip(), text[end + len(_THINK_CLOSE) :].strip(), True)
    if start >= 0:
        return ReasoningSplit(text[start + len(_THINK_OPEN) :].strip(), "", False)
    if opened_in_prompt:
        return ReasoningSplit(text.strip(), "", False)
    return ReasoningSplit("", text.strip(), True)


def _split_harmony(text: str) -> ReasoningSplit:
    messages = [(m["channel"], m["body"]) for m in _HARMONY_MESSAGE.finditer(text)]
    if not messages:
        return ReasoningSplit("", _HARMONY_TOKEN.sub("", text).strip(), True)
    trace = "\n".join(body.strip() for channel, body in messages if channel != "final")
    final = [body.strip() for channel, body in messages if channel == "final"]
    return ReasoningSplit(trace.strip(), "\n".join(final).strip(), bool(final))


def split_reasoning(text: str, style: str, *, prompt: str = "") -> ReasoningSplit:
    """Cut ``text`` (the response, special tokens kept for ``harmony``) into trace and answer."""
    if style == "think":
        return _split_think(text, prompt)
    if style == "harmony":
        return _split_harmony(text)
    if style == "none":
        return ReasoningSplit("", text, True)
    raise ValueError(f"unknown reasoning style {style!r}; known: {', '.join(REASONING_STYLES)}")


def check_reasoning(
    new: ReasoningSplit,
    baseline: ReasoningSplit,
    *,
    min_ratio: float = 0.5,
    max_degenerate_fraction: float = 0.2,
    max_char_run: int = 25,
) -> CheckResult:
    """Fail when the trace vanished, shrank below ``min_ratio`` x the baseline's, collapsed into loops
    or runs, or never ended, and the baseline's trace did not do the same (relative, like every check)."""
    base_len, new_len = len(baseline.reasoning), len(new.reasoning)
    ratio = new_len / base_len if base_len else 1.0
    data = {"baseline_chars": base_len, "new_chars": new_len, "closed": new.closed}
    if not base_len:
        return CheckResult("reasoning", True, ratio, min_ratio, ">=", "the baseline has no reasoning trace", base_len,
                           data)
    problems = []
    if not new_len:
        problems.append("the reasoning trace vanished")
    elif ratio < min_ratio:
        problems.append(f"the reasoning trace shrank to {ratio:.0%} of the baseline's ({new_len} < {base_len} chars)")
    kw = {"min_chars": 1, "max_degenerate_fraction": max_degenerate_fraction, "max_char_run": max_char_run}
    new_collapse = check_collapse(new.reasoning, **kw) if new_len else None
    if new_collapse is not None and not new_collapse.passed and check_collapse(baseline.reasoning, **kw).passed:
        problems.append(f"the reasoning trace collapsed: {new_collapse.detail}")
    if baseline.closed and not new.closed:
        problems.append("the reasoning trace never ended (the budget ran out inside it: no answer)")
    detail = "; ".join(problems) or (
        f"trace {new_len} chars vs {base_len} ({ratio:.0%}){', ended' if new.closed else ''}: "
        f"{shorten(new.reasoning, 60)!r}"
    )
    return CheckResult("reasoning", not problems, ratio, min_ratio, ">=", detail, 1.0, data)
