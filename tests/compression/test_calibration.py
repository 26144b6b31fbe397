"""Calibration sets: named sets from held-out data (calibration half only), local files, budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.compression import calibration
from evalsuite.errors import InvalidRecipeError
from evalsuite.model.tiny import build_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture
def heldout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for lang in ("en", "es"):
        rows = [{"id": f"{lang}-{i}", "text": f"{lang} text number {i} " * 3} for i in range(40)]
        (tmp_path / f"text-{lang}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rows = [{"id": f"a-{i}", "prompt": f"{i}+1=", "answer": str(i + 1), "worked": f"{i + 1}"} for i in range(10)]
    (tmp_path / "arithmetic.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setattr(calibration, "heldout_dir", lambda: tmp_path)
    return tmp_path


def test_named_set_uses_only_the_calibration_half(heldout: Path) -> None:
    texts = calibration.load_calibration_texts("en")
    ids = {f"en-{i}" for i in range(40)}
    calib_ids = {i for i in ids if calibration.is_calibration_record(i)}
    assert 0 < len(calib_ids) < 40
    assert len(texts) == len(calib_ids)
    eval_rows = calibration.heldout_split([{"id": i} for i in sorted(ids)], "eval")
    assert {r["id"] for r in eval_rows} == ids - calib_ids


def test_diverse_set_interleaves_sources(heldout: Path) -> None:
    texts = calibration.load_calibration_texts("diverse")
    first = [t.split()[0] for t in texts[:3]]
    assert {"en", "es"} <= set(first)  # round robin: every prefix mixes the sources
    with pytest.raises(InvalidRecipeError, match="has no data"):
        calibration.load_calibration_texts("code")


def test_token_budget_windows_and_prompt_cap(heldout: Path, tokenizer) -> None:
    calib = calibration.calibration_batches("diverse", tokenizer, token_budget=300, seq_len=32, batch_size=4)
    assert calib.tokens == 300
    assert all(len(s) <= 32 for s in calib.sequences)
    batches = list(calib)
    assert len(batches) == len(calib)
    ids, mask = batches[0]
    assert ids.shape == mask.shape and int(mask.sum()) == sum(len(s) for s in calib.sequences[:4])
    assert (
        calib.fingerprint
        == calibration.calibration_batches("diverse", tokenizer, token_budget=300, seq_len=32, batch_size=4).fingerprint
    )
    few = calibration.calibration_batches(
        "diverse", tokenizer, token_budget=10_000, num_prompts=5, windows_per_text=1, seq_len=16
    )
    assert few.num_texts == 5 and len(few.sequences) == 5
    prefixes = few.split_by_texts([2, 5])
    assert [len(p.sequences) for p in prefixes] == [2, 5]


def test_local_files(tmp_path: Path, tokenizer) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("first paragraph here\n\nsecond paragraph here\n")
    assert list(calibration.load_calibration_texts(str(txt))) == ["first paragraph here", "second paragraph here"]
    jl = tmp_path / "mine.jsonl"
    jl.write_text(json.dumps({"prompt": "Q: ", "continuation": "A"}) + "\n" + json.dumps({"text": "plain"}) + "\n")
    assert list(calibration.load_calibration_texts(str(jl))) == ["Q: A", "plain"]
    calib = calibration.calibration_batches(str(jl), tokenizer, token_budget=100)
    assert calib.num_texts == 2
    with pytest.raises(InvalidRecipeError, match="does not exist"):
        calibration.calibration_batches(str(tmp_path / "nope.jsonl"), tokenizer)
    with pytest.raises(InvalidRecipeError, match="named sets"):
        calibration.check_calibration_name("wikitext")


def test_missing_named_set_fails_at_parse_time(heldout: Path) -> None:
    from evalsuite.compression.recipe import parse_recipe

    with pytest.raises(InvalidRecipeError, match=r"'code' has no data .* available sets: en, es, arithmetic"):
        parse_recipe("reap:0.25@code")
    assert parse_recipe("reap:0.25@es").calibration == "es"
    assert "code" not in calibration.available_calibration_sets()
