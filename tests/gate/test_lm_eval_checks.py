"""lm-eval perplexity / MC checks against an independent torch oracle on a tiny random MoE.

Why an oracle: the gate trusts these numbers to fail builds, so they are checked against a direct
computation of the same log-likelihoods (lm-eval's rolling-window and context/continuation split
conventions re-implemented here in a few lines), not just against themselves.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3MoeConfig, Qwen3MoeForCausalLM

from evalsuite.gate import lm_eval_checks as lec

torch.set_num_threads(1)

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a monad sequences computations in functional programming",
    "el perro duerme bajo el sol y la casa es blanca",
    "def add(a, b): return a + b",
]
BOS = 1


def _tokenizer(with_pad: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in memory: offline, deterministic, any script encodes (bytes)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    extra = {"pad_token": "<pad>"} if with_pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", **extra)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return _tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    cfg = Qwen3MoeConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=128,
        bos_token_id=BOS,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(0)
    return Qwen3MoeForCausalLM(cfg).eval()


def _token_logprobs(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[t] | ids[:t]) for t >= 1, from one plain forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def _oracle_rolling(model, tokens: list[int], max_length: int, prefix: int = BOS) -> float:
    """Rolling log-likelihood: first window starts at the prefix token, later ones slide so each is full-length."""
    total = 0.0
    total += float(_token_logprobs(model, [prefix] + tokens[:max_length]).sum())
    done = min(len(tokens), max_length)
    while done < len(tokens):
        end = min(len(tokens), done + max_length)
        window = tokens[end - max_length - 1 : end]  # inputs end at end-1, targets up to end-1
        lp = _token_logprobs(model, window)
        total += float(lp[-(end - done) :].sum())
        done = end
    return total


def _oracle_choice(model, tokenizer, context: str, continuation: str) -> float:
    ctx = tokenizer(context)["input_ids"] or [BOS]
    whole = tokenizer(context + continuation)["input_ids"]
    cont = whole[len(tokenizer(context)["input_ids"]) :]
    lp = _token_logprobs(model, ctx + cont)
    return float(lp[-len(cont) :].sum())


TEXTS = [
    "the quick brown fox",
    "el perro duerme bajo el sol",
    "Ünïcödé ключ 日本語 {{not a template}} \n",
    "a monad sequences computations " * 6,  # > max_length tokens: several rolling windows
]


def test_perplexity_matches_direct_torch_computation(model, tokenizer) -> None:
    docs = lec.perplexity_per_doc(model, tokenizer, TEXTS, batch_size=2, max_length=16)
    assert [d.index for d in docs] == list(range(len(TEXTS)))
    assert docs[3].tokens > 16, "the long text must exercise more than one window"
    for doc, text in zip(docs, TEXTS, strict=True):
        tokens = tokenizer(text)["input_ids"]
        assert doc.tokens == len(tokens)
        assert doc.words == len(re.split(r"\s+", text))
        assert doc.bytes == len(text.encode("utf-8"))
        assert doc.loglikelihood == pytest.approx(_oracle_rolling(model, tokens, 16), abs=1e-3, rel=1e-5)
    total = sum(d.loglikelihood for d in docs)
    assert lec.token_perplexity(docs) == pytest.approx(math.exp(-total / sum(d.tokens for d in docs)))
    assert lec.word_perplexity(docs) == pytest.approx(math.exp(-total / sum(d.words for d in docs)))
    assert lec.bits_per_byte(docs) == pytest.approx(-total / sum(d.bytes for d in docs) / math.log(2))
    assert lec.byte_perplexity(docs) == pytest.approx(2 ** lec.bits_per_byte(docs))


MC_ITEMS = [
    {"id": "fox", "context": "the quick brown", "choices": ["fox jumps", "dog", "sol y la casa"], "gold": 0},
    {"context": "el perro duerme", "choices": ["bajo el sol", "over the lazy dog"], "gold": 0},
    {"context": "def add(a, b):", "choices": ["return a + b", "monad", "blanca"], "gold": 2},
    {"context": "", "choices": ["the", "computations in functional"], "gold": 1},
]


def test_mc_picks_highest_loglikelihood_choice(model, tokenizer) -> None:
    items = lec.mc_per_item(model, tokenizer, MC_ITEMS, batch_size=3)
    assert [it.item_id for it in items] == ["fox", "1", "2", "3"]
    for it, raw in zip(items, MC_ITEMS, strict=True):
        oracle = [_oracle_choice(model, tokenizer, raw["context"], " " + c) for c in raw["choices"]]
        assert it.loglikelihoods == pytest.approx(oracle, abs=1e-3, rel=1e-5)
        assert it.pred == max(range(len(oracle)), key=oracle.__getitem__)
        per_char = [ll / len(c) for ll, c in zip(oracle, raw["choices"], strict=True)]
        assert it.pred_norm == max(range(len(per_char)), key=per_char.__getitem__)
        assert it.acc == (it.pred == raw["gold"])
        assert it.acc_norm == (it.pred_norm == raw["gold"])
        assert it.gold == raw["gold"]
    assert lec.mc_accuracy(items) == sum(it.acc for it in items) / len(items)


def test_mc_delimiter_follows_the_data(model, tokenizer) -> None:
    """Held-out MC data carries the space in its choices (" fox"); lm-eval's default would double it."""
    spaced = [
        {"context": "the quick brown", "choices": [" fox jumps", " dog"], "gold": 0},
        {"context": "el perro duerme", "choices": [" bajo el sol", " over the lazy dog"], "gold": 0},
    ]
    plain = [{"context": "def add(a, b):", "choices": ["return a + b", "monad"], "gold": 0}]

    def oracle(item: dict, delimiter: str) -> list[float]:
        return [_oracle_choice(model, tokenizer, item["context"], delimiter + c) for c in item["choices"]]

    auto = lec.mc_per_item(model, tokenizer, spaced)
    for it, raw in zip(auto, spaced, strict=True):
        assert it.loglikelihoods == pytest.approx(oracle(raw, ""), abs=1e-3, rel=1e-5)
    forced = lec.mc_per_item(model, tokenizer, spaced, target_delimiter=" ")
    assert forced[0].loglikelihoods == pytest.approx(oracle(spaced[0], " "), abs=1e-3, rel=1e-5)
    assert forced[0].loglikelihoods != pytest.approx(auto[0].loglikelihoods, abs=1e-3)
    mixed = lec.mc_per_item(model, tokenizer, spaced + plain)
    for it, raw, delimiter in zip(mixed, spaced + plain, ["", "", " "], strict=True):
        assert it.loglikelihoods == pytest.approx(oracle(raw, delimiter), abs=1e-3, rel=1e-5)


