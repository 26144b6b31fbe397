"""Language contamination: wrong response language, per sentence, foreign-script runs, code-switching.

API:
    normalize_lang(code) -> str                      "zh-cn"/"zh-TW"/"zh-Hans" -> "zh", "es-ES" -> "es"
    detect_language(text, *, min_letters=20) -> LangGuess | None      (lingua, see lingua_detect)
        LangGuess(lang: str, prob: float, candidates: tuple[tuple[str, float], ...])
    char_script(ch) -> str                           "Latin", "Han", "Cyrillic", ..., or "Common"
    split_sentences(text) -> list[tuple[int, int]]   char spans
    foreign_runs(text, allowed_scripts) -> list[ScriptRun]
        ScriptRun(text: str, scripts: tuple[str, ...], start: int, end: int)
    check_language(text, expected=None, *, baseline=None, min_confidence=0.9, min_letters=20,
                   tolerated_scripts=("Latin", "Greek"), expected_scripts=None,
                   max_findings=0) -> CheckResult
        value = number of findings, op "<=". data["findings"] lists each with its sentence and kind:
        foreign_script (Han inside Spanish), foreign_words (a Latin clause inside Russian, see
        codeswitch.other_script_runs), sentence_language / segment_language (a sentence or a piece of it
        in another language, incl. same-script drift es->pt), switched_clause (an English clause inside
        a French sentence, codeswitch.switched_runs), response_language, missing_script (Japanese
        without kana).

Why per sentence: a Spanish answer with one English clause and one Han character
("El clima está hermoso hoy y我 plane to go hiking...") can still be "Spanish" as a whole text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from evalsuite.metrics._text import strip_code
from evalsuite.metrics.codeswitch import against, other_script_runs, prose_only, switched_runs
from evalsuite.metrics.lingua_detect import confidences, supported
from evalsuite.metrics.result import CheckResult, shorten

# Scripts a language is written in. Languages not listed are written in Latin script.
LANG_SCRIPTS: dict[str, frozenset[str]] = {
    "zh": frozenset({"Han"}),
    "ja": frozenset({"Han", "Hiragana", "Katakana"}),
    "ko": frozenset({"Hangul", "Han"}),
    "ru": frozenset({"Cyrillic"}),
    "uk": frozenset({"Cyrillic"}),
    "bg": frozenset({"Cyrillic"}),
    "mk": frozenset({"Cyrillic"}),
    "sr": frozenset({"Cyrillic", "Latin"}),
    "el": frozenset({"Greek"}),
    "ar": frozenset({"Arabic"}),
    "fa": frozenset({"Arabic"}),
    "ur": frozenset({"Arabic"}),
    "he": frozenset({"Hebrew"}),
    "hi": frozenset({"Devanagari"}),
    "mr": frozenset({"Devanagari"}),
    "ne": frozenset({"Devanagari"}),
    "bn": frozenset({"Bengali"}),
    "th": frozenset({"Thai"}),
    "ta": frozenset({"Tamil"}),
    "te": frozenset({"Telugu"}),
    "kn": frozenset({"Kannada"}),
    "ml": frozenset({"Malayalam"}),
    "gu": frozenset({"Gujarati"}),
    "pa": frozenset({"Gurmukhi"}),
}

# Close relatives that a detector cannot separate on one sentence; a guess inside the same group is not
# a switch. Spanish/Portuguese/Catalan are *not* here: lingua separates them (see
# benchmarks/language_detectors.py), and es->pt drift is a regression the check must catch.
_CONFUSABLE: tuple[frozenset[str], ...] = (
    frozenset({"no", "da", "sv"}),
    frozenset({"hr", "sr", "bs", "sl"}),
    frozenset({"id", "ms", "tl"}),
    frozenset({"cs", "sk"}),
    frozenset({"ru", "uk", "bg", "mk"}),
    frozenset({"hi", "mr", "ne"}),
)


# Han-only text is ambiguous between these (detectors call Japanese kanji compounds Chinese or Korean);
# kana and Hangul are what tell them apart, so Han-only pieces are judged by script, not by detection.
_CJK_LANGS = frozenset({"zh", "ja", "ko"})
# A response in these languages longer than a few Han characters must contain their own script.
# Scripts written with spaces between words: a same-script switch can be found word by word.
_SPACED_SCRIPTS = frozenset({"Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Devanagari"})
_SIGNATURE_SCRIPTS: dict[str, frozenset[str]] = {
    "ja": frozenset({"Hiragana", "Katakana"}),
    "ko": frozenset({"Hangul"}),
}


def normalize_lang(code: str) -> str:
    """Base language code: zh-cn / zh-tw / zh-Hans -> zh, es-ES -> es, EN -> en."""
    return re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]


def same_language(a: str, b: str) -> bool:
    """Equal or confusable (no detector reliably separates Danish/Norwegian on one sentence)."""
    a, b = normalize_lang(a), normalize_lang(b)
    return a == b or any(a in g and b in g for g in _CONFUSABLE)


@dataclass(frozen=True)
class LangGuess:
    lang: str
    prob: float
    candidates: tuple[tuple[str, float], ...]


def _letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def _enough_letters(text: str, min_letters: int) -> bool:
    # Scripts without spaces carry more information per letter.
    dense = sum(1 for ch in text if char_script(ch) in {"Han", "Hiragana", "Katakana", "Hangul", "Thai"})
    return _letters(text) + 2 * dense >= min_letters


def detect_language(text: str, *, min_letters: int = 20) -> LangGuess | None:
    """lingua's guess (ISO codes), or None when the text is too short to judge."""
    if not _enough_letters(text, min_letters):
        return None
    conf = confidences(text)
    if not conf:
        return None
    cands = tuple(sorted(conf.items(), key=lambda kv: -kv[1]))
    return LangGuess(cands[0][0], cands[0][1], cands)


