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
