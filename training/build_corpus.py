"""Build the training corpus and the shipped held-out evaluation data for the embedded model.

One command, no network (after the Debian packages in training/SOURCES.md are installed):
    python -m training.build_corpus [--heldout-dir evalsuite/data/heldout]
Writes  training/corpus/train-<stream>.jsonl   (git-ignored, {"text": ...} per document)
        training/corpus/stats.json              (documents and characters per stream and per source)
        <heldout-dir>/*.jsonl                   (shipped with the package, never trained on)

Streams: text-<lang> (language-pure running text), trans-<lang> (sentence-level gettext pairs),
label-<lang> (short UI-string pairs), bible-es (verse pairs), arith, codetask, code. train.py's mix
decides how often each is sampled. Every source is read through one registry loop (`split_sources`);
held-out membership is a hash of the document's source key (training/data/common.py).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from evalsuite.io import atomic_write_text, read_jsonl
from training.data import heldout
from training.data.arithmetic import arith_problems, arith_prompt, worked
from training.data.code_tasks import code_task, task_families
from training.data.common import LANGS, TRANS_LANGS, is_heldout, pure_paragraphs, write_jsonl
from training.data.leakage import MAX_MATCH_SHARE, joined, leaks, stream_text
from training.data.natural import CODE_SOURCE, TEXT_SOURCES, TextSource
from training.data.parallel import PAIR_SOURCES, PairSource, is_sentence, trans_text

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "training" / "corpus"
HELDOUT = ROOT / "evalsuite" / "data" / "heldout"
T = TypeVar("T")


def split_sources(
    sources: Iterable[TextSource | PairSource], lang: str
) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """Run every source that covers `lang`: (training items, held-out items), each per source name.

    An item is what the source yields minus its key; a source with `heldout=False` trains on all."""
    train: dict[str, list[tuple]] = {}
    held: dict[str, list[tuple]] = {}
    for src in sources:
        if lang not in src.langs:
            continue
        items = train.setdefault(src.name, [])
        for key, *item in src.extract(lang):
            (held.setdefault(src.name, []) if src.heldout and is_heldout(key) else items).append(tuple(item))
    return train, held


def merged(by_source: dict[str, list[tuple]], names: Iterable[str] | None = None) -> list[tuple]:
    """The items of every source (only those in `names` if given), in source order."""
    keep = set(by_source) if names is None else set(names)
    return [item for name, items in by_source.items() if name in keep for item in items]


def texts(by_source: dict[str, list[tuple]], names: Iterable[str] | None = None) -> list[str]:
    """`merged` for sources whose items are one text each."""
    return [t for (t,) in merged(by_source, names)]


def budgeted(items: list[T], budget: int, rng: random.Random, size: Callable[[T], int] = len) -> list[T]:
    """A seeded random subset of `items` of about `budget` characters (`size` of an item)."""
    items = list(items)
    rng.shuffle(items)
    out, total = [], 0
    for item in items:
        if total >= budget:
            break
        out.append(item)
        total += size(item)
    return out


class Corpus:
    """Writes streams and held-out files, and counts what went where (stats.json)."""

    def __init__(self, out: Path, heldout_dir: Path | None, seed: int) -> None:
        self.out, self.heldout_dir, self.seed = out, heldout_dir, seed
        self.stats: dict[str, dict] = {}

    def rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}:{purpose}")

    def stream(self, name: str, texts: list[str], **extra: object) -> None:
        rows = [{"text": t} for t in texts if t]
        write_jsonl(self.out / f"train-{name}.jsonl", rows)
        self.stats[name] = {"docs": len(rows), "chars": sum(len(r["text"]) for r in rows), **extra}
        print(f"{name:12s} {self.stats[name]}", flush=True)

    def heldout(self, name: str, rows: list[dict]) -> None:
        if self.heldout_dir is not None:
            write_jsonl(self.heldout_dir / f"{name}.jsonl", rows)


def build_text(c: Corpus, lang: str, budget: int) -> list[dict]:
    """Language-pure running text of one language; returns its held-out continuation prompts."""
    train, held = split_sources(TEXT_SOURCES, lang)
    shares = {s.name: s.max_share for s in TEXT_SOURCES}
    picked = []  # (source, document)
    for name, items in train.items():
        picked += [
            (name, t) for t in budgeted([t for (t,) in items], int(budget * shares[name]), c.rng(f"text-{lang}-{name}"))
        ]
    kept = budgeted(picked, budget, c.rng(f"text-{lang}"), size=lambda item: len(item[1]))
    total = sum(len(d) for _, d in kept)
    held_lines = {line for t in texts(held) for line in t.split("\n")}
    kept = [(name, pure_paragraphs(lang, d, held_lines)) for name, d in kept]
    by_source = {name: sum(len(d) for n, d in kept if n == name) for name in train}
    dropped = total - sum(by_source.values())
    c.stream(f"text-{lang}", [d for _, d in kept], chars_by_source=by_source, chars_dropped_impure_or_heldout=dropped)
    ppl, prompts = heldout.text_rows(
        lang, texts(held), prose(held), c.rng(f"heldout-text-{lang}"), trained=joined(d for _, d in kept)
    )
    c.heldout(f"text-{lang}", ppl)
    c.heldout(f"prompts-{lang}", prompts)
    return prompts


def prose(held: dict[str, list[tuple]]) -> set[str]:
    """The held-out documents of the prose sources (`TextSource.prose`): where continuation prompts come from."""
    return set(texts(held, [s.name for s in TEXT_SOURCES if s.prose]))


def rebuild_prompts(c: Corpus, lang: str) -> list[dict]:
    """Continuation prompts of one language, the shipped perplexity texts left as they are (and excluded)."""
    _, held = split_sources(TEXT_SOURCES, lang)
    shipped = [r["text"] for r in read_jsonl(c.heldout_dir / f"text-{lang}.jsonl")]
    stream = c.out / f"train-text-{lang}.jsonl"
    if not stream.is_file():
        raise SystemExit(
            f"{stream} is missing: --prompts-only keeps out continuations that occur in the training stream, so "
            "build the corpus first (python -m training.build_corpus --keep-heldout)"
        )
    _, prompts = heldout.text_rows(
        lang, texts(held), prose(held), c.rng(f"heldout-text-{lang}"), ppl=shipped, trained=stream_text(stream)
    )
    c.heldout(f"prompts-{lang}", prompts)
    return prompts


def build_translation(c: Corpus, lang: str) -> list[dict]:
    """Translation streams of one language; returns its multiple-choice items."""
    train, held = split_sources(PAIR_SOURCES, lang)
    pairs = train.get("gettext", [])
    c.stream(f"trans-{lang}", [trans_text(lang, s, t) for s, t in pairs if is_sentence(s)])
    c.stream(f"label-{lang}", [trans_text(lang, s, t) for s, t in pairs if not is_sentence(s)])
    if train.get("bible"):
        c.stream(f"bible-{lang}", [trans_text(lang, s, t) for s, t in train["bible"]])
    rows, mc = heldout.translation_rows(lang, merged(held), c.rng(f"heldout-translation-{lang}"))
    c.heldout(f"translation-en-{lang}", rows)
    return mc


def build_arithmetic(c: Corpus, n_train: int) -> None:
    train, held, seen = [], [], set()
    for a, op, b in arith_problems(c.rng("arith"), n_train * 2):
        key = f"{a}{op}{b}"
        if key in seen:
            continue
        seen.add(key)
        if is_heldout("arith:" + key):
            held.append((a, op, b))
        elif len(train) < n_train:
            train.append(arith_prompt(a, op, b) + worked(a, op, b)[0])
    c.stream("arith", train)
    rows, mc = heldout.arithmetic_rows(held, c.rng("heldout-arith"))
    c.heldout("arithmetic", rows)
    c.heldout("mc-arithmetic", mc)


def build_code_tasks(c: Corpus, n_train: int) -> None:
    rng = c.rng("codetask")
    train, held, seen = [], [], set()
    while len(train) < n_train:
        t = code_task(rng)
        if len(t["tests"]) < 3:
            continue
        if not is_heldout("task:" + t["key"]):
            train.append(t["prompt"] + t["completion"])
        elif t["key"] not in seen:
            seen.add(t["key"])
            held.append(t)
    c.stream("codetask", train)
    rows, mc = heldout.code_task_rows(held, sorted(task_families(random.Random(0))))
    c.heldout("code_tasks", rows)
    c.heldout("mc-code", mc)


def build_code(c: Corpus, budget: int) -> None:
    train, held = split_sources([CODE_SOURCE], "code")
    c.stream("code", budgeted(texts(train), budget, c.rng("code")))
    long = [t for t in texts(held) if len(t) >= 300]
    c.rng("heldout-code").shuffle(long)
    c.heldout("text-code", [{"id": f"text-code-{i}", "text": t[:1000]} for i, t in enumerate(long[:40])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-chars-per-lang", type=int, default=4_000_000)
    ap.add_argument("--arith-train", type=int, default=200_000)
    ap.add_argument("--code-tasks-train", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", type=Path, default=CORPUS)
    ap.add_argument("--heldout-dir", type=Path, default=HELDOUT, help="where the shipped held-out files go")
    ap.add_argument(
        "--keep-heldout",
        action="store_true",
        help="write training streams only; the shipped held-out files stay as they are (the split is "
        "by source-key hash, so they remain disjoint from the training streams)",
    )
    ap.add_argument(
        "--prompts-only",
        action="store_true",
        help="rewrite only the held-out continuation prompts and mc-text (no training streams; the other "
        "held-out files stay as they are). After it: re-pick the gate's cases and re-record the baselines",
    )
    args = ap.parse_args()
    if args.prompts_only:
        c = Corpus(args.out, args.heldout_dir, args.seed)
        prompts = {lang: rebuild_prompts(c, lang) for lang in LANGS}
        c.heldout("mc-text", heldout.mc_text_rows(prompts, c.rng("heldout-mc-text")))
        total = sum(map(len, prompts.values()))
        print(f"wrote prompts-*.jsonl ({total} prompts) and mc-text.jsonl to {args.heldout_dir}")
        return
    c = Corpus(args.out, None if args.keep_heldout else args.heldout_dir, args.seed)
    prompts = {lang: build_text(c, lang, args.max_chars_per_lang) for lang in LANGS}
    c.heldout("mc-text", heldout.mc_text_rows(prompts, c.rng("heldout-mc-text")))
    mc_translation = [row for lang in TRANS_LANGS for row in build_translation(c, lang)]
    c.heldout("mc-translation", mc_translation)
    build_arithmetic(c, args.arith_train)
    build_code_tasks(c, args.code_tasks_train)
    build_code(c, args.max_chars_per_lang)
    found, probes = leaks(args.heldout_dir, args.out)
    print(f"held-out probes found in training streams: {len(found)} of {probes} {found}", flush=True)
    if len(found) > MAX_MATCH_SHARE * probes:
        raise SystemExit(
            f"{len(found)} of {probes} held-out items occur in training streams (first: {found[:5]}); "
            "rebuild without --keep-heldout, or fix the source's key scheme"
        )
    c.stats["heldout_probe_matches"] = {"probes": probes, "found": found}
    atomic_write_text(args.out / "stats.json", json.dumps(c.stats, indent=1, ensure_ascii=False))
    chars = sum(v.get("chars", 0) for v in c.stats.values())
    print(f"wrote {len(c.stats) - 1} streams, {chars:,} characters, to {args.out}")


if __name__ == "__main__":
    main()