_SCRIPT_ALIASES = {"CJK": "Han", "IDEOGRAPHIC": "Han", "KATAKANA-HIRAGANA": "Katakana"}


@functools.lru_cache(maxsize=65536)
def char_script(ch: str) -> str:
    """Unicode script of a letter from its character name; non-letters are "Common"."""
    if not unicodedata.category(ch).startswith("L"):
        return "Common"
    name = unicodedata.name(ch, "")
    if not name:
        return "Unknown"
    words = name.split()
    first = words[0]
    if first in {"FULLWIDTH", "HALFWIDTH"} and len(words) > 1:
        first = words[1]
    if first in _SCRIPT_ALIASES:
        return _SCRIPT_ALIASES[first]
    if first in {"MICRO", "MODIFIER", "SUPERSCRIPT", "SUBSCRIPT", "MATHEMATICAL", "DOUBLE-STRUCK"}:
        return "Common"  # symbols that happen to be letters: µ, ª, 𝑥
    return first.capitalize()


@dataclass(frozen=True)
class ScriptRun:
    """A maximal stretch of letters in scripts that the expected language does not use."""

    text: str
    scripts: tuple[str, ...]
    start: int
    end: int


def foreign_runs(text: str, allowed_scripts: Iterable[str]) -> list[ScriptRun]:
    """Runs of letters whose script is not allowed; spaces/punctuation do not break a run."""
    allowed = set(allowed_scripts) | {"Common", "Unknown"}
    runs: list[ScriptRun] = []
    start = end = -1
    scripts: set[str] = set()
    for i, ch in enumerate(text):
        s = char_script(ch)
        if s == "Common":
            continue
        if s in allowed:
            if start >= 0:
                runs.append(ScriptRun(text[start:end], tuple(sorted(scripts)), start, end))
                start, scripts = -1, set()
            continue
        if start < 0:
            start = i
        end = i + 1
        scripts.add(s)
    if start >= 0:
        runs.append(ScriptRun(text[start:end], tuple(sorted(scripts)), start, end))
    return runs


