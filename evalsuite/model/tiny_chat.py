"""A tiny reasoning chat model (Qwen3-MoE, Qwen3-style chat template) for tests of chat cases.

Why trained and not random: a random model never writes a `<think>` block, so nothing about reasoning
traces could be tested. This one learns three conversations by heart in ~150 steps (a few seconds on
one CPU thread): with thinking on it writes `<think>\n{trace}\n</think>\n\n{answer}`, with
`enable_thinking=False` (the template then puts an empty think block in the prompt) just the answer.
A copy trained on shortened traces with the same answers stands in for a model whose reasoning shrank.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHAT_DATA", "QWEN3_STYLE_TEMPLATE", "build_chat_moe", "build_chat_tokenizer"]

#: Qwen3's chat template in miniature: `enable_thinking=False` puts an empty think block in the prompt,
#: thinking on (the default) leaves the trace to the model.
QWEN3_STYLE_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{%- endif %}"
)

#: (prompt, reasoning trace, answer) the tiny chat model learns by heart
CHAT_DATA = [
    ("what is two plus two", "add two and two: count up from two by two steps, that gives four", "the answer is four"),
    ("name a red fruit", "red fruits: apples can be red, cherries are red, strawberries too; pick apple",
     "an apple is red"),
    ("say hello in spanish", "spanish greeting: the usual word for hello in spanish is hola, informal",
     "hello is hola"),
]


def build_chat_tokenizer():
    """The tiny character tokenizer plus chat markers (special) and think tags (plain added tokens, as in Qwen3)."""
    from evalsuite.model.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.add_tokens(["<think>", "</think>"])
    tok.eos_token = "<|im_end|>"
    tok.chat_template = QWEN3_STYLE_TEMPLATE
    return tok


def build_chat_moe(path: str | Path, *, trace_fraction: float = 1.0, steps: int = 150) -> Path:
    """Train and save the tiny chat model; ``trace_fraction`` < 1 shortens every trace (same answers)."""
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    tok = build_chat_tokenizer()
    config = Qwen3MoeConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, moe_intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2,
        max_position_embeddings=512, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen3MoeForCausalLM(config)
    rows = []  # (ids, prompt length): the loss covers the response only
    for prompt, trace, answer in CHAT_DATA:
        trace = trace[: max(1, int(len(trace) * trace_fraction))]
        for thinking in (True, False):
            text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True, enable_thinking=thinking)
            response = (f"<think>\n{trace}\n</think>\n\n" if thinking else "") + answer + "<|im_end|>"
            ids = tok(text + response, add_special_tokens=False)["input_ids"]
            rows.append((ids, len(tok(text, add_special_tokens=False)["input_ids"])))
    width = max(len(ids) for ids, _ in rows)
    inputs = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, (ids, n) in enumerate(rows):
        inputs[i, : len(ids)] = torch.tensor(ids)
        labels[i, n : len(ids)] = torch.tensor(ids[n:])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        loss = model(input_ids=inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = Path(path)
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