def test_results_do_not_depend_on_batch_size(model, tokenizer) -> None:
    one = lec.perplexity_per_doc(model, tokenizer, TEXTS, batch_size=1, max_length=16)
    many = lec.perplexity_per_doc(model, tokenizer, TEXTS, batch_size=5, max_length=16)
    for a, b in zip(one, many, strict=True):
        assert (a.tokens, a.words, a.bytes) == (b.tokens, b.words, b.bytes)
        assert a.loglikelihood == pytest.approx(b.loglikelihood, abs=1e-4, rel=1e-6)
    mc_one = lec.mc_per_item(model, tokenizer, MC_ITEMS, batch_size=1)
    mc_many = lec.mc_per_item(model, tokenizer, MC_ITEMS, batch_size=7)
    for a, b in zip(mc_one, mc_many, strict=True):
        assert (a.pred, a.pred_norm, a.acc, a.acc_norm) == (b.pred, b.pred_norm, b.acc, b.acc_norm)
        assert a.loglikelihoods == pytest.approx(b.loglikelihoods, abs=1e-4, rel=1e-6)


def test_caller_objects_are_left_as_they_were(model) -> None:
    """HFLM sets a pad token on tokenizers lacking one and calls model.eval(); nothing may leak out."""
    tok = _tokenizer(with_pad=False)
    assert tok.pad_token is None
    model.train()
    rng = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    try:
        lec.perplexity_per_doc(model, tok, ["the quick brown fox"], max_length=16)
        # lm-eval's simple_evaluate would reseed all three global RNGs; we must not
        assert random.getstate() == rng[0]
        assert (np.random.get_state()[1] == rng[1]).all()
        assert torch.equal(torch.get_rng_state(), rng[2])
        assert model.training
        assert tok.pad_token is None
        assert len(tok) == len(_tokenizer(with_pad=False))
    finally:
        model.eval()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"context": "a", "choices": ["x"], "gold": 0}], "choices"),
        ([{"context": "a", "choices": ["x", "y"], "gold": 2}], "gold"),
        ([{"context": "a", "choices": ["x", "y"], "gold": True}], "gold"),
        ([{"id": "q7", "choices": ["x", "y"], "gold": 0}], "q7"),
    ],
)
def test_malformed_mc_items_name_the_item_and_field(model, tokenizer, items, message) -> None:
    with pytest.raises(lec.LmEvalInputError, match=message):
        lec.mc_per_item(model, tokenizer, items)


