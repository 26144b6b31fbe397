"""Batched greedy generation and teacher-forced scoring.

Why this module exists: the gate compares a compressed model with stored outputs of the original, so
every response must be reproducible bit for bit. Generation is greedy, runs in the model's own dtype
(fp32 by default) and pads on the left with an explicit attention mask and position ids, so a prompt's
tokens do not depend on which other prompts share its batch (tested: batch of 1 == batch of N).
Scoring feeds ``prompt + response`` through the model once (teacher forcing) and keeps, per response
position, the log-prob of the response token and the top-k alternatives: that is what the logit
divergence check needs, without storing whole vocabularies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from evalsuite.progress import progress

__all__ = [
    "Generation",
    "TokenScores",
    "encode_prompt",
    "finish_generation",
    "generate_greedy",
    "generate_sampled",
    "pad_id_of",
    "score_responses",
]


@dataclass
class Generation:
    """One greedy response: the new token ids (eos and anything after it removed) and the text."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    finish: str  # "eos" | "length" | "stop"
    scores: TokenScores | None = None  # top-k log-probs per new token, when asked for


@dataclass
class TokenScores:
    """Teacher-forced log-probs of a response, one entry per response token."""

    token_logprobs: list[float]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]
    # log-probs this model gives to ids asked for by the caller (e.g. the baseline's top-k ids)
    gathered: list[list[float]] = field(default_factory=list)


def input_device(model) -> torch.device:
    """Where input ids go: the embedding's device (a dispatched model's first layer; parameters of
    offloaded layers sit on the meta device until their forward runs)."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    if weight is not None and weight.device.type != "meta":
        return weight.device
    return torch.device("cpu")


def pad_id_of(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else eos, else 0 (masked out anyway)."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return 0


def _eos_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(tokenizer, "eos_token_id", None), getattr(model.generation_config, "eos_token_id", None)):
        if source is None:
            continue
        ids.update(int(x) for x in (source if isinstance(source, list | tuple) else [source]))
    return ids


def encode_prompt(tokenizer, prompt: str, *, chat: bool = False) -> list[int]:
    """Token ids of a prompt; ``chat`` wraps it as one user turn with the tokenizer's chat template."""
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            from evalsuite.errors import EvalsuiteError

            raise EvalsuiteError(
                "a case asks for `chat: true` but the tokenizer has no chat template; "
                "set `chat: false` for this model or use an instruction-tuned checkpoint"
            )
        out = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
        )
        if hasattr(out, "keys") and "input_ids" in out:
            out = out["input_ids"]
        return [int(x) for x in out]
    return [int(x) for x in tokenizer(prompt, add_special_tokens=True)["input_ids"]]


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def _batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _cut_at_stop(tokenizer, ids: list[int], stop: Sequence[str]) -> tuple[list[int], str, bool]:
    """Cut a response at the first stop string; keep the tokens up to the one completing it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [text.find(s) for s in stop if s and s in text]
    if not hits:
        return ids, text, False
    cut = min(hits)
    # smallest token prefix whose text already contains the stop string
    for n in range(1, len(ids) + 1):
        prefix = tokenizer.decode(ids[:n], skip_special_tokens=True)
        if any(s and s in prefix for s in stop):
            return ids[:n], text[:cut], True
    return ids, text[:cut], True


@contextmanager
def _plain_generation_config(model) -> Iterator[None]:
    """Hide the checkpoint's `generation_config.json` from `generate` for the duration.

    Why: `generate` fills every field our config leaves unset from ``model.generation_config``, so a
    checkpoint's repetition penalty, n-gram ban, suppressed or forced tokens, minimum length, ... changed
    "greedy" text (and a compressed checkpoint with another generation config would be judged on other
    decoding rules). Greedy here means argmax of the model's logits, nothing else; only the
    end-of-sequence ids are taken from the checkpoint, explicitly (`_eos_ids`).
    """
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def finish_generation(
    tokenizer, prompt_ids: list[int], new_ids: Sequence[int], *, budget: int, eos: set[int], stop: Sequence[str]
) -> Generation:
    """A response from raw new ids, the same for every backend: cut at the budget, at the first eos and
    at the first stop string (keeping the token that completes it); the text is decoded from the ids."""
    toks = list(new_ids)[:budget]
    finish = "length"
    for pos, tok in enumerate(toks):
        if tok in eos:
            toks, finish = toks[:pos], "eos"
            break
    toks, text, stopped = _cut_at_stop(tokenizer, toks, stop)
    return Generation(list(prompt_ids), toks, text, "stop" if stopped else finish)


@torch.no_grad()
def generate_greedy(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int | Sequence[int] = 64,
    stop: Sequence[Sequence[str]] | None = None,
    batch_size: int = 8,
) -> list[Generation]:
    """Greedy responses for token-id prompts, in input order.

    Prompts are grouped by budget and length (less padding), batched with left padding, and every
    response is cut at eos, its own ``max_new_tokens`` and its stop strings, so the result does not
    depend on grouping or batch size.
    """
    from transformers import GenerationConfig

    n = len(prompts)
    budgets = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    stops = [list(s) for s in stop] if stop is not None else [[] for _ in range(n)]
    if len(budgets) != n or len(stops) != n:
        raise ValueError("max_new_tokens and stop must have one entry per prompt")
    pad_id = pad_id_of(tokenizer)
    eos = _eos_ids(model, tokenizer)
    device = input_device(model)
    # one batch holds prompts with the same stop strings (so generation can end early on them), then
    # similar budgets and lengths (less padding); grouping never changes a prompt's tokens
    order = sorted(range(n), key=lambda i: (sorted(stops[i]), budgets[i], len(prompts[i])))
    groups: list[list[int]] = []
    for i in order:
        if groups and sorted(stops[groups[-1][0]]) == sorted(stops[i]) and len(groups[-1]) < max(1, batch_size):
            groups[-1].append(i)
        else:
            groups.append([i])
    results: list[Generation | None] = [None] * n
    was_training = model.training
    model.eval()
    try:
        for batch in progress(groups, f"generating {n} responses"):
            ids, mask = _left_pad([prompts[i] for i in batch], pad_id)
            budget = max(budgets[i] for i in batch)
            config = GenerationConfig(
                max_new_tokens=budget,
                do_sample=False,
                num_beams=1,
                eos_token_id=sorted(eos) or None,
                pad_token_id=pad_id,
            )
            extra = {}
            if stops[batch[0]]:
                config.stop_strings = list(stops[batch[0]])
                extra["tokenizer"] = tokenizer
            with _plain_generation_config(model):
                out = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    generation_config=config,
                    **extra,
                )
            new = out[:, ids.shape[1] :].tolist()
            for row, i in enumerate(batch):
                results[i] = finish_generation(tokenizer, list(prompts[i]), new[row], budget=budgets[i], eos=eos,
                                               stop=stops[i])
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


def sample_seed(seed: int, prompt: Sequence[int]) -> int:
    """The random seed of one prompt's samples: from the run's seed and the prompt's own ids, so a
    prompt's samples do not depend on which other prompts are sampled or in what order."""
    import zlib

    return (seed * 1_000_003 + zlib.crc32(repr(list(prompt)).encode())) % 2**31


