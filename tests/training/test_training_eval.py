"""Evaluation helpers: the weight-noise probe (the gate's own perturbation) sees answer flips when they happen."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.model.loading import load_model
from training.measure import Subject
from training.stability import stability

SUITE = """
defaults:
  domain: smoke
cases:
  - id: a
    language: any
    prompt: "hello world"
    max_new_tokens: 12
  - id: b
    language: any
    prompt: "el gato come"
    max_new_tokens: 12
  - id: c
    kind: perplexity
    data: ppl.jsonl
"""


@pytest.fixture(scope="module")
def tiny(tiny_moe_path: Path):
    return load_model(tiny_moe_path)


def test_stability_counts_flips_only_when_answers_change(tiny, tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text(SUITE)
    (tmp_path / "ppl.jsonl").write_text('{"id": "p", "text": "not a generative case"}\n')
    calm = stability(tiny.model, tiny.tokenizer, scales=(0.0,), seeds=(0,), suite=tmp_path)
    assert calm["cases"] == 2 and calm["scales"]["0"]["max_changed"] == 0  # no noise: nothing flips
    wild = stability(tiny.model, tiny.tokenizer, scales=(5.0,), seeds=(0, 1), suite=tmp_path)
    assert wild["scales"]["5"]["max_changed"] >= 1  # noise far above the weights' scale flips answers


def test_split_keeps_joint_tokenization(tiny) -> None:
    s = Subject(tiny.model, tiny.tokenizer)
    ctx, target = s.split("abc", "de")
    ids = tiny.tokenizer("abcde", add_special_tokens=False)["input_ids"]
    assert ctx + target == ids and len(target) == 2
    assert s.logprobs([(ctx, target)])[0] < 0


def test_case_picking_prefers_stable_then_better_candidates_per_language(tmp_path: Path) -> None:
    from training.pick_cases import Candidate, pick, write_cases

    cands = [
        Candidate("cont-en-1", "en", "p", flips=1, quality=300.0),  # best text, but it flipped once
        Candidate("cont-en-2", "en", "p", flips=0, quality=80.0),
        Candidate("cont-en-3", "en", "p", flips=0, quality=0.0),  # never flips, but does not qualify
        Candidate("cont-en-4", "en", "p", flips=0, quality=120.0),
        Candidate("cont-ja-1", "ja", "p", flips=2, quality=90.0),  # the only ja one: kept despite its flips
        Candidate("cont-de-1", "de", "p", flips=0, quality=70.0),
        Candidate("cont-de-2-cut1", "de", "p", flips=0, quality=90.0, document="prompt-de-2"),
        Candidate("cont-de-2-cut2", "de", "p", flips=0, quality=95.0, document="prompt-de-2"),  # same document
    ]
    picked = ["cont-en-4", "cont-en-2", "cont-de-2-cut2", "cont-de-1", "cont-ja-1"]
    assert [c.case_id for c in pick(cands, per_language=2, draws=48)] == picked
    # a second case that flips under more than 1 in 16 draws stays out; the first never does
    fragile = [
        Candidate("cont-ru-1", "ru", "p", flips=9, quality=90.0),
        Candidate("cont-ru-2", "ru", "p", flips=4, quality=80.0),
    ]
    assert [c.case_id for c in pick(fragile, per_language=2, draws=48)] == ["cont-ru-2"]
    assert [c.case_id for c in pick(fragile, per_language=2, draws=160)] == ["cont-ru-2", "cont-ru-1"]
    case_file = tmp_path / "cases.yaml"
    case_file.write_text("# header\ndefaults:\n  domain: x\ncases:\n  - id: old\n", encoding="utf-8")
    write_cases(case_file, "  - id: new")
    assert case_file.read_text(encoding="utf-8") == "# header\ndefaults:\n  domain: x\ncases:\n  - id: new\n"
    no_cases = tmp_path / "no_cases.yaml"
    no_cases.write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no 'cases:' line"):
        write_cases(no_cases, "  - id: y")


def test_model_card_says_when_a_run_continued_from_other_weights(tmp_path: Path) -> None:
    from training.model_card import init_from_line

    assert init_from_line(None) == init_from_line("None") == "- Trained from scratch."
    (tmp_path / "training_state.json").write_text('{"tokens_seen": 30003200}', encoding="utf-8")
    line = init_from_line(str(tmp_path))
    assert "**Continued**" in line and str(tmp_path) in line and "30,003,200 tokens" in line
    assert "had seen" not in init_from_line(str(tmp_path / "missing"))  # still says it continued
    stages = [
        {"run": "a", "tokens_seen": 30_000_000, "elapsed_s": 7200.0},
        {"run": "b", "tokens_seen": 8_000_000, "elapsed_s": 1800.0},
    ]
    assert "**38,000,000 tokens in 2.50 h in all**" in init_from_line(str(tmp_path), stages)


def test_model_card_names_weight_noise_training() -> None:
    from training.model_card import weight_noise_clause

    assert weight_noise_clause(None) == weight_noise_clause("0.0") == ""
    assert "0.02 x each matrix's rms" in weight_noise_clause("0.02")


def test_continuation_judged_consistent_only_when_the_gate_check_passes() -> None:
    from training.measure import continuation_verdict

    pure = "函数 freopen 打开名称为 path 指向的字符串的文件，将它与 stream 指向的流关联。"
    assert continuation_verdict(pure, "zh") == "zh"
    # read as Chinese as a whole, but a run of it is not: a failure, not a pass (the v2 card counted it as one)
    looped = "，则它是在标准输入的字符串中)\n函数 fp (argv [argv [argv [argv [argv [argv [argv [argv [argv [argv ["
    assert continuation_verdict(looped, "zh") == "mixed"
    assert continuation_verdict("The quick brown fox jumps over the lazy dog again and again.", "zh") == "en"
    assert continuation_verdict("", "zh") == "short"


def test_model_card_reads_the_training_record_from_the_exported_model(tmp_path: Path) -> None:
    import json

    from training.model_card import write_card

    results = json.loads((Path(__file__).resolve().parents[2] / "training" / "eval_results.json").read_text())
    results["training_state"] = {
        "run": "r",
        "preset": "v2",
        "step": 2,
        "tokens_seen": 8192,
        "elapsed_s": 2.0,
        "args": {"batch": "32", "ctx": "128", "lr": "0.0005", "threads": "2"},
        "mix": {"text-en": 0.5, "arith": 0.5},
        "streams": {"text-en": {"docs": 7, "chars": 1234}},
    }
    model, card = tmp_path / "model", tmp_path / "docs" / "MODEL_CARD.md"
    model.mkdir()
    card.parent.mkdir()
    (card.parent / "model_card_loss.png").write_bytes(b"another model's curve")
    write_card(results, model, card)
    text = card.read_text()
    assert "32 x 128 tokens" in text and "peak lr 0.0005" in text and "| text-en | 0.500 | 7 | 1234 |" in text
    assert "No loss curve" in text and not (card.parent / "model_card_loss.png").exists()  # no stale curve
    (model / "training_log.csv").write_text("step,tokens,loss\n1,4096,9.0\n2,8192,8.5\n")
    write_card(results, model, card)
    assert "![loss curve](model_card_loss.png)" in card.read_text()
    assert (card.parent / "model_card_loss.png").read_bytes().startswith(b"\x89PNG")
