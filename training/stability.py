"""How fragile are the model's greedy answers? Weight noise that leaves perplexity unchanged.

Why: the gate compares greedy answers with stored baselines, so a model whose answers flip under noise
far below what any compression does makes the gate flag noise. v1 flipped 5-6 of 36 answers at 1e-2 x
rms (brief, second review). Noise: the gate's own benign family (evalsuite.gate.perturb, the noise
floor's replicates `noise:SCALE:SEED`: every weight matrix gets Gaussian noise of `scale` x its own RMS,
norms and biases untouched), the `prompts/embedded` generative cases are answered greedily exactly as the gate does
(prompt encoding, budgets and stop strings from the case files), and answers are compared with the
unperturbed model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsuite.gate.cases import Case, load_case_file
from evalsuite.gate.perturb import Perturbation, apply_perturbation
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
            with apply_perturbation(model, Perturbation("noise", scale, seed)):
                new = answers(model, tokenizer, cases)
            per_seed[seed] = [c.id for c, a, b in zip(cases, base, new, strict=True) if a != b]
        out["scales"][f"{scale:g}"] = {
            "changed_per_seed": {s: len(v) for s, v in per_seed.items()},
            "max_changed": max(len(v) for v in per_seed.values()),
            "changed_cases": sorted({c for v in per_seed.values() for c in v}),
        }
    return out
