"""What every corpus source shares: the held-out split, text cleaning, language purity, atomic JSONL.

The split is by a hash of a document's *source key* (file + chunk, gettext msgid, arithmetic problem,
code-task prompt), never by position, so held-out text never shares a source with training text and
adding or removing a source cannot move a document across the split.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from evalsuite.io import write_jsonl as _write_jsonl

LANGS = ["en", "es", "fr", "de", "ru", "zh", "ja"]
TRANS_LANGS = ["es", "fr", "de", "ru", "zh", "ja"]
LANG_NAME = {"es": "Spanish", "fr": "French", "de": "German", "ru": "Russian", "zh": "Chinese", "ja": "Japanese"}
HELDOUT_PCT = 5  # percent of source keys that go to held-out


def bucket(key: str) -> int:
    """Stable 0..99 bucket of a source key (the split must not depend on PYTHONHASHSEED)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100


def is_heldout(key: str) -> bool:
    return bucket(key) < HELDOUT_PCT


def read_text(path: str | Path) -> str:
    """A text file as str, gunzipped when it ends in .gz; UTF-8, else Latin-1 (old man pages)."""
    raw = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def clean_ws(s: str) -> str:
    s = s.replace("\u00a0", " ").replace("\t", " ")
    s = re.sub(r"[ ]{2,}", " ", s)
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


def paragraphs_to_docs(paras: Iterable[str], min_len: int = 40, max_chars: int = 1400) -> list[str]:
    """Join consecutive paragraphs into documents of at most ~max_chars (one paragraph per line)."""
    docs, cur = [], ""
    for p in paras:
        if len(p) < min_len and not cur:
            continue
        if len(cur) + len(p) > max_chars and cur:
            docs.append(cur)
            cur = ""
        cur = (cur + "\n" + p) if cur else p
    if len(cur) >= min_len:
        docs.append(cur)
    return docs


def script_ok(lang: str, text: str) -> bool:
    """Cheap check by script, so that e.g. an untranslated English page is not counted as Chinese."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff")
    kana = sum(1 for c in letters if "\u3040" <= c <= "\u30ff")
    cyr = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    n = len(letters)
    if lang == "zh":
        return cjk / n > 0.4 and kana == 0
    if lang == "ja":
        return (cjk + kana) / n > 0.4 and kana / n > 0.05
    if lang == "ru":
        return cyr / n > 0.5
    return (cjk + kana + cyr) / n < 0.02


def in_language(lang: str, text: str) -> bool:
    """Script check, then for Latin-script languages the gate's own detector
    (`evalsuite.metrics.language.detect_language`); text too short to judge passes.

    Training on text the gate would call another language teaches the model to switch; filtering with
    the same detector aligns the data with what language consistency measures. (Paragraph-level, not
    the gate's per-sentence `check_language`: ~3x faster, ~100k chars/s here.)"""
    if not script_ok(lang, text):
        return False
    if lang in ("ru", "zh", "ja"):
        return True
    from evalsuite.metrics.language import detect_language, same_language

    guess = detect_language(text)
    return guess is None or same_language(guess.lang, lang)


def pure_paragraphs(lang: str, doc: str, exclude: frozenset[str] | set[str] = frozenset()) -> str:
    """The paragraphs (lines) of `doc` that are in `lang` and not in `exclude`.

    Untranslated lines of man pages are dropped; `exclude` holds the held-out documents' lines, because
    boilerplate (man-page footers, GNOME credits, a page installed under two names) recurs under other
    source keys and would otherwise put held-out text into training."""
    return "\n".join(p for p in doc.split("\n") if p not in exclude and in_language(lang, p))


_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")


def is_mojibake(text: str) -> bool:
    """UTF-8 read as Latin-1 somewhere upstream ("sÃ³lo" for "sólo"): a prompt that teaches nothing."""
    return _MOJIBAKE.search(text) is not None


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if s.strip()]


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Atomically, in readable UTF-8 (the held-out files are reviewed by eye)."""
    _write_jsonl(path, rows, ensure_ascii=False)
