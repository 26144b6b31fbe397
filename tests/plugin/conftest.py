"""Fixtures for the gate's tests: a tiny MoE with varied greedy text, and a damaged copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def varied_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.gate.testing import build_varied_moe

    return build_varied_moe(tmp_path_factory.mktemp("varied-moe"))


@pytest.fixture(scope="session")
def varied_moe(varied_moe_path: Path):
    from evalsuite.model.loading import load_model

    return load_model(varied_moe_path)



@pytest.fixture(autouse=True)
def _keep_library_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep modules first imported inside an in-process pytester run (torch, numpy, lm-eval, ...).

    Why: pytester drops every module an inner run imported; C extensions and torch operator
    registrations cannot be imported a second time in one process ("cannot load module more than
    once", "Only a single TORCH_LIBRARY ..."), so the next inner run would break. Only the inner runs'
    own test modules and conftests are dropped.
    """
    from _pytest.pytester import Pytester, SysModulesSnapshot

    def snapshot(self: Pytester) -> SysModulesSnapshot:
        return SysModulesSnapshot(preserve=lambda name: not name.startswith(("test_", "conftest")))

    monkeypatch.setattr(Pytester, "_Pytester__take_sys_modules_snapshot", snapshot)


# -- a tiny reasoning chat model ----------------------------------------------------------------------
#: Qwen3's chat template in miniature: `enable_thinking=False` puts an empty think block in the prompt,
#: thinking on (the default) leaves the trace to the model.
QWEN3_STYLE_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
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


def build_chat_moe(path: Path, *, trace_fraction: float = 1.0, steps: int = 150) -> Path:
    """A tiny Qwen3-MoE with a Qwen3-style chat template that learned CHAT_DATA by heart: with thinking
    on it writes `<think>\\n{trace}\\n</think>\\n\\n{answer}`, with thinking off just the answer.
    ``trace_fraction`` < 1 trains it on shortened traces (same answers): a model whose reasoning shrank."""
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    from evalsuite.model.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.add_tokens(["<think>", "</think>"])
    tok.eos_token = "<|im_end|>"
    tok.chat_template = QWEN3_STYLE_TEMPLATE
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
    model.eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def chat_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chat_moe(tmp_path_factory.mktemp("chat-moe"))


@pytest.fixture(scope="session")
def short_trace_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chat_moe(tmp_path_factory.mktemp("chat-moe-short"), trace_fraction=0.3)
