"""Do the experts specialise, and how is the load spread? Measured with evalsuite's routing statistics.

Routing comes from `evalsuite.model.routing.collect_routing_stats` (the actual top-k decisions, read
at each layer's `experts` module), the load profile from `evalsuite.compression.profile` (Gini, entropy
ratio, dead experts, and dead experts as a function of calibration size, the seeds' 5-vs-100-prompt
effect). Specialisation: each language's held-out text is cut into windows, split into two halves,
and the most-used experts of each half are compared: within one language (half A vs half B) the sets
should overlap more than across languages.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import jensenshannon

from evalsuite.compression.profile import dead_curve_model, routing_profile
from evalsuite.model.routing import collect_routing_stats
from training.measure import LANGS, TRANS, held


def domain_texts(limit: int | None = None) -> dict[str, list[str]]:
    texts = {f"text-{lg}": [x["text"] for x in held(f"text-{lg}", limit)] for lg in [*LANGS, "code"]}
    texts["arithmetic"] = [x["prompt"] + x["worked"] for x in held("arithmetic", limit)]
    texts["code-tasks"] = [x["prompt"] + x["canonical_solution"] for x in held("code_tasks", limit)]
    texts["translation"] = [
        x["prompt"] + " " + x["target"] for lg in TRANS for x in held(f"translation-en-{lg}", limit)
    ]
    return texts


def windows(tokenizer, texts: list[str], ctx: int = 256) -> list[list[int]]:
    """The texts as one stream (end-of-text between them), cut into ctx-token windows."""
    stream: list[int] = []
    for t in texts:
        stream += tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return [stream[i : i + ctx] for i in range(0, len(stream) - 16, ctx)]


def counts(model, wins: list[list[int]]) -> np.ndarray:
    """[layers, experts] top-k selections over the windows."""
    stats = collect_routing_stats(model, [(torch.tensor([w]), None) for w in wins], output_samples=0)
    return stats.counts.numpy()


def top_set(row: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-row, kind="stable")[:k].tolist())


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b)


def specialisation(model, tokenizer, limit: int | None = None) -> dict[str, Any]:
    """Per-domain routing profiles, within- vs across-language overlap, load profile, dead-expert curve."""
    halves, profiles = {}, {}
    for domain, texts in domain_texts(limit).items():
        wins = windows(tokenizer, texts)
        a, b = counts(model, wins[0::2]), counts(model, wins[1::2] or wins[0::2])
        halves[domain] = (a, b)
        profiles[domain] = ((a + b) / (a + b).sum(axis=1, keepdims=True)).round(4).tolist()
    layers, experts = next(iter(halves.values()))[0].shape
    k = max(int(model.config.num_experts_per_tok), experts // 4)
    langs = [f"text-{lg}" for lg in LANGS]
    within, across, js_within, js_across = [], [], [], []
    for layer in range(layers):
        for d in langs:
            a, b = halves[d]
            within.append(jaccard(top_set(a[layer], k), top_set(b[layer], k)))
            js_within.append(jensenshannon(a[layer] + 1e-9, b[layer] + 1e-9, base=2) ** 2)
        for d1, d2 in itertools.combinations(langs, 2):
            a, b = halves[d1][0][layer], halves[d2][1][layer]
            across.append(jaccard(top_set(a, k), top_set(b, k)))
            js_across.append(jensenshannon(a + 1e-9, b + 1e-9, base=2) ** 2)
    total = sum(a + b for a, b in halves.values())
    profile = routing_profile(total, tokens=None, calibration="all held-out domains")
    return {
        "top_set_size": k,
        "overlap_jaccard": {
            "within_language": round(float(np.mean(within)), 3),
            "across_languages": round(float(np.mean(across)), 3),
        },
        "js_divergence_bits": {
            "within_language": round(float(np.mean(js_within)), 4),
            "across_languages": round(float(np.mean(js_across)), 4),
        },
        "profile": profile.to_dict(),
        "dead_vs_calibration": dead_curve_model(model, tokenizer, "diverse"),
        "domain_profiles": profiles,
    }
