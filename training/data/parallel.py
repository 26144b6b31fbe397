"""English -> X translation pairs: system gettext catalogs and verse-aligned SWORD Bible texts.

Why two sources: gettext gives ~15-30k pairs per language but most are short UI labels ("Open",
"_Save As..."); the gate translates sentences. The Bible modules give ~31k sentence-level en->es pairs
(the only language pair Debian packages in the same versification). Pairs are formatted exactly like
the held-out translation prompts (`trans_text`), so what is trained is what is measured.
"""

from __future__ import annotations

import glob
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from training.data import sword
from training.data.common import LANG_NAME, script_ok

LOCALE_DIR = {"es": "es", "fr": "fr", "de": "de", "ru": "ru", "zh": "zh_CN", "ja": "ja"}
# (English module, target module) per language; both must share a versification.
BIBLE_PAIRS = {"es": ("engKJV2006eb", "spaRV1909eb")}

Pairs = Iterable[tuple[str, str, str]]  # (source key, English, translation)


def trans_text(lang: str, src: str, tgt: str | None = None) -> str:
    """The trained (and prompted) translation format; the prompt is the text up to the language name."""
    head = f"English: {src}\n{LANG_NAME[lang]}:"
    return head if tgt is None else f"{head} {tgt}\n"


def read_mo(path: str | Path) -> dict[str, str]:
    """msgid -> msgstr of a compiled GNU gettext catalog (.mo), context and plural forms dropped."""
    data = Path(path).read_bytes()
    if len(data) < 28:
        return {}
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    _, n, o_orig, o_trans = struct.unpack(order + "4I", data[4:20])
    out = {}
    for i in range(n):
        ln, off = struct.unpack(order + "2I", data[o_orig + 8 * i : o_orig + 8 * i + 8])
        lt, offt = struct.unpack(order + "2I", data[o_trans + 8 * i : o_trans + 8 * i + 8])
        try:
            src = data[off : off + ln].decode("utf-8")
            dst = data[offt : offt + lt].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not src:
            continue
        out[src.split("\x04")[-1].split("\x00")[0]] = dst.split("\x00")[0]
    return out


def norm_ui(s: str) -> str:
    """Remove mnemonic markers ("_Open", "&File", "(_F)") and collapse whitespace."""
    s = re.sub(r"_(?=\w)", "", s)
    s = s.replace("&", "") if re.search(r"&\w", s) else s
    s = re.sub(r"\s*\(_\w\)", "", s)
    return " ".join(s.split())


def gettext_pairs(lang: str) -> Pairs:
    """One pair per English string over all catalogs of the language (first catalog wins)."""
    seen: set[str] = set()
    for path in sorted(glob.glob(f"/usr/share/locale/{LOCALE_DIR[lang]}/LC_MESSAGES/*.mo")):
        for src, dst in read_mo(path).items():
            s, t = norm_ui(src), norm_ui(dst)
            if s in seen or not (3 <= len(s) <= 160) or not t or s == t or "%" in s or "\n" in src:
                continue
            if re.search(r"[<>{}\\]|https?:", s) or not re.search(r"[A-Za-z]{2}", s):
                continue
            if lang in ("ru", "zh", "ja") and not script_ok(lang, t):
                continue
            seen.add(s)
            yield "msgid:" + s, s, t


def _sentence_case(verse: str) -> str:
    """RV1909 sets a chapter's first word in capitals ("AHORA pues"); write it as a normal word."""
    return re.sub(r"^([A-ZÁÉÍÓÚÑ]{2,})\b", lambda m: m.group(1).capitalize(), verse)


def bible_pairs(lang: str) -> Pairs:
    """Verse pairs of the aligned modules (nothing when the packages are not installed)."""
    names = BIBLE_PAIRS.get(lang)
    if names is None or not all((sword.SWORD / "mods.d" / f"{n}.conf").exists() for n in names):
        return
    for slot, en, tgt in sword.parallel_verses(*names):
        if 12 <= len(en) <= 300:
            yield f"verse:{names[0]}:{slot}", _sentence_case(en), _sentence_case(tgt)


def is_sentence(text: str) -> bool:
    """At least four words: the kind of source the gate's translation cases give (not a UI label)."""
    return len(text.split()) >= 4


@dataclass(frozen=True)
class PairSource:
    name: str
    extract: Callable[[str], Pairs]
    langs: tuple[str, ...]
    heldout: bool = True  # False: train-only, the shipped held-out pairs do not depend on it


PAIR_SOURCES = [
    PairSource("gettext", gettext_pairs, ("es", "fr", "de", "ru", "zh", "ja")),
    PairSource("bible", bible_pairs, ("es",), heldout=False),
]
