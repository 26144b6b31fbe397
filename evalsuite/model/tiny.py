"""Tiny random MoE checkpoints with an offline tokenizer, for tests of evalsuite and of users' suites.

They load in milliseconds and need no download, so plugin and gate tests can run a real
`from_pretrained` round trip without the embedded model.
"""

from __future__ import annotations

from pathlib import Path

import torch

_ALPHABET = list(
    "abcdefghijklmnopqrstuvwxyzáéíóúñçàèüöäßабвгдежзийклмнопрстуфхцчшщыьэюя我你他是的中文日本語0123456789"
)
_SPECIAL = ["<pad>", "<eos>", "<unk>"]


def build_tiny_tokenizer():
    """A character-level fast tokenizer over a small multilingual alphabet plus common punctuation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = _SPECIAL + _ALPHABET + list(" .,:;!?'\"()[]{}=+-*/<>_#\n") + [c.upper() for c in _ALPHABET]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.padding_side = "left"
    return tokenizer


def build_tiny_moe(
    path: str | Path,
    *,
    hidden_size: int = 32,
    layers: int = 2,
    experts: int = 8,
    top_k: int = 2,
    seed: int = 0,
) -> Path:
    """Write a random Qwen3-MoE checkpoint (safetensors) and its tokenizer to `path`."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = Qwen3MoeConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        moe_intermediate_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
        num_experts=experts,
        num_experts_per_tok=top_k,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen3MoeForCausalLM(config).eval()
    folder = Path(path)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
