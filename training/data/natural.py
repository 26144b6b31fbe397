"""Natural running text per language, from what Debian installs: one extractor per source, one registry.

Each extractor maps a language to (source key, document) pairs; `TEXT_SOURCES` lists them with the
languages they cover and whether their documents may go to the held-out split. Sources added for
model v2 (the SWORD Bible texts) are training-only, so adding them leaves the held-out files unchanged.
"""

from __future__ import annotations

import glob
import hashlib
import html
import os
import random
import re
import sysconfig
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from training.data import sword
from training.data.common import clean_ws, paragraphs_to_docs, read_text

HANDBOOK_DIR = {"en": "en-US", "es": "es-ES", "fr": "fr-FR", "de": "de-DE", "ru": "ru-RU", "zh": "zh-CN", "ja": "ja-JP"}
HELP_DIR = {"en": "C", "es": "es", "fr": "fr", "de": "de", "ru": "ru", "zh": "zh_CN", "ja": "ja"}
MAN_DIR = {"en": "", "es": "es", "fr": "fr", "de": "de", "ru": "ru", "zh": "zh_CN", "ja": "ja"}
FORTUNE_GLOBS = {
    "en": ["/usr/share/games/fortunes/*"],
    "es": ["/usr/share/games/fortunes/es/*"],
    "de": ["/usr/share/games/fortunes/de/*"],
    "ru": ["/usr/share/games/fortunes/ru/*"],
    "zh": ["/usr/share/games/fortunes/zh/*", "/usr/share/games/fortunes/chinese"],
}
# Monolingual Bible texts per language (modern English; the 1909 Spanish is also the parallel side).
BIBLE_MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}

Docs = Iterable[tuple[str, str]]


def fortunes(lang: str) -> Docs:
    """Every fortune cookie of a language (offensive and ASCII-art collections skipped)."""
    for pattern in FORTUNE_GLOBS.get(lang, []):
        for path in sorted(glob.glob(pattern)):
            if os.path.isdir(path) or path.endswith((".dat", ".u8")) or os.path.islink(path):
                continue
            if "art" in os.path.basename(path) or "/off" in path:
                continue
            for item in read_text(path).split("\n%\n"):
                item = clean_ws(item.strip("%\n"))
                if 20 <= len(item) <= 1500:
                    yield f"fortune:{path}:{hashlib.sha1(item.encode()).hexdigest()[:12]}", item


class _ParaHTML(HTMLParser):
    """Collect running text, cutting paragraphs at block tags; skip code listings and scripts."""

    BLOCK = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "td", "tr", "br", "title", "table"}
    SKIP = {"pre", "script", "style", "code"}

    def __init__(self) -> None:
        super().__init__()
        self.paras: list[str] = []
        self.cur: list[str] = []
        self.skip = 0

    def _flush(self) -> None:
        text = clean_ws(" ".join("".join(self.cur).split()))
        if text:
            self.paras.append(text)
        self.cur = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.cur.append(data)


def handbook(lang: str) -> Docs:
    """The Debian Administrator's Handbook (HTML), code listings skipped."""
    for path in sorted(glob.glob(f"/usr/share/doc/debian-handbook/html/{HANDBOOK_DIR[lang]}/*.html")):
        parser = _ParaHTML()
        parser.feed(read_text(path))
        parser._flush()
        for j, doc in enumerate(paragraphs_to_docs(parser.paras)):
            yield f"handbook:{os.path.basename(path)}:{j}", doc


def gnome_help(lang: str) -> Docs:
    """GNOME Help (Mallard .page files): titles and paragraphs."""
    for path in sorted(glob.glob(f"/usr/share/help/{HELP_DIR[lang]}/*/*.page")):
        text = read_text(path)
        paras = []
        for m in re.finditer(r"<(p|title)[^>]*>(.*?)</\1>", text, flags=re.S):
            inner = re.sub(r"<[^>]+>", "", m.group(2))
            inner = clean_ws(" ".join(html.unescape(inner).split()))
            if inner:
                paras.append(inner)
        rel = "/".join(Path(path).parts[-2:])
        for j, doc in enumerate(paragraphs_to_docs(paras, min_len=30)):
            yield f"help:{rel}:{j}", doc


