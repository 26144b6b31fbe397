"""Small checkpoints for testing the gate itself (and a user's gate setup) without the embedded model.

Why not the plain tiny model: with tied embeddings a random tiny MoE just repeats the last prompt
character, so every variant answers alike and a gate test would prove nothing. An untied, sharpened
head gives varied, prompt-dependent greedy text; `damage_experts` then stands in for an aggressive
compression (zeroed experts), so tests can check that the gate passes the original and fails the copy.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_varied_moe", "damage_experts"]


def build_varied_moe(path: str | Path, *, seed: int = 0) -> Path:
    """A tiny random Qwen3-MoE whose greedy text varies with the prompt (untied, sharpened head)."""
    import torch
    from transformers import AutoModelForCausalLM

    from evalsuite.model.tiny import build_tiny_moe

    folder = build_tiny_moe(path, seed=seed)
    model = AutoModelForCausalLM.from_pretrained(folder)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.config.tie_word_embeddings = False
        head = torch.randn(model.lm_head.weight.shape, generator=generator) * 0.5
        model.lm_head.weight = torch.nn.Parameter(head)
        for name, param in model.named_parameters():
            if "experts" in name or name.endswith("gate.weight"):
                param.mul_(3.0)
    model.save_pretrained(folder)
    return folder


def damage_experts(source: str | Path, target: str | Path, *, keep: int = 2) -> Path:
    """Copy a checkpoint with every expert but the first ``keep`` per layer zeroed (a crude prune)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    source, target = Path(source), Path(target)
    model = AutoModelForCausalLM.from_pretrained(source)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".experts." in name and param.dim() == 3:
                param[keep:] = 0
    model.save_pretrained(target)
    for extra in source.iterdir():
        if extra.name.startswith("tokenizer") or extra.name in {"special_tokens_map.json", "vocab.json"}:
            shutil.copy(extra, target / extra.name)
    return target
