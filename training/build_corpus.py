"""Build the training corpus and the shipped held-out evaluation data for the embedded model.

One command, no network:  python training/build_corpus.py
Writes  training/corpus/train-<domain>.jsonl   (git-ignored, {"text": ...} per document)
        training/corpus/stats.json
        evalsuite/data/heldout/*.jsonl         (shipped with the package, never trained on)

Every source is something installed on the machine (Debian packages, the system gettext catalogs,
the Python standard library) or generated here (arithmetic, small Python tasks). See training/SOURCES.md.
The split is deterministic: a document goes to held-out when a hash of its *source key* (file,
msgid, problem) falls in a fixed bucket, so held-out text never shares a source with training text.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import html
import json
import os
import random
import re
import struct
import sysconfig
from html.parser import HTMLParser
from pathlib import Path

from evalsuite.io import write_jsonl as atomic_jsonl

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "training" / "corpus"
HELDOUT = ROOT / "evalsuite" / "data" / "heldout"

LANGS = ["en", "es", "fr", "de", "ru", "zh", "ja"]
TRANS_LANGS = ["es", "fr", "de", "ru", "zh", "ja"]
LANG_NAME = {"es": "Spanish", "fr": "French", "de": "German", "ru": "Russian", "zh": "Chinese", "ja": "Japanese"}
LOCALE_DIR = {"es": "es", "fr": "fr", "de": "de", "ru": "ru", "zh": "zh_CN", "ja": "ja"}
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
HELDOUT_PCT = 5  # percent of source keys that go to held-out


def bucket(key: str) -> int:
    """Stable 0..99 bucket of a source key (the split must not depend on PYTHONHASHSEED)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100


def is_heldout(key: str) -> bool:
    return bucket(key) < HELDOUT_PCT


