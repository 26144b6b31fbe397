"""Corpus building blocks: correct worked arithmetic, the held-out split, SWORD and gettext readers."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.build_corpus import prose, split_sources
from training.data import arithmetic, sword
from training.data.common import in_language, is_heldout, is_mojibake
from training.data.heldout import (
    PROMPT_MIN_CONTINUATION,
    mc_text_rows,
    mid_sentence,
    near_misses,
    text_rows,
    word_substitutions,
)
from training.data.leakage import continuation_probe, joined
from training.data.natural import TextSource
from training.data.parallel import read_mo


@given(st.integers(0, 999), st.sampled_from("+-"), st.integers(0, 999))
def test_worked_answer_is_the_true_result(a: int, op: str, b: int) -> None:
    if op == "-" and b > a:
        a, b = b, a
    body, ans = arithmetic.worked(a, op, b)
    assert ans == (a + b if op == "+" else a - b)
    assert body.endswith(f"\nanswer {ans}\n")


def test_a_wrong_worked_answer_is_refused() -> None:
    body, _ = arithmetic.worked(495, "+", 114)
    arithmetic.verify(495, "+", 114, body)  # the benign look-alike: the true solution passes
    with pytest.raises(ArithmeticError, match="495\\+114"):
        arithmetic.verify(495, "+", 114, body.replace("answer 609", "answer 1359"))
    with pytest.raises(ArithmeticError, match="digits 619"):  # a dropped carry in the steps
        arithmetic.verify(495, "+", 114, body.replace("put 0 carry 1", "put 1 carry 1"))


def test_train_only_sources_never_go_to_heldout() -> None:
    keys = [f"doc:{i}" for i in range(400)]
    assert any(is_heldout(k) for k in keys)  # ~5% of keys are held out

    def docs(lang: str):
        return ((k, f"{lang} text {k}") for k in keys)

    sources = [TextSource("split", docs, ("en",)), TextSource("train-only", docs, ("en",), heldout=False)]
    train, held = split_sources(sources, "en")
    assert len(train["train-only"]) == len(keys)
    assert "train-only" not in held
    assert len(held["split"]) == sum(is_heldout(k) for k in keys) == len(keys) - len(train["split"])
    assert split_sources(sources, "de") == ({}, {})


def test_prose_takes_held_out_documents_of_prose_sources_only() -> None:
    held = {"fortunes": [("a quote",)], "man": [("a manual page",)], "help": [("a help page",)]}
    assert prose(held) == {"a manual page", "a help page"}


def test_in_language_drops_untranslated_lines() -> None:
    assert in_language("de", "Dieses Programm zeigt die Größe der Dateien im aktuellen Verzeichnis an.")
    assert not in_language("de", "This program shows the size of the files in the current directory.")
    assert not in_language("zh", "This program shows the size of the files.")
    assert in_language("zh", "这个程序显示当前目录中文件的大小。")


def _write_ztext(root: Path, name: str, versification: str, verses: list[str]) -> None:
    """A minimal zText module: one block holding every verse of the New Testament."""
    folder = root / "modules" / "texts" / "ztext" / name
    folder.mkdir(parents=True)
    raw = b"".join(v.encode() for v in verses)
    comp = zlib.compress(raw)
    (folder / "nt.bzz").write_bytes(comp)
    (folder / "nt.bzs").write_bytes(struct.pack("<III", 0, len(comp), len(raw)))
    index, offset = b"", 0
    for v in verses:
        index += struct.pack("<IIH", 0, offset, len(v.encode()))
        offset += len(v.encode())
    (folder / "nt.bzv").write_bytes(index)
    (root / "mods.d").mkdir(exist_ok=True)
    (root / "mods.d" / f"{name}.conf").write_text(
        f"[{name}]\nDataPath=./modules/texts/ztext/{name}/\nModDrv=zText\nVersification={versification}\n"
    )


def test_sword_reader_aligns_verse_slots(tmp_path: Path) -> None:
    en = ["", '<w lemma="G1">In</w> the beginning<note placement="foot">a note</note>.', "", "Amen &amp; amen."]
    es = ["", "<title>Cap 1</title>En el principio.", "Sólo en español.", "Amén y amén."]
    _write_ztext(tmp_path, "EN", "KJV", en)
    _write_ztext(tmp_path, "ES", "KJV", es)
    assert sword.verses("EN", tmp_path) == ("KJV", ["", "In the beginning.", "", "Amen & amen."])
    pairs = sword.parallel_verses("EN", "ES", tmp_path)
    assert pairs == [(1, "In the beginning.", "En el principio."), (3, "Amen & amen.", "Amén y amén.")]


def test_sword_reader_refuses_other_versifications(tmp_path: Path) -> None:
    _write_ztext(tmp_path, "EN", "NRSVA", ["", "a"])
    _write_ztext(tmp_path, "ES", "KJV", ["", "b"])
    with pytest.raises(ValueError, match="not aligned"):
        sword.parallel_verses("EN", "ES", tmp_path)


def _write_mo(path: Path, pairs: dict[str, str]) -> None:
    """GNU .mo layout: header, original-string table, translation table, then the strings."""
    keys = sorted(pairs)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(pairs[k].encode() + b"\0" for k in keys)
    n = len(keys)
    start = 28 + 16 * n
    o_tab, t_tab, off = b"", b"", 0
    for k in keys:
        o_tab += struct.pack("<2I", len(k.encode()), start + off)
        off += len(k.encode()) + 1
    off = 0
    for k in keys:
        t_tab += struct.pack("<2I", len(pairs[k].encode()), start + len(ids) + off)
        off += len(pairs[k].encode()) + 1
    header = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    path.write_bytes(header + o_tab + t_tab + ids + strs)


def test_read_mo_round_trip(tmp_path: Path) -> None:
    pairs = {"Open the file": "Abrir el archivo", "menu\x04Quit": "Salir", "": "Project-Id: x"}
    _write_mo(tmp_path / "x.mo", pairs)
    assert read_mo(tmp_path / "x.mo") == {"Open the file": "Abrir el archivo", "Quit": "Salir"}


def test_budgeted_is_seeded() -> None:
    from training.build_corpus import budgeted

    texts = [f"text {i}" for i in range(100)]
    a = budgeted(texts, 50, random.Random(1))
    assert a == budgeted(texts, 50, random.Random(1)) and 50 <= sum(map(len, a)) < 50 + 8


def test_heldout_items_are_well_formed() -> None:
    from training.data import heldout

    pairs = [(f"Open the file number {i}", f"Abrir el archivo número {i}") for i in range(80)]
    rows, mc = heldout.translation_rows("es", pairs, random.Random(0))
    assert len(rows) == heldout.TRANSLATION_ITEMS
    assert all(r["prompt"] == f"English: {r['source']}\nSpanish:" for r in rows)
    assert all(x["choices"][x["gold"]] == " " + dict(pairs)[x["context"].split("\n")[0][9:]] for x in mc)
    problems = [(100 + i, "+", 7 * i) for i in range(100)]
    arows, amc = heldout.arithmetic_rows(problems, random.Random(0))
    assert [int(r["answer"]) for r in arows] == [a + b for a, _, b in problems[:60]]
    truths = {f"Q: {a}+{b}=?\nA:": a + b for a, _, b in problems}
    assert amc and all(x["choices"][x["gold"]].endswith(f"answer {truths[x['context']]}\n") for x in amc)


def test_pure_paragraphs_keeps_only_the_language() -> None:
    from training.data.common import pure_paragraphs

    doc = "Das Programm zeigt alle Dateien im Verzeichnis an.\nThis line was never translated into German.\nкороткий"
    assert pure_paragraphs("de", doc) == "Das Programm zeigt alle Dateien im Verzeichnis an."


def test_leak_check_finds_a_heldout_item_in_a_stream(tmp_path: Path) -> None:
    from training.data.leakage import leaks

    held, corpus = tmp_path / "held", tmp_path / "corpus"
    held.mkdir()
    corpus.mkdir()
    (held / "arithmetic.jsonl").write_text('{"id": "arith-0", "prompt": "Q: 49+5=?\\nA:", "answer": "54"}\n')
    (held / "text-de.jsonl").write_text('{"id": "text-de-0", "text": "Ein Satz, der nur im Testteil steht.\\nMehr."}\n')
    stream = corpus / "train-arith.jsonl"
    stream.write_text('{"text": "Q: 149+5=?\\nA: 149+005"}\n')  # the benign look-alike
    (corpus / "train-text-de.jsonl").write_text('{"text": "Etwas anderes."}\n')
    assert leaks(held, corpus) == ([], 2)
    stream.write_text('{"text": "Q: 149+5=?\\nA: 149+005"}\n{"text": "Q: 49+5=?\\nA: 49+05"}\n')
    (corpus / "train-text-de.jsonl").write_text('{"text": "Vorher.\\nEin Satz, der nur im Testteil steht.\\nMehr."}\n')
    assert leaks(held, corpus) == (["arith-0 in train-arith.jsonl", "text-de-0 in train-text-de.jsonl"], 2)


def test_code_distractors_change_behaviour_by_one_token() -> None:
    body = "    return [y for y in xs if y > 9]\n"
    misses = near_misses(body)
    assert body not in misses and len(misses) == len(set(misses))
    assert "    return [y for y in xs if y >= 9]\n" in misses and "    return [y for y in xs if y > 10]\n" in misses
    assert all(sum(a != b for a, b in zip(m, body, strict=False)) <= 2 for m in misses if len(m) == len(body))
    assert near_misses("    return x\n") == []  # nothing to change: the builder skips the item


def test_mid_sentence_cuts_inside_the_continuation() -> None:
    row = {"prompt": "It was late.", "continuation": "The  rain kept falling on the roof all night."}
    assert mid_sentence(row, "en") == ("It was late. The rain kept falling", "on the roof all night.")
    ja = {"prompt": "夜。", "continuation": "雨が一晩中屋根に降り続けた。そして朝になった。"}
    assert mid_sentence(ja, "ja") == ("夜。雨が一晩中屋根に降り続け", "た。そして朝になった。")  # 12 characters
    long = {"prompt": "Intro.", "continuation": " ".join(f"w{i}" for i in range(30))}
    assert mid_sentence(long, "en", depth=1)[0] == "Intro. " + " ".join(f"w{i}" for i in range(12))  # 8 words on
    assert mid_sentence(ja, "ja", depth=1) == ("夜。" + ja["continuation"], "")  # shorter than the cut: nothing left


def leaks_found(prompts: list[dict], training_text: str) -> bool:
    return any(continuation_probe(p["continuation"]) in joined([training_text]) for p in prompts)


def test_continuation_prompts_come_from_prose_only() -> None:
    fortune = (
        "Luck is what happens when preparation meets opportunity. -- Seneca, the Roman philosopher, "
        "statesman and playwright, who wrote letters on ethics and tragedies that were read for centuries."
    )
    prose = (
        "The daemon reads its configuration at start-up. It then opens the listening socket and waits for "
        "clients to connect; every client gets its own worker process, which exits when the client closes "
        "the connection or when the idle timeout given in the configuration file expires."
    )
    garbled = prose.replace("its own", "sÃ³lo its own")
    _, prompts = text_rows("en", [fortune, prose, garbled], {prose, garbled}, random.Random(0), ppl=[])
    assert [p["prompt"] for p in prompts] == ["The daemon reads its configuration at start-up."]
    assert len(prompts[0]["continuation"]) >= PROMPT_MIN_CONTINUATION
    # the fortune qualifies by length alone; only its source (not prose) keeps it out
    _, as_prose = text_rows("en", [fortune], {fortune}, random.Random(0), ppl=[])
    assert [p["prompt"] for p in as_prose] == ["Luck is what happens when preparation meets opportunity."]
    assert is_mojibake("sÃ³lo") and not is_mojibake("sólo, Ãrbol")
    # boilerplate that recurs in a training document under another key is memory, not a continuation
    credits = "A manual page, rewrapped, in another package.\n" + prose.split(". ", 1)[1] + "\n"
    _, kept_out = text_rows("en", [prose], {prose}, random.Random(0), ppl=[], trained=joined([credits]))
    assert kept_out == []
    assert leaks_found(prompts, credits)  # the build's leak check would have named it


def test_word_substitutions_replace_exactly_one_word_from_the_vocabulary() -> None:
    units = ["the", "rain", "kept", "falling", "on", "the", "roof"]
    vocabulary = ["night", "rain", "window"]
    out = word_substitutions(units, vocabulary, random.Random(1))
    assert len(out) == 3 and len({tuple(o) for o in out}) == 3
    for o in out:
        changed = [(a, b) for a, b in zip(units, o, strict=True) if a != b]
        assert len(changed) == 1 and changed[0][1] in vocabulary
    assert word_substitutions(["rain"], ["rain"], random.Random(1)) == []  # nothing to substitute: item skipped


def test_mc_text_item_holds_the_true_continuation_among_substitutions() -> None:
    rows = [
        {"prompt": f"Prompt {i}.", "continuation": f"w{i}a w{i}b w{i}c w{i}d w{i}e w{i}f w{i}g w{i}h w{i}i"}
        for i in range(4)
    ]
    items = mc_text_rows({"en": rows}, random.Random(0))
    assert [x["id"] for x in items] == [f"mc-text-en-{i}" for i in range(4)]
    first = items[0]
    gold = first["choices"][first["gold"]]
    assert first["context"] == "Prompt 0." and len(first["choices"]) == 4
    assert gold == " w0a w0b w0c w0d w0e w0f w0g w0h"  # the first MC_TEXT_WORDS words
    for choice in first["choices"]:
        foreign = [w for w in choice.split() if not w.startswith("w0")]
        assert len(foreign) == (0 if choice == gold else 1)  # one word from another continuation
    zh = mc_text_rows(
        {
            "zh": [
                {"prompt": "提示。", "continuation": "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未"},
                {"prompt": "其他。", "continuation": "一二三四五六七八九十"},
            ]
        },
        random.Random(0),
    )
    assert zh[0]["choices"][zh[0]["gold"]] == "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳"  # 8 two-character chunks, no space