_SENT_RE = re.compile(r"[^\n.!?。！？]*(?:[.!?。！？]+|\n|$)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans: split after . ! ? and their CJK forms, and at line breaks."""
    spans = []
    for m in _SENT_RE.finditer(text):
        a, b = m.start(), m.end()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    return spans


def _other_language(
    text: str, expected: str, same: Iterable[str], *, min_letters: int, min_confidence: float
) -> tuple[str, float] | None:
    """(language, share) when ``text`` reads as a language other than ``expected`` (or its confusable
    relatives ``same``); the share is the detector's confidence in it relative to the expected one
    (see codeswitch.against). Names, titles, identifiers and URLs are blanked first."""
    prose = prose_only(text)
    if not _enough_letters(prose, min_letters):
        return None
    lang, share = against(prose, {expected, *same})
    if lang is None or share < min_confidence:
        return None
    if lang in _CJK_LANGS and expected in _CJK_LANGS and _han_only(prose):
        return None
    return lang, share


def _script_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ch in text:
        s = char_script(ch)
        if s not in {"Common", "Unknown"}:
            counts[s] = counts.get(s, 0) + 1
    return counts


def _scripts_of(text: str, min_count: int = 1) -> set[str]:
    return {s for s, c in _script_counts(text).items() if c >= min_count}


def _han_only(text: str) -> bool:
    """No kana and no Hangul: cannot tell Chinese, Japanese and Korean apart from the letters."""
    scripts = _scripts_of(text)
    return "Han" in scripts and not scripts & {"Hiragana", "Katakana", "Hangul"}


def check_language(
    text: str,
    expected: str | None = None,
    *,
    baseline: str | None = None,
    min_confidence: float = 0.9,
    min_letters: int = 20,
    tolerated_scripts: Iterable[str] = ("Latin", "Greek"),
    expected_scripts: Iterable[str] | None = None,
    max_findings: int = 0,
) -> CheckResult:
    """Fail when the response (or any sentence of it) is not in the expected language, or contains
    letters of a script the expected language does not use (e.g. Han inside Spanish).

    ``expected`` defaults to the language detected in ``baseline``. Scripts that the baseline itself
    uses are tolerated (an answer about Chinese characters may contain some). Code blocks are ignored.
    """
    if expected is None:
        if baseline is None:
            raise ValueError("check_language needs expected= or baseline= to know the target language")
        guess = detect_language(strip_code(baseline), min_letters=min_letters)
        if guess is None:
            raise ValueError(f"cannot detect the baseline's language from {shorten(baseline)!r}")
        expected = guess.lang
    expected = normalize_lang(expected)
    expected_scripts = frozenset(
        LANG_SCRIPTS.get(expected, frozenset({"Latin"})) if expected_scripts is None else expected_scripts
    )
    allowed = set(expected_scripts) | set(tolerated_scripts)
    if baseline is not None:
        allowed |= _scripts_of(strip_code(baseline))

    prose = strip_code(text)
    findings: list[dict[str, object]] = []

    judge = supported(expected)  # an unknown language can only be judged by its script
    same = next((g for g in _CONFUSABLE if expected in g), frozenset())
    clean: list[str] = []
    for a, b in split_sentences(prose):
        sent = prose[a:b]
        runs = foreign_runs(sent, allowed)
        for run in runs:
            findings.append({"kind": "foreign_script", "run": run.text, "scripts": list(run.scripts),
                             "sentence": sent})
        # Clauses in a tolerated script the language does not use (English inside Russian).
        word_runs = other_script_runs(sent, expected_scripts)
        for wr in word_runs:
            findings.append({"kind": "foreign_words", "run": wr.text, "detected": wr.lang, "words": wr.n_words,
                             "sentence": sent})
        # The sentence, or when foreign runs split it, each piece between them on its own.
        cut_at = sorted([(r.start, r.end) for r in runs] + [(r.start, r.end) for r in word_runs])
        cuts = [0] + [x for span in cut_at for x in span] + [len(sent)]
        pieces = [sent[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2)]
        clean.extend(pieces)
        if not judge:
            continue
        for piece in pieces:
            other = _other_language(piece, expected, same, min_letters=min_letters, min_confidence=min_confidence)
            if other is None:
                continue
            kind = "sentence_language" if not cut_at else "segment_language"
            findings.append({"kind": kind, "detected": other[0], "prob": round(other[1], 3),
                             "segment": piece.strip(), "sentence": sent})
            break  # one language finding per sentence is enough
        else:
            if expected_scripts & _SPACED_SCRIPTS:
                # Same-script switch inside a sentence that reads as the expected language as a whole.
                for sr in switched_runs(sent, expected, scripts=expected_scripts, same=same):
                    findings.append({"kind": "switched_clause", "detected": sr.lang, "segment": sr.text,
                                     "words": sr.n_words, "sentence": sent})

    # The response as a whole, less the runs already reported.
    whole = _other_language(" ".join(clean), expected, same, min_letters=min_letters, min_confidence=min_confidence)
    if judge and whole is not None:
        findings.append({"kind": "response_language", "detected": whole[0], "prob": round(whole[1], 3),
                         "sentence": shorten(prose, 120)})
    signature = _SIGNATURE_SCRIPTS.get(expected)
    # (not when the baseline itself is written without that script, e.g. a list of kanji)
    if signature and (baseline is None or signature & _scripts_of(strip_code(baseline))):
        counts = _script_counts(prose)
        if counts.get("Han", 0) >= 10 and not any(counts.get(sc, 0) for sc in signature):
            findings.append({"kind": "missing_script", "missing": sorted(signature),
                             "sentence": shorten(prose, 120)})
    n = len(findings)
    passed = n <= max_findings
    if not findings:
        detail = f"all sentences read as {expected!r}, no foreign-script runs"
    else:
        first = findings[0]
        if first["kind"] == "foreign_script":
            what = f"{'/'.join(first['scripts'])} run {first['run']!r}"  # type: ignore[arg-type]
        elif first["kind"] == "foreign_words":
            what = f"{first['words']}-word run {first['run']!r} (reads as {first['detected']!r})"
        elif first["kind"] == "switched_clause":
            what = f"{first['words']}-word clause {first['segment']!r} switched to {first['detected']!r}"
        elif first["kind"] == "missing_script":
            what = f"no {'/'.join(first['missing'])} at all, only Han characters"  # type: ignore[arg-type]
        elif first["kind"] == "response_language":
            what = f"response detected as {first['detected']!r} (p={first['prob']})"
        else:
            what = f"{first['segment']!r} detected as {first['detected']!r} (p={first['prob']})"
        more = f" (+{n - 1} more)" if n > 1 else ""
        detail = f"expected {expected!r}: {what} in sentence {shorten(str(first['sentence']), 100)!r}{more}"
    return CheckResult("language", passed, n, max_findings, "<=", detail,
                       data={"expected": expected, "findings": findings})
