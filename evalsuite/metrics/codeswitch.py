"""Code-switching inside one sentence: a run of words in another language.

API:
    protected_spans(sentence) -> list[tuple[int, int]]
        URLs, e-mail addresses, code identifiers, quoted titles, acronyms and multi-word names: text
        that legitimately stays in its own language whatever the sentence's language is.
    sentence_words(sentence) -> list[Word | None]
        Word(text, start, end, script) outside protected spans; None where a protected span cut the
        sentence (a run never spans it).
    other_script_runs(sentence, expected_scripts, *, min_words=3, min_lowercase=2) -> list[WordRun]
        runs of words in a script the expected language does not use (Latin inside Russian), long
        enough and lower-case enough to be a clause rather than a loanword or a name.
    switched_runs(sentence, expected, *, scripts=("Latin",), window=4, min_words=5,
                  window_confidence=0.75, min_confidence=0.85, same=()) -> list[WordRun]
        same-script switches (an English clause in a French sentence): windows of ``window`` words
        that the detector reads as another language are merged, and the merged run must read as that
        language with ``min_confidence`` on its own.
    against(text, expected) -> tuple[str | None, float]
        the detector's top language when it is not one of ``expected``, with its share of
        (top + best expected); (None, 0.0) when an expected language is on top.
    prose_only(sentence) -> str        the sentence with protected spans blanked (offsets kept)
    WordRun(text, start, end, n_words, lang)

Why words and not letters: a single Latin brand name inside Cyrillic is normal, a Latin *clause* is
not; a name ("Visual Studio Code", "The Lord of the Rings") is capitalised, a clause is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from evalsuite.metrics._text import CODE_IDENTIFIER, Token
from evalsuite.metrics.lingua_detect import confidences

_PROTECTED = re.compile(
    "|".join(
        (
            r"(?:https?://|www\.)\S+",  # URLs
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
            CODE_IDENTIFIER.pattern,  # snake_case, camelCase, dotted.names, calls(), paths
            r"«[^»]{1,120}»|“[^”]{1,120}”|„[^“”]{1,120}[“”]|\"[^\"]{1,120}\"|‘[^’]{1,120}’",  # quotations
            r"「[^」]{1,120}」|『[^』]{1,120}』|‹[^›]{1,120}›",
            r"\b[A-Z][A-Z0-9]+s?\b",  # acronyms: API, HTTP, GPUs
        )
    )
)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


@dataclass(frozen=True)
class Word(Token):
    """A word of a sentence and the script of its first letter."""

    script: str


@dataclass(frozen=True)
class WordRun:
    """Consecutive words of a sentence that read as another language."""

    text: str
    start: int
    end: int
    n_words: int
    lang: str | None


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _name_spans(words: list[Word], masked: str) -> list[tuple[int, int]]:
    """Runs of 2+ capitalised words, short lower-case connectors allowed inside ("Lord of the Rings");
    a protected span between two words ends the run."""
    spans = []
    i = 0
    while i < len(words):
        if not _is_capitalised(words[i].text):
            i += 1
            continue
        j, caps, last_cap = i, 0, i
        while j < len(words) and (_is_capitalised(words[j].text) or len(words[j].text) <= 3):
            if j > i and "\0" in masked[words[j - 1].end : words[j].start]:
                break
            if _is_capitalised(words[j].text):
                caps, last_cap = caps + 1, j
            j += 1
        if caps >= 2:
            spans.append((words[i].start, words[last_cap].end))
        i = last_cap + 1
    return spans


def protected_spans(sentence: str) -> list[tuple[int, int]]:
    """Character spans that are not judged for language (see module docstring)."""
    from evalsuite.metrics.language import char_script

    spans = [m.span() for m in _PROTECTED.finditer(sentence)]
    masked = _mask(sentence, spans)
    words = [Word(m.group(0), m.start(), m.end(), char_script(m.group(0)[0])) for m in _WORD.finditer(masked)]
    return sorted(spans + _name_spans(words, masked))


def _mask(text: str, spans: Iterable[tuple[int, int]], fill: str = "\0") -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = fill * (b - a)
    return "".join(chars)


def prose_only(sentence: str) -> str:
    """The sentence with URLs, identifiers, quotations, acronyms and names blanked (offsets kept)."""
    return _mask(sentence, protected_spans(sentence), " ")


def sentence_words(sentence: str) -> list[Word | None]:
    """Words outside protected spans, with None marking where a protected span cut the sentence."""
    from evalsuite.metrics.language import char_script

    masked = _mask(sentence, protected_spans(sentence))
    out: list[Word | None] = []
    prev_end = 0
    for m in _WORD.finditer(masked):
        if "\0" in masked[prev_end : m.start()] and out and out[-1] is not None:
            out.append(None)
        out.append(Word(m.group(0), m.start(), m.end(), char_script(m.group(0)[0])))
        prev_end = m.end()
    return out


def _segments(words: list[Word | None]) -> list[list[Word]]:
    segs: list[list[Word]] = [[]]
    for w in words:
        if w is None:
            segs.append([])
        else:
            segs[-1].append(w)
    return [s for s in segs if s]


def _top(text: str) -> tuple[str | None, float, dict[str, float]]:
    conf = confidences(text)
    if not conf:
        return None, 0.0, conf
    lang = max(conf, key=conf.__getitem__)
    return lang, conf[lang], conf


def other_script_runs(
    sentence: str, expected_scripts: Iterable[str], *, min_words: int = 3, min_lowercase: int = 2
) -> list[WordRun]:
    """Runs of ``min_words``+ words in a script outside ``expected_scripts``, at least
    ``min_lowercase`` of them lower-case (names and titles are capitalised; a clause is not)."""
    allowed = set(expected_scripts)
    runs: list[WordRun] = []
    for seg in _segments(sentence_words(sentence)):
        current: list[Word] = []
        for w in [*seg, None]:
            if w is not None and w.script not in allowed:
                current.append(w)
                continue
            lower = sum(1 for x in current if x.text[:1].islower())
            if len(current) >= min_words and lower >= min_lowercase:
                a, b = current[0].start, current[-1].end
                lang, _, _ = _top(sentence[a:b])
                runs.append(WordRun(sentence[a:b], a, b, len(current), lang))
            current = []
    return runs


def against(text: str, expected: Iterable[str]) -> tuple[str | None, float]:
    """The detector's top language for ``text`` and its share of (top + best expected language).

    Why a pairwise share: over ~30 languages lingua spreads a short English phrase's confidence thin
    (0.2-0.3), yet the expected language gets almost none; the question here is only "L or E?".
    """
    expected = set(expected)
    top, conf, all_conf = _top(text)
    if top is None or top in expected:
        return None, 0.0
    rival = max((all_conf.get(e, 0.0) for e in expected), default=0.0)
    return top, conf / (conf + rival)


def switched_runs(
    sentence: str,
    expected: str,
    *,
    scripts: Iterable[str] = ("Latin",),
    window: int = 4,
    min_words: int = 5,
    window_confidence: float = 0.75,
    min_confidence: float = 0.85,
    same: Iterable[str] = (),
) -> list[WordRun]:
    """Runs of words in the expected language's own script that read as another language.

    A window of ``window`` words is labelled L when the detector's top language is L and L's share of
    (L + expected) is at least ``window_confidence``; consecutive windows with the same label merge
    into a run, which counts when, on its own, it reads as L with a share >= ``min_confidence`` and the
    rest of the sentence still reads as the expected language, it has ``min_words`` words (two
    agreeing windows) and at most a quarter of its words read, one by one, as the expected language:
    loanwords between the sentence's own function words ("du brainstorming pendant le meeting") are
    not a switch, a clause brings its own function words.
    Only words in ``scripts`` (the expected language's) take part: other scripts are
    :func:`other_script_runs`' job. ``same``: languages counted as the expected one (confusable
    relatives).
    """
    same_langs = {expected, *same}
    allowed = set(scripts)
    words = [w if w is None or w.script in allowed else None for w in sentence_words(sentence)]
    found: list[WordRun] = []
    for seg in _segments(words):
        if len(seg) <= window:
            continue
        labels: list[str | None] = []
        for i in range(len(seg) - window + 1):
            lang, share = against(sentence[seg[i].start : seg[i + window - 1].end], same_langs)
            labels.append(lang if share >= window_confidence else None)
        i = 0
        while i < len(labels):
            lang = labels[i]
            if lang is None:
                i += 1
                continue
            j = i
            while j + 1 < len(labels) and labels[j + 1] == lang:
                j += 1
            a, b = seg[i].start, seg[j + window - 1].end
            top, share = against(sentence[a:b], same_langs)
            run_words = seg[i : j + window]
            if (
                len(run_words) >= min_words
                and top == lang
                and share >= min_confidence
                and _own_words(run_words, same_langs) <= len(run_words) // 4
                and _reads_as(sentence[:a] + " " + sentence[b:], same_langs)
            ):
                found.append(WordRun(sentence[a:b], a, b, j + window - i, lang))
            i = j + 1
    return found


def _own_words(words: list[Word], langs: set[str]) -> int:
    """How many of ``words`` read as one of ``langs`` on their own."""
    return sum(1 for w in words if against(w.text, langs)[0] is None)


def _reads_as(text: str, langs: set[str]) -> bool:
    """The rest of the sentence is (still) in the expected language, or too short to tell."""
    if len(_WORD.findall(text)) < 3:
        return True
    top, _ = against(text, langs)
    return top is None