def read_text(path: str | Path) -> str:
    raw = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        raw = gzip.decompress(raw)
    for enc in ("utf-8", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def clean_ws(s: str) -> str:
    s = s.replace("\u00a0", " ").replace("\t", " ")
    s = re.sub(r"[ ]{2,}", " ", s)
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


# ----------------------------------------------------------------------------------------------
# natural text extractors


def fortunes(lang: str) -> list[tuple[str, str]]:
    """(source key, text) for every fortune cookie of a language."""
    out = []
    for pattern in FORTUNE_GLOBS.get(lang, []):
        for path in sorted(glob.glob(pattern)):
            if os.path.isdir(path) or path.endswith((".dat", ".u8")) or os.path.islink(path):
                continue
            if "art" in os.path.basename(path) or "/off" in path:
                continue
            for item in read_text(path).split("\n%\n"):
                item = clean_ws(item.strip("%\n"))
                if 20 <= len(item) <= 1500:
                    out.append((f"fortune:{path}:{hashlib.sha1(item.encode()).hexdigest()[:12]}", item))
    return out


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


def paragraphs_to_docs(paras: list[str], min_len: int = 40, max_chars: int = 1400) -> list[str]:
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


def handbook(lang: str) -> list[tuple[str, str]]:
    out = []
    for path in sorted(glob.glob(f"/usr/share/doc/debian-handbook/html/{HANDBOOK_DIR[lang]}/*.html")):
        parser = _ParaHTML()
        parser.feed(read_text(path))
        parser._flush()
        for j, doc in enumerate(paragraphs_to_docs(parser.paras)):
            out.append((f"handbook:{os.path.basename(path)}:{j}", doc))
    return out


def gnome_help(lang: str) -> list[tuple[str, str]]:
    out = []
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
            out.append((f"help:{rel}:{j}", doc))
    return out


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


def manpages(lang: str, limit_files: int) -> list[tuple[str, str]]:
    base = "/usr/share/man" + (f"/{MAN_DIR[lang]}" if MAN_DIR[lang] else "")
    files = sorted(glob.glob(f"{base}/man[1-8]/*.gz"))
    rng = random.Random(f"man-{lang}")
    rng.shuffle(files)
    out = []
    for path in files[:limit_files]:
        try:
            text = roff_to_text(read_text(path))
        except Exception:
            continue
        for doc in paragraphs_to_docs(text.split("\n")):
            out.append((f"man:{lang}:{os.path.basename(path)}", doc))
    return out


def script_ok(lang: str, text: str) -> bool:
    """Cheap language sanity check by script so that e.g. an untranslated English page is not
    counted as Chinese text."""
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


# ----------------------------------------------------------------------------------------------
# gettext catalogs (English msgid -> translated msgstr)


def read_mo(path: str) -> dict[str, str]:
    """Parse a compiled gettext catalog (GNU .mo format) without the gettext module's plural logic."""
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
        src = src.split("\x04")[-1].split("\x00")[0]
        dst = dst.split("\x00")[0]
        out[src] = dst
    return out


def norm_ui(s: str) -> str:
    s = re.sub(r"_(?=\w)", "", s)  # mnemonic underscores
    s = s.replace("&", "") if re.search(r"&\w", s) else s
    s = re.sub(r"\s*\(_\w\)", "", s)  # "(_F)" accelerators in CJK catalogs
    return " ".join(s.split())


def translation_pairs(lang: str) -> dict[str, tuple[str, str]]:
    """msgid -> (source, target); one pair per English string."""
    pairs: dict[str, tuple[str, str]] = {}
    for path in sorted(glob.glob(f"/usr/share/locale/{LOCALE_DIR[lang]}/LC_MESSAGES/*.mo")):
        for src, dst in read_mo(path).items():
            s, t = norm_ui(src), norm_ui(dst)
            if not (3 <= len(s) <= 160) or not t or s == t or "%" in s or "\n" in src:
                continue
            if re.search(r"[<>{}\\]|https?:", s) or not re.search(r"[A-Za-z]{2}", s):
                continue
            if not script_ok(lang, t) and lang in ("ru", "zh", "ja"):
                continue
            pairs.setdefault(s, (s, t))
    return pairs


def trans_text(lang: str, src: str, tgt: str | None = None) -> str:
    head = f"English: {src}\n{LANG_NAME[lang]}:"
    return head if tgt is None else f"{head} {tgt}\n"


# ----------------------------------------------------------------------------------------------
# arithmetic with worked steps

PLACES = ["ones", "tens", "hundreds", "thousands"]


def worked(a: int, op: str, b: int) -> tuple[str, int]:
    """Column arithmetic written one digit per step, the format a tiny model can learn."""
    width = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(width), str(b).zfill(width)
    steps, digits, c = [], [], 0
    for i in range(width):
        x, y = int(da[-1 - i]), int(db[-1 - i])
        if op == "+":
            s = x + y + c
            steps.append(f"{PLACES[i]} {x}+{y}+{c}={s} put {s % 10} carry {s // 10}")
            digits.append(s % 10)
            c = s // 10
        else:
            s = x - y - c
            if s < 0:
                steps.append(f"{PLACES[i]} {x}-{y}-{c}={s} +10={s + 10} put {s + 10} borrow 1")
                digits.append(s + 10)
                c = 1
            else:
                steps.append(f"{PLACES[i]} {x}-{y}-{c}={s} put {s} borrow 0")
                digits.append(s)
                c = 0
    if op == "+" and c:
        steps.append(f"{PLACES[width]} {c} put {c}")
        digits.append(c)
    ans = a + b if op == "+" else a - b
    assert int("".join(str(d) for d in reversed(digits))) == ans
    body = f" {da}{op}{db}\n" + "\n".join(steps) + f"\nanswer {ans}\n"
    return body, ans


def arith_prompt(a: int, op: str, b: int) -> str:
    return f"Q: {a}{op}{b}=?\nA:"


def arith_problems(rng: random.Random, n: int) -> list[tuple[int, str, int]]:
    out = []
    for _ in range(n):
        da, db = rng.choice([2, 3]), rng.choice([1, 2, 3])
        a = rng.randint(10 ** (da - 1), 10**da - 1)
        b = rng.randint(10 ** (db - 1) if db > 1 else 0, 10**db - 1)
        op = rng.choice("+-")
        if op == "-" and b > a:
            a, b = b, a
        out.append((a, op, b))
    return out


# ----------------------------------------------------------------------------------------------
# small Python function tasks (prompt = signature + docstring, completion = body)

NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
CMP = {
    ">": ("greater than", "gt"),
    "<": ("less than", "lt"),
    ">=": ("at least", "ge"),
    "<=": ("at most", "le"),
    "==": ("equal to", "eq"),
}


def _task_families(rng: random.Random) -> dict:
    """Each family: params sampler -> (name, args, doc, body, reference callable, input sampler)."""
    k = rng.randint(2, 12)
    kw = NUM_WORDS[k]
    op = rng.choice(list(CMP))
    cw, cs = CMP[op]
    v = rng.choice(["xs", "nums", "values", "items"])
    x = rng.choice(["x", "n", "value", "num"])
    s = rng.choice(["s", "text", "word"])
    ch = rng.choice("aeiostrn")
    sep = rng.choice(["-", ", ", " ", "+", "/"])
    lo, hi = sorted(rng.sample(range(-5, 30), 2))
    cmp_fn = {
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
    }[op]

    def ints():
        return [rng.randint(-10, 20) for _ in range(rng.randint(1, 7))]

    def num():
        return rng.randint(-20, 50)

    def word():
        return "".join(rng.choice("abcdeinorst") for _ in range(rng.randint(1, 8)))

    fam = {
        "add": (
            rng.choice([f"add_{kw}", f"plus_{kw}", f"add_{k}"]),
            [x],
            f"Return {x} plus {k}.",
            f"return {x} + {k}",
            lambda a: a + k,
            lambda: (num(),),
        ),
        "sub": (
            rng.choice([f"subtract_{kw}", f"minus_{kw}", f"sub_{k}"]),
            [x],
            f"Return {x} minus {k}.",
            f"return {x} - {k}",
            lambda a: a - k,
            lambda: (num(),),
        ),
        "mul": (
            rng.choice([f"times_{kw}", f"multiply_by_{kw}", f"mul_{k}"]),
            [x],
            f"Return {x} multiplied by {k}.",
            f"return {x} * {k}",
            lambda a: a * k,
            lambda: (num(),),
        ),
        "divisible": (
            rng.choice([f"divisible_by_{kw}", f"is_multiple_of_{k}"]),
            [x],
            f"Return True if {x} is divisible by {k}, otherwise False.",
            f"return {x} % {k} == 0",
            lambda a: a % k == 0,
            lambda: (rng.randint(0, 60),),
        ),
        "square": (
            rng.choice(["square", "squared", f"square_{x}"]),
            [x],
            f"Return the square of {x}.",
            f"return {x} * {x}",
            lambda a: a * a,
            lambda: (num(),),
        ),
        "sum_cmp": (
            f"sum_{cs}_{k}",
            [v],
            f"Return the sum of the numbers in {v} that are {cw} {k}.",
            f"return sum(y for y in {v} if y {op} {k})",
            lambda a: sum(y for y in a if cmp_fn(y, k)),
            lambda: (ints(),),
        ),
        "count_cmp": (
            f"count_{cs}_{k}",
            [v],
            f"Return how many numbers in {v} are {cw} {k}.",
            f"return len([y for y in {v} if y {op} {k}])",
            lambda a: len([y for y in a if cmp_fn(y, k)]),
            lambda: (ints(),),
        ),
        "filter_cmp": (
            f"keep_{cs}_{k}",
            [v],
            f"Return a list of the numbers in {v} that are {cw} {k}.",
            f"return [y for y in {v} if y {op} {k}]",
            lambda a: [y for y in a if cmp_fn(y, k)],
            lambda: (ints(),),
        ),
        "map_add": (
            f"add_{k}_to_each",
            [v],
            f"Return a new list with {k} added to each number in {v}.",
            f"return [y + {k} for y in {v}]",
            lambda a: [y + k for y in a],
            lambda: (ints(),),
        ),
        "map_mul": (
            f"multiply_each_by_{k}",
            [v],
            f"Return a new list with each number in {v} multiplied by {k}.",
            f"return [y * {k} for y in {v}]",
            lambda a: [y * k for y in a],
            lambda: (ints(),),
        ),
        "max": (
            rng.choice(["largest", "maximum", f"max_of_{v}"]),
            [v],
            f"Return the largest number in {v}.",
            f"return max({v})",
            lambda a: max(a),
            lambda: (ints(),),
        ),
        "min": (
            rng.choice(["smallest", "minimum", f"min_of_{v}"]),
            [v],
            f"Return the smallest number in {v}.",
            f"return min({v})",
            lambda a: min(a),
            lambda: (ints(),),
        ),
        "total": (
            rng.choice(["total", "sum_all", f"sum_of_{v}"]),
            [v],
            f"Return the sum of the numbers in {v}.",
            f"return sum({v})",
            lambda a: sum(a),
            lambda: (ints(),),
        ),
        "first_n": (
            f"first_{kw}",
            [v],
            f"Return the first {k} items of {v}.",
            f"return {v}[:{k}]",
            lambda a: a[:k],
            lambda: (ints(),),
        ),
        "last_n": (
            f"last_{kw}",
            [v],
            f"Return the last {k} items of {v}.",
            f"return {v}[-{k}:]",
            lambda a: a[-k:],
            lambda: (ints(),),
        ),
        "reverse": (
            rng.choice(["reverse", "reversed_text", f"reverse_{s}"]),
            [s],
            f"Return {s} reversed.",
            f"return {s}[::-1]",
            lambda a: a[::-1],
            lambda: (word(),),
        ),
        "upper": (
            rng.choice(["shout", "to_upper", f"upper_{s}"]),
            [s],
            f"Return {s} in upper case.",
            f"return {s}.upper()",
            lambda a: a.upper(),
            lambda: (word(),),
        ),
        "count_char": (
            f"count_{ch}",
            [s],
            f"Return how many times the letter '{ch}' appears in {s}.",
            f"return {s}.count('{ch}')",
            lambda a: a.count(ch),
            lambda: (word(),),
        ),
        "starts": (
            f"starts_with_{ch}",
            [s],
            f"Return True if {s} starts with the letter '{ch}'.",
            f"return {s}.startswith('{ch}')",
            lambda a: a.startswith(ch),
            lambda: (word(),),
        ),
        "repeat": (
            f"repeat_{kw}_times",
            [s],
            f"Return {s} repeated {k} times.",
            f"return {s} * {k}",
            lambda a: a * k,
            lambda: (word(),),
        ),
        "join": (
            rng.choice(["join_words", "glue", "combine"]),
            [v],
            f"Return the strings in {v} joined with '{sep}'.",
            f"return '{sep}'.join({v})",
            lambda a: sep.join(a),
            lambda: ([word() for _ in range(rng.randint(1, 4))],),
        ),
        "clamp": (
            f"clamp_{x}",
            [x],
            f"Return {x} limited to the range {lo} to {hi}.",
            f"return max({lo}, min({hi}, {x}))",
            lambda a: max(lo, min(hi, a)),
            lambda: (num(),),
        ),
        "absdiff": (
            rng.choice(["distance", "abs_diff", "gap"]),
            ["a", "b"],
            "Return the absolute difference between a and b.",
            "return abs(a - b)",
            lambda a, b: abs(a - b),
            lambda: (num(), num()),
        ),
        "fizz": (
            f"fizz_{k}",
            [x],
            f"Return 'fizz' if {x} is divisible by {k}, otherwise return {x} as a string.",
            f"if {x} % {k} == 0:\n        return 'fizz'\n    return str({x})",
            lambda a: "fizz" if a % k == 0 else str(a),
            lambda: (rng.randint(1, 60),),
        ),
        "loop_sum_cmp": (
            f"total_{cs}_{k}",
            [v],
            f"Add up the numbers in {v} that are {cw} {k} and return the total.",
            f"total = 0\n    for y in {v}:\n        if y {op} {k}:\n            total += y\n    return total",
            lambda a: sum(y for y in a if cmp_fn(y, k)),
            lambda: (ints(),),
        ),
    }
    return fam


def code_task(rng: random.Random, family: str | None = None) -> dict:
    fams = _task_families(rng)
    fam = family or rng.choice(sorted(fams))
    name, args, doc, body, ref, sample = fams[fam]
    prompt = f'def {name}({", ".join(args)}):\n    """{doc}"""\n'
    completion = f"    {body}\n"
    tests, seen = [], set()
    for _ in range(30):
        inp = sample()
        key = repr(inp)
        if key in seen:
            continue
        seen.add(key)
        try:
            res = ref(*inp)
        except Exception:
            continue
        tests.append(f"assert {name}({', '.join(repr(a) for a in inp)}) == {res!r}")
        if len(tests) == 5:
            break
    return {"family": fam, "name": name, "prompt": prompt, "completion": completion, "tests": tests, "key": prompt}


# ----------------------------------------------------------------------------------------------
# Python standard library source


def stdlib_files() -> list[str]:
    base = sysconfig.get_paths()["stdlib"]
    out = []
    for path in sorted(glob.glob(f"{base}/**/*.py", recursive=True)):
        rel = os.path.relpath(path, base)
        if rel.startswith(("test", "site-packages", "idlelib", "lib2to3", "turtledemo", "ensurepip")):
            continue
        if "/test" in rel or os.path.getsize(path) > 120_000:
            continue
        out.append(path)
    return out


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


# ----------------------------------------------------------------------------------------------
# writers


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Atomically, in readable UTF-8 (the held-out files are reviewed by eye)."""
    atomic_jsonl(path, rows, ensure_ascii=False)


def langdetect_ok(lang: str, text: str) -> bool:
    try:
        from langdetect import DetectorFactory, detect

        DetectorFactory.seed = 0
        got = detect(text)
    except Exception:
        return False
    want = {"zh": "zh-cn"}.get(lang, lang)
    return got == want or (lang == "zh" and got.startswith("zh"))


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if s.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-chars-per-lang", type=int, default=4_000_000)
    ap.add_argument("--man-files", type=int, default=1500)
    ap.add_argument("--arith-train", type=int, default=60_000)
    ap.add_argument("--code-tasks-train", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    CORPUS.mkdir(parents=True, exist_ok=True)
    HELDOUT.mkdir(parents=True, exist_ok=True)
    stats: dict[str, dict] = {}

    # ---- natural text per language
    for lang in LANGS:
        items = fortunes(lang) + handbook(lang) + gnome_help(lang) + manpages(lang, args.man_files)
        items = [(k, t) for k, t in items if script_ok(lang, t)]
        train, held = [], []
        for key, text in items:
            (held if is_heldout(key) else train).append(text)
        rng.shuffle(train)
        total, kept = 0, []
        for t in train:
            if total > args.max_chars_per_lang:
                break
            kept.append({"text": t})
            total += len(t)
        write_jsonl(CORPUS / f"train-text-{lang}.jsonl", kept)
        rng.shuffle(held)
        ppl = [t[:1000] for t in held if len(t) >= 300 and langdetect_ok(lang, t)][:40]
        write_jsonl(HELDOUT / f"text-{lang}.jsonl", [{"id": f"text-{lang}-{i}", "text": t} for i, t in enumerate(ppl)])
        prompts = []
        for t in held:
            if t[:1000] in ppl:
                continue
            sents = split_sentences(t.split("\n")[0] if len(t.split("\n")[0]) > 80 else t.replace("\n", " "))
            if len(sents) < 2:
                continue
            prompt = sents[0] if len(sents[0]) >= 40 else " ".join(sents[:2])
            if not (30 <= len(prompt) <= 300):
                continue
            cont = t.replace("\n", " ")[len(prompt) :].strip()[:300]
            if len(cont) < 40 or not langdetect_ok(lang, prompt) or not langdetect_ok(lang, cont):
                continue
            prompts.append({"id": f"prompt-{lang}-{len(prompts)}", "prompt": prompt, "continuation": cont})
            if len(prompts) == 40:
                break
        write_jsonl(HELDOUT / f"prompts-{lang}.jsonl", prompts)
        stats[f"text-{lang}"] = {
            "train_docs": len(kept),
            "train_chars": total,
            "heldout_docs": len(held),
            "ppl_items": len(ppl),
            "prompts": len(prompts),
        }
        print(lang, stats[f"text-{lang}"], flush=True)

    # ---- translation pairs
    mc_trans = []
    for lang in TRANS_LANGS:
        pairs = translation_pairs(lang)
        train, held = [], []
        for key, (s, t) in pairs.items():
            (held if is_heldout("msgid:" + key) else train).append((s, t))
        rng.shuffle(train)
        rng.shuffle(held)
        write_jsonl(CORPUS / f"train-trans-{lang}.jsonl", [{"text": trans_text(lang, s, t)} for s, t in train])
        good = [(s, t) for s, t in held if 12 <= len(s) <= 90 and " " in s]
        rows = [
            {"id": f"tr-en-{lang}-{i}", "source": s, "target": t, "prompt": trans_text(lang, s)}
            for i, (s, t) in enumerate(good[:50])
        ]
        write_jsonl(HELDOUT / f"translation-en-{lang}.jsonl", rows)
        if lang in ("es", "fr", "de"):
            pool = good[50:]
            for i, (s, t) in enumerate(good[:50][:20]):
                distract = rng.sample([tt for ss, tt in pool if tt != t], 3)
                choices = [t] + distract
                rng.shuffle(choices)
                mc_trans.append(
                    {
                        "id": f"mc-tr-{lang}-{i}",
                        "context": trans_text(lang, s),
                        "choices": [" " + c for c in choices],
                        "gold": choices.index(t),
                    }
                )
        stats[f"trans-{lang}"] = {"train_pairs": len(train), "heldout_pairs": len(held), "shipped": len(rows)}
        print(lang, stats[f"trans-{lang}"], flush=True)
    write_jsonl(HELDOUT / "mc-translation.jsonl", mc_trans)

    # ---- arithmetic
    held_probs, train_rows, seen = [], [], set()
    for a, op, b in arith_problems(random.Random(args.seed + 1), args.arith_train * 2):
        key = f"{a}{op}{b}"
        if key in seen:
            continue
        seen.add(key)
        if is_heldout("arith:" + key):
            held_probs.append((a, op, b))
        elif len(train_rows) < args.arith_train:
            body, _ = worked(a, op, b)
            train_rows.append({"text": arith_prompt(a, op, b) + body})
    write_jsonl(CORPUS / "train-arith.jsonl", train_rows)
    arows, mc_arith = [], []
    for i, (a, op, b) in enumerate(held_probs[:60]):
        body, ans = worked(a, op, b)
        arows.append({"id": f"arith-{i}", "prompt": arith_prompt(a, op, b), "answer": str(ans), "worked": body})
    for i, (a, op, b) in enumerate(held_probs[60:100]):
        body, ans = worked(a, op, b)
        wrong = set()
        for da, db in rng.sample([(1, 0), (-1, 0), (0, 1), (0, -1), (10, 0), (0, 10), (-10, 0), (0, -10)], 8):
            a2, b2 = a + da, b + db
            if a2 < 0 or b2 < 0 or (op == "-" and b2 > a2) or len(str(a2)) != len(str(a)):
                continue
            wb, _ = worked(a2, op, b2)
            if wb != body:
                wrong.add(wb)
            if len(wrong) == 3:
                break
        if len(wrong) < 3:
            continue
        choices = [body] + sorted(wrong)
        rng.shuffle(choices)
        mc_arith.append(
            {"id": f"mc-arith-{i}", "context": arith_prompt(a, op, b), "choices": choices, "gold": choices.index(body)}
        )
    write_jsonl(HELDOUT / "arithmetic.jsonl", arows)
    write_jsonl(HELDOUT / "mc-arithmetic.jsonl", mc_arith)
    stats["arith"] = {"train": len(train_rows), "heldout": len(arows), "mc": len(mc_arith)}
    print(stats["arith"], flush=True)

    # ---- code tasks
    crng = random.Random(args.seed + 2)
    train_rows, held_tasks, seen = [], [], set()
    fam_names = sorted(_task_families(random.Random(0)))
    while len(train_rows) < args.code_tasks_train:
        t = code_task(crng)
        if len(t["tests"]) < 3:
            continue
        if is_heldout("task:" + t["key"]):
            if t["key"] not in seen:
                held_tasks.append(t)
            seen.add(t["key"])
        else:
            train_rows.append({"text": t["prompt"] + t["completion"]})
    write_jsonl(CORPUS / "train-codetask.jsonl", train_rows)
    # one held-out task per family first, so every family is represented
    picked, by_fam = [], {}
    for t in held_tasks:
        by_fam.setdefault(t["family"], []).append(t)
    for rnd in range(3):
        for f in fam_names:
            if len(by_fam.get(f, [])) > rnd:
                picked.append(by_fam[f][rnd])
    picked = picked[:50]
    write_jsonl(
        HELDOUT / "code_tasks.jsonl",
        [
            {
                "id": f"task-{i}",
                "prompt": t["prompt"],
                "entry_point": t["name"],
                "tests": t["tests"],
                "canonical_solution": t["completion"],
                "family": t["family"],
            }
            for i, t in enumerate(picked)
        ],
    )
    mc_code = []
    rest = [t for t in held_tasks if t not in picked]
    for i, t in enumerate(rest[:40]):
        others = {code_task(random.Random(f"mc{i}-{j}"), t["family"])["completion"] for j in range(12)}
        others = sorted(o for o in others if o != t["completion"])
        if len(others) < 3:
            continue
        choices = [t["completion"]] + random.Random(i).sample(others, 3)
        random.Random(i + 7).shuffle(choices)
        mc_code.append(
            {"id": f"mc-code-{i}", "context": t["prompt"], "choices": choices, "gold": choices.index(t["completion"])}
        )
    write_jsonl(HELDOUT / "mc-code.jsonl", mc_code)
    stats["codetask"] = {
        "train": len(train_rows),
        "heldout": len(held_tasks),
        "shipped": len(picked),
        "mc": len(mc_code),
    }
    print(stats["codetask"], flush=True)

    # ---- MC cloze over held-out natural text (which continuation follows?)
    mc_text = []
    for lang in LANGS:
        rows = [json.loads(x) for x in (HELDOUT / f"prompts-{lang}.jsonl").read_text(encoding="utf-8").splitlines()]
        conts = [r["continuation"][:80] for r in rows]
        for i, r in enumerate(rows[:12]):
            others = [c for j, c in enumerate(conts) if j != i]
            if len(others) < 3:
                break
            choices = [conts[i]] + rng.sample(others, 3)
            rng.shuffle(choices)
            sep = "" if lang in ("zh", "ja") else " "
            mc_text.append(
                {
                    "id": f"mc-text-{lang}-{i}",
                    "context": r["prompt"],
                    "choices": [sep + c for c in choices],
                    "gold": choices.index(conts[i]),
                }
            )
    write_jsonl(HELDOUT / "mc-text.jsonl", mc_text)

    # ---- Python standard library
    train, held = [], []
    for path in stdlib_files():
        key = "py:" + os.path.relpath(path, sysconfig.get_paths()["stdlib"])
        try:
            chunks = code_chunks(read_text(path))
        except Exception:
            continue
        (held if is_heldout(key) else train).extend(chunks)
    rng.shuffle(train)
    total, kept = 0, []
    for t in train:
        if total > args.max_chars_per_lang:
            break
        kept.append({"text": t})
        total += len(t)
    write_jsonl(CORPUS / "train-code.jsonl", kept)
    rng.shuffle(held)
    write_jsonl(
        HELDOUT / "text-code.jsonl",
        [{"id": f"text-code-{i}", "text": t[:1000]} for i, t in enumerate(held) if len(t) >= 300][:40],
    )
    stats["code"] = {"train_docs": len(kept), "train_chars": total, "heldout_docs": len(held)}
    print(stats["code"], flush=True)
    (CORPUS / "stats.json").write_text(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
