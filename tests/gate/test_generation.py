"""Batched greedy generation must not depend on batching; teacher forcing must agree with generation."""

from __future__ import annotations

import math

import torch

from evalsuite.model.generation import encode_prompt, generate_greedy, score_responses

PROMPTS = [
    "hello world",
    "translate: the cat",
    "a",
    "def f(x):\n return",
    "Привет мир это тест",
    "我是中文",
    "ab cd ef gh ij kl mn op qr st uv",
]


def _ids(loaded):
    return [encode_prompt(loaded.tokenizer, p) for p in PROMPTS]


def test_batch_of_one_equals_batch_of_n(varied_moe):
    ids = _ids(varied_moe)
    single = [generate_greedy(varied_moe.model, varied_moe.tokenizer, [i], max_new_tokens=20)[0] for i in ids]
    for batch_size in (2, 3, len(ids)):
        batched = generate_greedy(varied_moe.model, varied_moe.tokenizer, ids, max_new_tokens=20, batch_size=batch_size)
        assert [g.token_ids for g in batched] == [g.token_ids for g in single]
        assert [g.text for g in batched] == [g.text for g in single]
    # varied text: the test would be vacuous if every prompt produced the same string
    assert len({g.text for g in single}) > 3


def test_per_prompt_budget_and_stop_strings(varied_moe):
    ids = _ids(varied_moe)[:3]
    full = generate_greedy(varied_moe.model, varied_moe.tokenizer, ids, max_new_tokens=12)
    mixed = generate_greedy(varied_moe.model, varied_moe.tokenizer, ids, max_new_tokens=[4, 12, 8])
    assert [len(g.token_ids) for g in mixed] == [4, 12, 8]
    assert mixed[1].token_ids == full[1].token_ids
    assert mixed[0].token_ids == full[0].token_ids[:4]
    stop = full[1].text[3:5]
    cut = generate_greedy(varied_moe.model, varied_moe.tokenizer, [ids[1]], max_new_tokens=12, stop=[[stop]])[0]
    assert cut.finish == "stop"
    assert cut.text == full[1].text[: full[1].text.find(stop)]
    assert stop not in cut.text


def test_teacher_forced_scores_match_greedy_and_batching(varied_moe):
    ids = _ids(varied_moe)
    gens = generate_greedy(varied_moe.model, varied_moe.tokenizer, ids, max_new_tokens=10, batch_size=4)
    responses = [g.token_ids for g in gens]
    batched = score_responses(varied_moe.model, varied_moe.tokenizer, ids, responses, top_k=4, batch_size=4)
    for i, scores in enumerate(batched):
        # greedy picked the argmax, so under teacher forcing the response token is the top-1
        assert [row[0] for row in scores.top_ids] == responses[i]
        pairs = zip(scores.token_logprobs, scores.top_logprobs, strict=True)
        assert all(math.isclose(a, row[0], abs_tol=1e-5) for a, row in pairs)
        single = score_responses(varied_moe.model, varied_moe.tokenizer, [ids[i]], [responses[i]], top_k=4)[0]
        assert single.top_ids == scores.top_ids
        assert max(abs(a - b) for a, b in zip(single.token_logprobs, scores.token_logprobs, strict=True)) < 1e-4


def test_gather_returns_logprobs_of_requested_ids(varied_moe):
    ids = _ids(varied_moe)[:2]
    gens = generate_greedy(varied_moe.model, varied_moe.tokenizer, ids, max_new_tokens=6)
    responses = [g.token_ids for g in gens]
    first = score_responses(varied_moe.model, varied_moe.tokenizer, ids, responses, top_k=3)
    again = score_responses(
        varied_moe.model, varied_moe.tokenizer, ids, responses, top_k=3, gather=[s.top_ids for s in first]
    )
    for a, b in zip(first, again, strict=True):
        for want, got in zip(a.top_logprobs, b.gathered, strict=True):
            assert max(abs(x - y) for x, y in zip(want, got, strict=True)) < 1e-4


def test_chat_prompts_use_the_template_and_fail_clearly_without_one():
    import pytest

    from evalsuite.errors import EvalsuiteError
    from evalsuite.model.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    with pytest.raises(EvalsuiteError, match="no chat template"):
        encode_prompt(tok, "hi", chat=True)
    tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert tok.decode(encode_prompt(tok, "hi", chat=True)) == "<user>hi\n<assistant>"
    assert tok.decode(encode_prompt(tok, "hi")) == "hi"


def test_checkpoint_generation_config_does_not_leak_into_greedy(varied_moe):
    """Repetition penalty, n-gram ban, suppressed/forced tokens and a minimum length in the checkpoint's
    generation_config.json changed the "greedy" text; greedy must be the argmax of the logits only."""
    from transformers import GenerationConfig

    model, tok = varied_moe.model, varied_moe.tokenizer
    ids = _ids(varied_moe)
    plain = generate_greedy(model, tok, ids, max_new_tokens=16)
    saved = model.generation_config
    common = [t for g in plain for t in g.token_ids]
    hostile = GenerationConfig(
        repetition_penalty=50.0,
        no_repeat_ngram_size=1,
        suppress_tokens=sorted(set(common))[:5],
        begin_suppress_tokens=[plain[0].token_ids[0]] if plain[0].token_ids else None,
        min_new_tokens=16,
        eos_token_id=saved.eos_token_id,
    )
    model.generation_config = hostile
    try:
        leaked = generate_greedy(model, tok, ids, max_new_tokens=16)
        # the look-alike: the same settings passed on purpose do change the text (the test can fail)
        out = model.generate(
            input_ids=torch.tensor([ids[0]]), generation_config=GenerationConfig(max_new_tokens=16, do_sample=False)
        )
    finally:
        model.generation_config = saved
    assert [g.token_ids for g in leaked] == [g.token_ids for g in plain]
    assert model.generation_config is saved
    assert out[0, len(ids[0]) :].tolist() != plain[0].token_ids