def test_empty_inputs(model, tokenizer) -> None:
    assert lec.perplexity_per_doc(model, tokenizer, []) == []
    assert lec.mc_per_item(model, tokenizer, []) == []
    with pytest.raises(lec.LmEvalInputError, match=r"texts\[1\]"):
        lec.perplexity_per_doc(model, tokenizer, ["ok", "   "])
    with pytest.raises(lec.LmEvalInputError):
        lec.word_perplexity([])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip),
        min_size=1,
        max_size=6,
    )
)
def test_any_text_round_trips_through_lm_eval(model, tokenizer, texts: list[str]) -> None:
    """Whatever the text (control characters, U+2028, braces, YAML/JSON syntax), lm-eval scores exactly it."""
    docs = lec.perplexity_per_doc(model, tokenizer, texts, batch_size=4, max_length=16)
    assert len(docs) == len(texts)
    for doc, text in zip(docs, texts, strict=True):
        assert doc.tokens == len(tokenizer(text)["input_ids"])
        assert doc.words == len(re.split(r"\s+", text))
        assert doc.bytes == len(text.encode("utf-8"))
        assert math.isfinite(doc.loglikelihood) and doc.loglikelihood < 0


def test_lone_surrogates_are_named(model, tokenizer) -> None:
    with pytest.raises(lec.LmEvalInputError, match=r"texts\[1\].*surrogate"):
        lec.perplexity_per_doc(model, tokenizer, ["fine", "bad \ud800 text"])
    with pytest.raises(lec.LmEvalInputError, match=r"choices\[1\]"):
        lec.mc_per_item(model, tokenizer, [{"context": "c", "choices": ["a", "b\udc80"], "gold": 0}])


def test_embedded_model_and_tokenizer_multilingual() -> None:
    """The shipped model and tokenizer (no BOS token: lm-eval falls back to EOS as the prefix)."""
    import json

    from evalsuite.model.loading import default_model_path, load_model

    if not (default_model_path() / "model.safetensors").is_file():
        pytest.skip("embedded default model not built yet")
    loaded = load_model(None)
    model, tok = loaded.model, loaded.tokenizer
    heldout = default_model_path().parent / "data" / "heldout"
    texts = []
    for lang in ("en", "zh"):
        first = (heldout / f"text-{lang}.jsonl").read_text(encoding="utf-8").splitlines()[0]
        texts.append(json.loads(first)["text"][:200])
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    docs = lec.perplexity_per_doc(model, tok, texts, batch_size=3, max_length=64)
    single = lec.perplexity_per_doc(model, tok, texts, batch_size=1, max_length=64)
    for doc, one, text in zip(docs, single, texts, strict=True):
        tokens = tok(text)["input_ids"]
        assert doc.tokens == len(tokens)
        assert doc.loglikelihood == pytest.approx(_oracle_rolling(model, tokens, 64, prefix), abs=1e-2, rel=1e-5)
        assert doc.loglikelihood == pytest.approx(one.loglikelihood, abs=1e-3, rel=1e-6)