@torch.no_grad()
def generate_sampled(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    *,
    n: int,
    temperature: float,
    seed: int = 0,
    max_new_tokens: int | Sequence[int] = 64,
    stop: Sequence[Sequence[str]] | None = None,
) -> list[list[Generation]]:
    """``n`` temperature samples per prompt (pure temperature: no top-k / top-p), in input order.

    Why one prompt per call, seeded from the prompt (`sample_seed`): samples then depend only on the
    model, the prompt, ``seed`` and ``n``, never on batching; and the base model and a compressed one
    draw sample j from the same random stream (common random numbers), which is what makes the paired
    per-problem test of code pass@k (gate/checks.py) informative. The global RNG state is restored.
    """
    from transformers import GenerationConfig

    budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    stops = [list(s) for s in stop] if stop is not None else [[] for _ in prompts]
    pad_id = pad_id_of(tokenizer)
    eos = _eos_ids(model, tokenizer)
    device = input_device(model)
    out_all: list[list[Generation]] = []
    was_training = model.training
    model.eval()
    try:
        for prompt, budget, stop_i in zip(progress(prompts, f"sampling {n} x {len(prompts)} responses"), budgets, stops,
                                          strict=True):
            config = GenerationConfig(max_new_tokens=budget, do_sample=True, temperature=temperature, top_k=0,
                                      top_p=1.0, num_beams=1, num_return_sequences=n,
                                      eos_token_id=sorted(eos) or None, pad_token_id=pad_id)
            ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
            with torch.random.fork_rng(devices=[]), _plain_generation_config(model):
                torch.manual_seed(sample_seed(seed, prompt))
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
            new = out[:, ids.shape[1]:].tolist()
            out_all.append([finish_generation(tokenizer, list(prompt), row, budget=budget, eos=eos, stop=stop_i)
                            for row in new])
    finally:
        model.train(was_training)
    return out_all


@torch.no_grad()
def score_responses(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    *,
    top_k: int = 8,
    gather: Sequence[Sequence[Sequence[int]]] | None = None,
    batch_size: int = 8,
) -> list[TokenScores]:
    """Teacher-forced log-probs of each response given its prompt, in input order.

    ``gather[i][t]`` lists token ids whose log-probs are wanted at response position ``t`` of
    case ``i`` (the baseline's top-k ids, for a KL on the same support).
    """
    n = len(prompts)
    if len(responses) != n or (gather is not None and len(gather) != n):
        raise ValueError("prompts, responses and gather must have the same length")
    pad_id = pad_id_of(tokenizer)
    device = input_device(model)
    order = sorted(range(n), key=lambda i: len(prompts[i]) + len(responses[i]))
    results: list[TokenScores | None] = [None] * n
    was_training = model.training
    model.eval()
    try:
        for batch in progress(_batches(order, max(1, batch_size)), f"scoring {n} responses"):
            seqs = [list(prompts[i]) + list(responses[i]) for i in batch]
            ids, mask = _left_pad(seqs, pad_id)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=position_ids.to(device),
            ).logits.float()
            width = ids.shape[1]
            for row, i in enumerate(batch):
                m = len(responses[i])
                if m == 0:
                    results[i] = TokenScores([], [], [], [] if gather is None else [])
                    continue
                # logits at position p predict token p+1: response tokens sit at width-m .. width-1
                lp = torch.log_softmax(logits[row, width - m - 1 : width - 1], dim=-1)
                target = torch.tensor(list(responses[i]), device=lp.device)
                token_lp = lp.gather(1, target[:, None])[:, 0]
                k = min(top_k, lp.shape[-1])
                top = lp.topk(k, dim=-1)
                gathered: list[list[float]] = []
                if gather is not None:
                    for t, wanted in enumerate(gather[i][:m]):
                        gathered.append(lp[t, list(wanted)].tolist() if wanted else [])
                results[i] = TokenScores(
                    token_lp.tolist(), top.indices.tolist(), top.values.tolist(), gathered
                )
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]
