"""Collapse: empty / too-short output, repetition loops and degenerate token runs.

API:
    find_loops(text, *, max_period=20, min_repeats=3, min_repeats_unigram=4) -> list[Loop]
        Loop(unit: str, period: int, repeats: int, start: int, end: int)  (char offsets)
    longest_char_run(text) -> tuple[str, int]          the most repeated single character and its run
    degenerate_fraction(text, ...) -> float            share of characters inside loops / char runs
    check_collapse(text, *, min_chars=10, max_degenerate_fraction=0.2, max_char_run=25,
                   max_period=20, min_repeats=3, code_min_repeats=8) -> CheckResult
        Loops inside fenced code need code_min_repeats; units made only of punctuation are left to
        the character-run test ("-----" in a table is not a loop).
        value = degenerate fraction (1.0 for empty or too-short output), op "<=".

Why a fraction of the text rather than "any repeat": answers legitimately repeat short phrases
("step 1 ... step 2"); a collapsed model spends a large share of its output inside one loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalsuite.metrics._text import tokens_with_spans
from evalsuite.metrics.result import CheckResult, shorten


@dataclass(frozen=True)
class Loop:
    """A tandem repeat: ``unit`` (``period`` tokens) repeated ``repeats`` times back to back."""

    unit: str
    period: int
    repeats: int
    start: int
    end: int


def find_loops(
    text: str, *, max_period: int = 20, min_repeats: int = 3, min_repeats_unigram: int = 4
) -> list[Loop]:
    """Maximal tandem repeats of token sequences, longest coverage first, non-overlapping."""
    toks = tokens_with_spans(text)
    words = [t.text.lower() for t in toks]
    n = len(words)
    found: list[tuple[int, int, int, int]] = []  # (covered_tokens, start_tok, period, repeats)
    for p in range(1, min(max_period, n // 2) + 1):
        need = min_repeats_unigram if p == 1 else min_repeats
        i = 0
        while i + 2 * p <= n:
            reps = 1
            j = i + p
            while j + p <= n and words[j : j + p] == words[i : i + p]:
                reps += 1
                j += p
            unit_has_word = any(w[0].isalnum() or w[0] == "_" for w in words[i : i + p])
            if reps >= need and unit_has_word and not _is_sub_period(words[i : i + p]):
                found.append((reps * p, i, p, reps))
                i = j
            else:
                i += 1
    found.sort(key=lambda f: (-f[0], f[2]))
    taken = [False] * n
    loops: list[Loop] = []
    for covered, start, period, reps in found:
        if any(taken[start : start + covered]):
            continue
        for k in range(start, start + covered):
            taken[k] = True
        unit = text[toks[start].start : toks[start + period - 1].end]
        loops.append(Loop(unit, period, reps, toks[start].start, toks[start + covered - 1].end))
    loops.sort(key=lambda lp: lp.start)
    return loops


_FENCE_RE = re.compile(r"```.*?(?:```|$)|~~~.*?(?:~~~|$)", re.S)


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _FENCE_RE.finditer(text)]


def _loops_outside_code(
    text: str, *, max_period: int, min_repeats: int, code_min_repeats: int
) -> list[Loop]:
    """Loops, where those inside fenced code need more repeats (``[0, 0, 0], [0, 0, 0]`` is normal code)."""
    spans = _code_spans(text)
    out = []
    for lp in find_loops(text, max_period=max_period, min_repeats=min_repeats):
        in_code = any(a <= lp.start < b for a, b in spans)
        if not in_code or lp.repeats >= code_min_repeats:
            out.append(lp)
    return out


def _is_sub_period(unit: list[str]) -> bool:
    """A unit that is itself a repeat ("a b a b") is reported at its smaller period instead."""
    p = len(unit)
    return any(p % q == 0 and unit == unit[:q] * (p // q) for q in range(1, p))


_RUN_RE = re.compile(r"(\S)\1+")


def longest_char_run(text: str) -> tuple[str, int]:
    """The non-space character with the longest back-to-back run, and that run's length."""
    best = ("", 0)
    for m in _RUN_RE.finditer(text):
        if len(m.group(0)) > best[1]:
            best = (m.group(1), len(m.group(0)))
    return best


def _char_runs(text: str, max_char_run: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _RUN_RE.finditer(text) if len(m.group(0)) > max_char_run]


def degenerate_fraction(
    text: str,
    *,
    max_char_run: int = 25,
    max_period: int = 20,
    min_repeats: int = 3,
    code_min_repeats: int = 8,
) -> float:
    """Share of non-space characters that sit inside repetition loops or over-long character runs."""
    loops = _loops_outside_code(text, max_period=max_period, min_repeats=min_repeats,
                                code_min_repeats=code_min_repeats)
    spans = [(lp.start, lp.end) for lp in loops]
    spans += _char_runs(text, max_char_run)
    return _covered(text, spans)


def _covered(text: str, spans: list[tuple[int, int]]) -> float:
    total = sum(1 for ch in text if not ch.isspace())
    if total == 0:
        return 1.0
    mask = [False] * len(text)
    for a, b in spans:
        for k in range(a, b):
            mask[k] = True
    inside = sum(1 for k, ch in enumerate(text) if mask[k] and not ch.isspace())
    return inside / total


def check_collapse(
    text: str,
    *,
    min_chars: int = 10,
    max_degenerate_fraction: float = 0.2,
    max_char_run: int = 25,
    max_period: int = 20,
    min_repeats: int = 3,
    code_min_repeats: int = 8,
) -> CheckResult:
    """Fail on empty / too-short output or when loops and character runs dominate the answer."""
    stripped = text.strip()
    if len(stripped) < min_chars:
        what = "empty output" if not stripped else f"output too short ({len(stripped)} < {min_chars} chars)"
        return CheckResult(
            "collapse", False, 1.0, max_degenerate_fraction, "<=",
            f"{what}: {stripped!r}", data={"length": len(stripped), "reason": "short"},
        )
    loops = _loops_outside_code(text, max_period=max_period, min_repeats=min_repeats,
                                code_min_repeats=code_min_repeats)
    runs = _char_runs(text, max_char_run)
    frac = _covered(text, [(lp.start, lp.end) for lp in loops] + runs)
    passed = frac <= max_degenerate_fraction
    parts: list[str] = []
    if loops:
        worst = max(loops, key=lambda lp: lp.end - lp.start)
        parts.append(f"loop {shorten(worst.unit, 40)!r} x{worst.repeats}")
    if runs:
        a, b = max(runs, key=lambda r: r[1] - r[0])
        parts.append(f"run of {b - a} x {text[a]!r}")
    found = "; ".join(parts) if parts else "no loops or runs"
    detail = f"{frac:.0%} of the output is degenerate ({found})"
    return CheckResult(
        "collapse", passed, frac, max_degenerate_fraction, "<=", detail,
        data={
            "length": len(stripped),
            "loops": [lp.__dict__ for lp in loops],
            "char_runs": runs,
            "reason": "degenerate" if not passed else "",
        },
    )
