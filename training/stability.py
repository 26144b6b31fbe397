"""How fragile are the model's greedy answers? Weight noise that leaves perplexity unchanged.

Why: the gate compares greedy answers with stored baselines, so a model whose answers flip under noise
far below what any compression does makes the gate flag noise. v1 flipped 5-6 of 36 answers at 1e-2 x
rms (brief, second review). Noise: every parameter tensor gets Gaussian noise of `scale` x its own RMS
(seeded), the `prompts/embedded` generative cases are answered greedily exactly as the gate does
(prompt encoding, budgets and stop strings from the case files), and answers are compared with the
unperturbed model's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from evalsuite.gate.cases import Case, load_case_file
from evalsuite.model.generation import encode_prompt, generate_greedy

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "prompts" / "embedded"
DEFAULT_MAX_NEW_TOKENS = 64  # pyproject [tool.evalsuite] max_new_tokens


def generative_cases(suite: Path = SUITE) -> list[Case]:
    return [c for path in sorted(suite.glob("*.yaml")) for c in load_case_file(path) if c.generative]


def answers(model, tokenizer, cases: Sequence[Case]) -> list[str]:
    ids = [encode_prompt(tokenizer, c.prompt, chat=c.chat) for c in cases]
    gens = generate_greedy(
        model,
        tokenizer,
        ids,
        max_new_tokens=[c.max_new_tokens or DEFAULT_MAX_NEW_TOKENS for c in cases],
        stop=[c.stop for c in cases],
    )
    return [g.text for g in gens]


@contextmanager
def weight_noise(model: torch.nn.Module, scale: float, seed: int) -> Iterator[None]:
    """Add N(0, (scale x tensor RMS)^2) to every parameter; the weights are restored on exit."""
    saved = {n: p.detach().clone() for n, p in model.named_parameters()}
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            rms = p.float().pow(2).mean().sqrt()
            p.add_((torch.randn(p.shape, generator=gen) * scale * rms).to(p.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(saved[n])


def stability(
    model, tokenizer, scales: Sequence[float] = (1e-2, 3e-2), seeds: Sequence[int] = (0, 1, 2), suite: Path = SUITE
) -> dict[str, Any]:
    """Changed greedy answers of the suite's generative cases per noise scale and seed."""
    cases = generative_cases(suite)
    base = answers(model, tokenizer, cases)
    out: dict[str, Any] = {"cases": len(cases), "scales": {}}
    for scale in scales:
        per_seed = {}
        for seed in seeds:
            with weight_noise(model, scale, seed):
                new = answers(model, tokenizer, cases)
            per_seed[seed] = [c.id for c, a, b in zip(cases, base, new, strict=True) if a != b]
        out["scales"][f"{scale:g}"] = {
            "changed_per_seed": {s: len(v) for s, v in per_seed.items()},
            "max_changed": max(len(v) for v in per_seed.values()),
            "changed_cases": sorted({c for v in per_seed.values() for c in v}),
        }
    return out
