"""Capabilities of a model on the shipped held-out data, measured with evalsuite's own functions.

Generation is `evalsuite.model.generation.generate_greedy` (what the gate runs: greedy, batched, prompts
encoded by `encode_prompt`), scoring is `score_responses`, language judging is the gate's
`check_language` / `detect_language`, chrF is `evalsuite.metrics.translation`, code runs in the sandbox
(`count_passing`) and pass@k is `evalsuite.metrics.passk`. Nothing here re-implements a metric, so a
number in the model card means what the same check means in the gate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalsuite.compression.calibration import heldout_dir, read_jsonl
from evalsuite.metrics.language import check_language, detect_language
from evalsuite.metrics.passk import mean_pass_at_k
from evalsuite.metrics.perplexity import perplexity
from evalsuite.metrics.translation import corpus_chrf
from evalsuite.model.generation import encode_prompt, generate_greedy, score_responses
from training.data.heldout import mid_sentence

LANGS = ["en", "es", "fr", "de", "ru", "zh", "ja"]
TRANS = ["es", "fr", "de", "ru", "zh", "ja"]


def held(name: str, limit: int | None = None) -> list[dict[str, Any]]:
    return read_jsonl(heldout_dir() / f"{name}.jsonl")[:limit]


@dataclass
class Subject:
    """A model and its tokenizer, with the two operations every measurement needs."""

    model: Any
    tokenizer: Any
    batch_size: int = 8

    def greedy(self, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        gens = generate_greedy(
            self.model,
            self.tokenizer,
            ids,
            max_new_tokens=max_new_tokens,
            stop=[list(stop)] * len(ids),
            batch_size=self.batch_size,
        )
        return [g.text for g in gens]

    def split(self, context: str, target: str) -> tuple[list[int], list[int]]:
        """Tokenize context+target jointly (BPE merges across the boundary, e.g. a newline with the next
        line's indentation) and split at the longest common prefix with the context alone."""
        full = self.tokenizer(context + target, add_special_tokens=False)["input_ids"]
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        k = 0
        while k < min(len(full), len(ctx)) and full[k] == ctx[k]:
            k += 1
        return full[: min(k, len(full) - 1)], full[min(k, len(full) - 1) :]

    def logprobs(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[float]:
        """Sum of log p(target | <|endoftext|> + context): the end-of-text token marks a document start,
        as in training, and gives the first target token something to be predicted from."""
        eos = self.tokenizer.eos_token_id
        scores = score_responses(
            self.model,
            self.tokenizer,
            [[eos, *c] for c, _ in pairs],
            [t for _, t in pairs],
            top_k=1,
            batch_size=self.batch_size,
        )
        return [sum(s.token_logprobs) for s in scores]

    def conditional_ppl(self, pairs: Sequence[tuple[list[int], list[int]]]) -> dict[str, float]:
        lps = self.logprobs(pairs)
        n = sum(len(t) for _, t in pairs)
        return {"ppl": round(perplexity(-sum(lps), n), 3), "tokens": n, "items": len(pairs)}


def perplexities(s: Subject, limit: int | None = None) -> dict[str, dict[str, float]]:
    """Held-out running text per language and code; targets given prompts for the task formats."""
    out = {}
    for name in [f"text-{lg}" for lg in LANGS] + ["text-code"]:
        pairs = [([], s.tokenizer(x["text"], add_special_tokens=False)["input_ids"][:511]) for x in held(name, limit)]
        out[name] = s.conditional_ppl(pairs)
    for lg in TRANS:
        rows = held(f"translation-en-{lg}", limit)
        out[f"translation-en-{lg} (target|prompt)"] = s.conditional_ppl(
            [s.split(x["prompt"], " " + x["target"] + "\n") for x in rows]
        )
    out["arithmetic (worked|prompt)"] = s.conditional_ppl(
        [s.split(x["prompt"], x["worked"]) for x in held("arithmetic", limit)]
    )
    out["code tasks (body|prompt)"] = s.conditional_ppl(
        [s.split(x["prompt"], x["canonical_solution"]) for x in held("code_tasks", limit)]
    )
    return out


def continuation_verdict(text: str, lang: str) -> str:
    """`lang` when the gate's `check_language` passes the continuation; otherwise what it reads as instead:
    another language, "short" (too little text to judge) or "mixed" (read as `lang` as a whole, but a
    sentence or a run of words in it is not)."""
    guess = detect_language(text)
    if guess is None:
        return "short"
    if check_language(text, expected=lang).passed:
        return lang
    return "mixed" if guess.lang == lang else guess.lang


def language_consistency(s: Subject, limit: int | None = None) -> tuple[dict[str, dict], dict[str, tuple]]:
    """Share of held-out prompts (cut mid-sentence: `training.data.heldout.mid_sentence`) whose 40-token greedy
    continuation the gate's `check_language` passes, and how often the complete-sentence prompt is answered
    by ending the text.

    A continuation too short for the detector to judge counts as a failure ("short"): an empty answer
    is not consistent, it is missing."""
    out, samples = {}, {}
    for lg in LANGS:
        rows = held(f"prompts-{lg}", limit)
        prompts = [mid_sentence(x, lg)[0] for x in rows]
        gens = s.greedy(prompts, 40)
        wrong = [v for v in (continuation_verdict(g, lg) for g in gens) if v != lg]
        ended = sum(detect_language(g) is None for g in s.greedy([x["prompt"] for x in rows], 40))
        out[lg] = {
            "rate": round(1 - len(wrong) / len(rows), 3),
            "n": len(rows),
            "confusions": {k: wrong.count(k) for k in sorted(set(wrong))},
            "full_sentence_too_short": round(ended / len(rows), 3),
        }
        samples[f"continuation-{lg}"] = (prompts[0], gens[0])
    return out, samples


def translation(s: Subject, limit: int | None = None) -> tuple[dict[str, dict], dict[str, tuple]]:
    """Corpus chrF of the greedy first line vs the reference, next to copying the English source."""
    out, samples = {}, {}
    for lg in TRANS:
        rows = held(f"translation-en-{lg}", limit)
        hyps = [h.strip() for h in s.greedy([x["prompt"] for x in rows], 40, stop=["\n"])]
        refs = [x["target"] for x in rows]
        out[lg] = {
            "chrF": round(corpus_chrf(hyps, refs), 1),
            "copy_source_chrF": round(corpus_chrf([x["source"] for x in rows], refs), 1),
            "exact": round(sum(h == r for h, r in zip(hyps, refs, strict=True)) / len(rows), 3),
            "n": len(rows),
        }
        samples[f"translation-{lg}"] = (rows[0]["prompt"], f"{hyps[0]}   [reference: {refs[0]}]")
    return out, samples


def arithmetic(s: Subject, limit: int | None = None) -> tuple[dict[str, Any], dict[str, tuple]]:
    """Exact match of the `answer N` line (and of the whole worked solution) under greedy decoding."""
    rows = held("arithmetic", limit)
    gens = s.greedy([x["prompt"] for x in rows], 110, stop=["\nQ:"])
    hits = {"+": [0, 0], "-": [0, 0]}
    exact = worked = 0
    for x, g in zip(rows, gens, strict=True):
        m = re.search(r"answer (-?\d+)", g)
        hit = bool(m and m.group(1) == x["answer"])
        exact += hit
        worked += g.strip() == x["worked"].strip()
        op = "+" if "+" in x["prompt"] else "-"
        hits[op][0] += hit
        hits[op][1] += 1
    out = {
        "exact_match": round(exact / len(rows), 3),
        "worked_steps_exact": round(worked / len(rows), 3),
        "n": len(rows),
        "add": "{}/{}".format(*hits["+"]),
        "sub": "{}/{}".format(*hits["-"]),
    }
    return out, {"arithmetic": (rows[0]["prompt"], gens[0])}


def code(s: Subject, limit: int | None = None) -> tuple[dict[str, Any], dict[str, tuple]]:
    """Greedy pass@1 on the held-out tasks; prompts end before the docstring's newline and answers stop
    where the gate's code cases stop them (prompts/embedded/code.yaml)."""
    from evalsuite.sandbox.runner import count_passing

    rows = held("code_tasks", limit)
    prompts = [x["prompt"].rstrip("\n") for x in rows]
    gens = s.greedy(prompts, 64, stop=["\ndef ", "\n\n"])
    counts = [
        count_passing([g], p, "\n".join(x["tests"]), x["entry_point"])[:2]
        for x, p, g in zip(rows, prompts, gens, strict=True)
    ]
    solved = {x["family"] for x, (_, c) in zip(rows, counts, strict=True) if c}
    out = {
        "greedy_pass@1": round(mean_pass_at_k(counts, 1), 3),
        "n_tasks": len(rows),
        "families_failed": sorted({x["family"] for x in rows} - solved),
    }
    return out, {"code": (prompts[0], gens[0])}


def multiple_choice(s: Subject, limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Per shipped MC set: which choice has the highest total log-probability, per item."""
    out = {}
    for path in sorted(heldout_dir().glob("mc-*.jsonl")):
        rows = held(path.stem, limit)
        pairs = [s.split(x["context"], ch) for x in rows for ch in x["choices"]]
        lps = iter(s.logprobs(pairs))
        correct = []
        for x in rows:
            scores = [next(lps) for _ in x["choices"]]
            correct.append(max(range(len(scores)), key=scores.__getitem__) == x["gold"])
        out[path.stem] = {
            "acc": round(sum(correct) / len(rows), 3),
            "n": len(rows),
            "correct": correct,
            "chance": round(sum(1 / len(x["choices"]) for x in rows) / len(rows), 3),
        }
    return out