_ROFF_ESC = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\((em|en)"), "-"),
    (re.compile(r"\\\(aq"), "'"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[&|^%/,:]"), ""),
    (re.compile(r"\\s[-+]?\d"), ""),
    (re.compile(r"\\\*(\(..|\[[^\]]*\]|.)"), ""),
    (re.compile(r"\\e"), lambda m: "\\"),
    (re.compile(r"\\ "), " "),
]


def roff_to_text(src: str) -> str:
    lines = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\\\"')) or line.startswith('\\"'):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].split(None, 1)
            if not parts:
                continue
            macro, rest = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro in ("SH", "SS"):
                lines.append("\n" + rest.strip('"') + "\n")
            elif macro in ("B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM"):
                lines.append(rest.replace('"', ""))
            elif macro in ("PP", "LP", "P", "TP", "IP", "sp", "br"):
                lines.append("\n")
                if macro == "IP" and rest:
                    lines.append(rest.split('"')[1] if rest.startswith('"') else rest.split()[0])
            continue
        lines.append(line)
    text = "\n".join(lines)
    for pat, rep in _ROFF_ESC:
        text = pat.sub(rep, text)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n".join(p for p in paras if len(p) > 25)


def manpages(lang: str, limit_files: int = 1500) -> Docs:
    """A fixed random sample of `limit_files` man pages of the language, rendered to paragraphs."""
    base = "/usr/share/man" + (f"/{MAN_DIR[lang]}" if MAN_DIR[lang] else "")
    files = sorted(glob.glob(f"{base}/man[1-8]/*.gz"))
    random.Random(f"man-{lang}").shuffle(files)
    for path in files[:limit_files]:
        try:
            text = roff_to_text(read_text(path))
        except (OSError, EOFError, ValueError, zlib.error):  # a truncated .gz: skip the page
            continue
        for doc in paragraphs_to_docs(text.split("\n")):
            yield f"man:{lang}:{os.path.basename(path)}", doc


def bible(lang: str) -> Docs:
    """A monolingual Bible text as documents of ~10 consecutive verses."""
    name = BIBLE_MODULES.get(lang)
    if name is None or not (sword.SWORD / "mods.d" / f"{name}.conf").exists():
        return
    _, slots = sword.verses(name)
    for start in range(0, len(slots), 10):
        doc = " ".join(v for v in slots[start : start + 10] if v)
        if len(doc) >= 40:
            yield f"bible:{name}:{start}", doc


def python_stdlib(lang: str) -> Docs:
    """Python standard library sources cut at top-level statements (lang is "code")."""
    base = sysconfig.get_paths()["stdlib"]
    for path in sorted(glob.glob(f"{base}/**/*.py", recursive=True)):
        rel = os.path.relpath(path, base)
        if rel.startswith(("test", "site-packages", "idlelib", "lib2to3", "turtledemo", "ensurepip")):
            continue
        if "/test" in rel or os.path.getsize(path) > 120_000:
            continue
        for chunk in code_chunks(read_text(path)):
            yield f"py:{rel}", chunk  # one key per file: a held-out file is held out whole


def code_chunks(text: str, max_chars: int = 1500) -> list[str]:
    """Split a source file at top-level statements into chunks of at most ~max_chars."""
    blocks = re.split(r"\n(?=(?:def |class |@|\S))", text)
    docs, cur = [], ""
    for blk in blocks:
        if len(cur) + len(blk) > max_chars and cur:
            docs.append(cur)
            cur = ""
        cur = (cur + "\n" + blk) if cur else blk
        while len(cur) > 2 * max_chars:
            docs.append(cur[:max_chars])
            cur = cur[max_chars:]
    if cur.strip():
        docs.append(cur)
    return [d.strip("\n") + "\n" for d in docs if len(d.strip()) > 40]


@dataclass(frozen=True)
class TextSource:
    """One source of running text. `heldout=False`: every document trains (none is held out), so the
    shipped held-out files do not depend on it. `max_share`: cap on its share of a language's budget.
    `prose=False`: complete short texts (quotes, verses) whose natural continuation is an attribution or
    the end of the document; continuation prompts are never drawn from them."""

    name: str
    extract: Callable[[str], Docs]
    langs: tuple[str, ...]
    heldout: bool = True
    max_share: float = 1.0
    prose: bool = True


TEXT_SOURCES = [
    TextSource("fortunes", fortunes, ("en", "es", "de", "ru", "zh"), prose=False),
    TextSource("handbook", handbook, ("en", "es", "fr", "de", "ru", "zh", "ja")),
    TextSource("help", gnome_help, ("en", "es", "fr", "de", "ru", "zh", "ja")),
    TextSource("man", manpages, ("en", "es", "fr", "de", "ru", "zh", "ja")),
    TextSource("bible", bible, ("en", "es"), heldout=False, max_share=0.25),
]
CODE_SOURCE = TextSource("python-stdlib", python_stdlib, ("code",))
