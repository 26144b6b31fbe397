"""Compare compression recipes on a model: held-out perplexity, agreement with the original, n-gram
diversity of greedy generations. Writes docs/COMPRESSION_RESULTS.md.

Questions it answers (from the seeds):
- does REAP hurt held-out perplexity less than activation frequency at 25% and 50% (seed 002)?
- does merging lower the n-gram diversity of generations more than pruning at equal expert count?
- how many experts look dead with 5 vs 100 calibration prompts (seed 001)?

Calibration uses the calibration half of the shipped held-out data; perplexity and generation prompts
use the evaluation half (`heldout_split`), so nothing is scored on text the criteria saw.

    nice -n 10 .venv/bin/python benchmarks/compare_recipes.py            # embedded model, full matrix
    nice -n 10 .venv/bin/python benchmarks/compare_recipes.py --quick    # a few recipes, smaller budgets
    nice -n 10 .venv/bin/python benchmarks/compare_recipes.py --model path/to/checkpoint --out /tmp/r.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from evalsuite.compression import (
    calibration_batches,
    compress,
    dead_curve_model,
    default_stats_cache,
    parse_recipe,
    profile_model,
)
from evalsuite.compression.calibration import LANGUAGES, heldout_dir, heldout_split
from evalsuite.errors import InvalidRecipeError
from evalsuite.io import read_jsonl
from evalsuite.metrics.diversity import distinct_n
from evalsuite.model.generation import encode_prompt, generate_greedy
from evalsuite.model.loading import configure_torch, load_model
from evalsuite.model.moe import MoEModel

ROOT = Path(__file__).resolve().parents[1]
ORACLE_RHO: dict[str, float] = {}  # criterion -> mean Spearman rho with single-expert damage (filled by oracle)
PRUNE = ["frequency", "soft-count", "gate-sum", "ean", "reap", "reap-sum", "importance", "random"]
PRUNE_EXTRA = [
    "random,seed=1",
    "random,seed=2",
    "reap|,scope=global",
    "reap|,schedule=iterative",
    "frequency|,scope=global",
    "frequency|,apply=zero",
    "reap|,apply=remove",
]
MERGE = [
    "merge-cka-uniform",
    "merge-cosine-uniform",
    "merge-weights-uniform",
    "merge-surrogate-uniform",
    "merge-cka-freq",
    "merge-cka-max",
]
MERGE_EXTRA = [
    "merge-cka-uniform|,grouping=hc",
    "merge-cka-uniform|,grouping=spectral",
    "merge-cka-uniform|,router=keep",
]
QUICK_PRUNE = ["frequency", "reap", "random"]
QUICK_MERGE = ["merge-cka-uniform", "merge-weights-uniform"]


@dataclass
class Row:
    recipe: str
    kind: str
    kept: float  # experts kept per layer (mean over layers: global selection varies per layer)
    ppl: float
    agree: float
    d2: float
    d3: float
    rel_d2: float
    seconds: float
    hash: str = ""
    removed: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[str, list[list[int]]] = field(default_factory=dict)
    seq: list[tuple[float, int]] = field(default_factory=list)


@torch.no_grad()
def evaluate_nll(
    model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[float, list, list[tuple[float, int]]]:
    """Perplexity over the real (unpadded) next-token positions, the argmax prediction per position, and
    per sequence (summed NLL, token count) for paired comparisons between variants."""
    total, count, argmaxes, per_seq = 0.0, 0, [], []
    for ids, mask in batches:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = ids[:, 1:]
        valid = (mask[:, 1:] * mask[:, :-1]).bool()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        total += float(nll[valid].sum())
        count += int(valid.sum())
        argmaxes.append(logits.argmax(-1)[valid])
        per_seq += [(float(nll[r][valid[r]].sum()), int(valid[r].sum())) for r in range(ids.shape[0])]
    return math.exp(total / max(1, count)), argmaxes, per_seq


def paired_comparison(a: list[tuple[float, int]], b: list[tuple[float, int]], draws: int = 2000) -> str:
    """How often sequence-level NLL of `a` beats `b`, and a paired bootstrap 95% interval of the ratio of
    perplexities ppl(a)/ppl(b) over held-out sequences (seeded)."""
    wins = sum(x[0] < y[0] for x, y in zip(a, b, strict=True))
    gen = torch.Generator().manual_seed(0)
    na = torch.tensor([x[0] for x in a], dtype=torch.float64)
    nb = torch.tensor([y[0] for y in b], dtype=torch.float64)
    tokens = torch.tensor([x[1] for x in a], dtype=torch.float64)
    idx = torch.randint(0, len(a), (draws, len(a)), generator=gen)
    ratio = torch.exp((na[idx].sum(1) - nb[idx].sum(1)) / tokens[idx].sum(1))
    lo, hi = torch.quantile(ratio, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return f"lower NLL on {wins}/{len(a)} sequences; ppl ratio 95% CI [{lo:.3f}, {hi:.3f}]"


def generation_prompts(tokenizer: Any, n: int) -> list[list[int]]:
    """Evaluation-half prompts, round robin over languages."""
    sources = []
    for lang in LANGUAGES:
        path = heldout_dir() / f"prompts-{lang}.jsonl"
        if path.is_file():
            rows = heldout_split(read_jsonl(path), "eval")
            if rows:
                sources.append([r["prompt"] for r in rows])
    prompts: list[str] = []
    for i in range(max(map(len, sources), default=0)):
        prompts.extend(src[i] for src in sources if i < len(src))
    return [encode_prompt(tokenizer, p) for p in prompts[:n]]


def diversity(texts: list[str]) -> tuple[float, float]:
    """Mean distinct-2 and distinct-3 over responses (metrics.diversity, word/char tokens)."""
    d2 = [distinct_n(t, 2) for t in texts]
    d3 = [distinct_n(t, 3) for t in texts]
    return statistics.fmean(d2) if d2 else 0.0, statistics.fmean(d3) if d3 else 0.0


def rel_diversity(texts: list[str], base: list[str]) -> float:
    """Mean over prompts of distinct-2(variant) / distinct-2(original), as the gate's diversity check."""
    ratios = []
    for new, old in zip(texts, base, strict=True):
        d_old = distinct_n(old, 2)
        if d_old > 0:
            ratios.append(distinct_n(new, 2) / d_old)
    return statistics.fmean(ratios) if ratios else 1.0


def expand(names: list[str], amount: str, calibration: str) -> list[str]:
    """Recipe short forms for `names` at `amount` (`name|,opts` / `name,opts` carry options)."""
    if calibration != "diverse":
        amount = f"{amount}@{calibration}"
    out = []
    for name in names:
        if "|" in name:
            method, opts = name.split("|", 1)
            out.append(f"{method}:{amount}{opts}")
        elif "," in name:
            method, opts = name.split(",", 1)
            out.append(f"{method}:{amount},{opts}")
        else:
            out.append(f"{name}:{amount}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--calibration", default="diverse")
    parser.add_argument("--calib-tokens", type=int, default=8192)
    parser.add_argument("--eval-tokens", type=int, default=8192)
    parser.add_argument("--gen-prompts", type=int, default=24)
    parser.add_argument("--gen-tokens", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="few recipes and small budgets (a smoke run)")
    parser.add_argument("--recipes", nargs="+", default=None, help="recipes to compare instead of the default matrix")
    parser.add_argument("--out", default=str(ROOT / "docs" / "COMPRESSION_RESULTS.md"))
    parser.add_argument("--json", default=None, help="also write rows + records as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.calib_tokens, args.eval_tokens, args.gen_prompts, args.gen_tokens = 2048, 2048, 8, 24

    configure_torch(1)
    started = time.perf_counter()
    loaded = load_model(args.model)
    model, tok = loaded.model.eval(), loaded.tokenizer
    moe = MoEModel(model)
    experts = moe.blocks[0].num_experts
    top_k = moe.blocks[0].top_k
    print(
        f"model {loaded.path} ({loaded.short_fingerprint}): {len(moe.blocks)} MoE layers, {experts} experts, "
        f"top-{top_k}",
        flush=True,
    )

    calib = calibration_batches(args.calibration, tok, token_budget=args.calib_tokens)
    evaluation = calibration_batches(args.calibration, tok, token_budget=args.eval_tokens, part="eval")
    eval_batches = list(evaluation)
    prompts = generation_prompts(tok, args.gen_prompts)
    print(
        f"calibration {calib.tokens} tokens / {calib.num_texts} texts; eval {evaluation.tokens} tokens; "
        f"{len(prompts)} generation prompts",
        flush=True,
    )

    base_ppl, base_argmax, base_seq = evaluate_nll(model, eval_batches)
    base_texts = [g.text for g in generate_greedy(model, tok, prompts, max_new_tokens=args.gen_tokens)]
    b2, b3 = diversity(base_texts)
    rows = [Row("original", "-", experts, base_ppl, 1.0, b2, b3, 1.0, 0.0, seq=base_seq)]
    print(f"original: ppl {base_ppl:.3f} distinct-2 {b2:.3f}", flush=True)

    prof = profile_model(model, tok, args.calibration, token_budget=args.calib_tokens)
    curve = dead_curve_model(
        model, tok, args.calibration, prompt_counts=(5, 10, 25, 50, 100), extra_thresholds=(0.0, 0.25)
    )

    recipes: list[str] = []
    for ratio in args.ratios:
        keep = experts - int(ratio * experts + 0.5)
        if args.quick:
            recipes += expand(QUICK_PRUNE, f"{ratio:g}", args.calibration) + expand(
                QUICK_MERGE, str(keep), args.calibration
            )
        else:
            recipes += expand(PRUNE + PRUNE_EXTRA, f"{ratio:g}", args.calibration) + expand(
                MERGE + MERGE_EXTRA, str(keep), args.calibration
            )

    if args.recipes:
        recipes = list(args.recipes)
    for text in recipes:
        recipe = parse_recipe(text)
        t0 = time.perf_counter()
        with compress(model, tok, recipe, calibration=calib) as result:
            ppl, argmax, seq = evaluate_nll(result.model, eval_batches)
            agree = float(torch.cat([a == b for a, b in zip(argmax, base_argmax, strict=True)]).float().mean())
            texts = [g.text for g in generate_greedy(result.model, tok, prompts, max_new_tokens=args.gen_tokens)]
            record = result.record
        d2, d3 = diversity(texts)
        kept = experts - statistics.fmean(len(r["removed"]) for r in record["layers"])
        row = Row(
            recipe.short,
            recipe.kind,
            kept,
            ppl,
            agree,
            d2,
            d3,
            rel_diversity(texts, base_texts),
            time.perf_counter() - t0,
            recipe.hash,
            {str(r["layer"]): r["removed"] for r in record["layers"]},
            {str(r["layer"]): r["groups"] for r in record["layers"] if "groups" in r},
            seq,
        )
        rows.append(row)
        print(
            f"{row.recipe:45s} ppl {ppl:9.3f} agree {agree:.3f} d2 {d2:.3f} rel {row.rel_d2:.3f} ({row.seconds:.1f}s)",
            flush=True,
        )

    domain = calibration_domain(model, tok, args)
    oracle = oracle_section(model, tok, calib, eval_batches, args) if not args.quick else []

    # the masked variant must be gone: the original's perplexity is back
    after_ppl = evaluate_nll(model, eval_batches)[0]
    assert abs(after_ppl - base_ppl) < 1e-6 * base_ppl, (after_ppl, base_ppl)

    write_markdown(
        Path(args.out),
        args,
        loaded,
        moe,
        rows,
        prof,
        domain,
        oracle,
        curve,
        calib,
        evaluation,
        len(prompts),
        time.perf_counter() - started,
    )
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    print(f"wrote {args.out}; stats cache hits {default_stats_cache.hits}, misses {default_stats_cache.misses}")


def oracle_section(model: torch.nn.Module, tok: Any, calib: Any, eval_batches: list, args: Any) -> list[str]:
    """Ground truth for the criteria: the held-out damage of masking each expert alone.

    For every (layer, expert): mean NLL increase on the first quarter of the evaluation tokens when only
    that expert is masked. Each criterion's per-layer scores are rank-correlated (Spearman) with that
    damage; a criterion that predicts damage well has a correlation near +1."""
    from scipy.stats import spearmanr

    from evalsuite.compression import criteria

    subset = eval_batches[: max(1, len(eval_batches) // 4)]

    def mean_nll(m: torch.nn.Module) -> float:
        per = evaluate_nll(m, subset)[2]
        return sum(x for x, _ in per) / max(1, sum(n for _, n in per))

    moe = MoEModel(model)
    base = mean_nll(model)
    damage = torch.zeros(len(moe.blocks), max(b.num_experts for b in moe.blocks), dtype=torch.float64)
    for row, block in enumerate(moe.blocks):
        for expert in range(block.num_experts):
            with moe.mask({block.layer: [expert]}):
                damage[row, expert] = mean_nll(model) - base
    stats = default_stats_cache.get_or_collect(model, calib)
    lines = [
        "Held-out NLL increase (nats/token) when one expert is masked, per layer (columns = experts):",
        "",
        "```",
        *[
            f"layer {block.layer}: " + " ".join(f"{float(d):+.4f}" for d in damage[row, : block.num_experts])
            for row, block in enumerate(moe.blocks)
        ],
        "```",
        "",
        "| criterion | mean Spearman rho with single-expert damage (over layers) | per layer |",
        "|---|---:|---|",
    ]
    for name in ("frequency", "soft-count", "gate-sum", "ean", "reap", "reap-sum", "importance", "random"):
        scores = criteria.score(name, stats)
        rhos = []
        for row, block in enumerate(moe.blocks):
            rho = spearmanr(scores[row, : block.num_experts].numpy(), damage[row, : block.num_experts].numpy())[0]
            rhos.append(0.0 if rho != rho else float(rho))  # NaN (constant scores) -> 0
        lines.append(f"| `{name}` | {statistics.fmean(rhos):+.2f} | {' '.join(f'{r:+.2f}' for r in rhos)} |")
        ORACLE_RHO[name] = statistics.fmean(rhos)
    oracle_rows = []
    for ratio in args.ratios:
        drop = {}
        for row, block in enumerate(moe.blocks):
            n = int(ratio * block.num_experts + 0.5)
            drop[block.layer] = sorted(range(block.num_experts), key=lambda e, r=row: float(damage[r, e]))[:n]
        with moe.mask(drop):
            ppl = evaluate_nll(model, eval_batches)[0]
        oracle_rows.append(
            f"- oracle at {ratio:.0%} (mask the experts whose single removal hurt least): "
            f"held-out perplexity {ppl:.2f}; removed {drop}"
        )
    return lines + ["", *oracle_rows]


def calibration_domain(model: torch.nn.Module, tok: Any, args: Any) -> list[str]:
    """English-only vs diverse calibration (seed 002: the calibration domain decides what survives).

    Per criterion and ratio: perplexity on the English and on the non-English evaluation halves, and in
    how many layers the removed experts differ between the two calibrations."""
    budget = max(512, args.eval_tokens // 8)
    evals = {}
    for lang in LANGUAGES:
        try:
            evals[lang] = list(calibration_batches(lang, tok, token_budget=budget, part="eval"))
        except InvalidRecipeError:
            continue
    if "en" not in evals or len(evals) < 2:
        return ["(skipped: needs English and other-language evaluation text)"]
    calib_sets = {
        name: calibration_batches(name, tok, token_budget=args.calib_tokens) for name in ("english", "diverse")
    }

    def ppl_split(m: torch.nn.Module) -> tuple[float, float]:
        en = evaluate_nll(m, evals["en"])[0]
        others = [evaluate_nll(m, b)[0] for lang, b in evals.items() if lang != "en"]
        return en, statistics.fmean(others)

    base_en, base_other = ppl_split(model)
    lines = [
        "| recipe | calibration | PPL English | PPL other languages (mean) | layers whose removed set differs |",
        "|---|---|---:|---:|---:|",
        f"| original | - | {base_en:.2f} | {base_other:.2f} | - |",
    ]
    methods = ["reap", "frequency"] if not args.quick else ["reap"]
    for method in methods:
        for ratio in args.ratios:
            removed = {}
            for name, calib in calib_sets.items():
                text = f"{method}:{ratio:g}@{name}"
                with compress(model, tok, text, calibration=calib) as result:
                    en, other = ppl_split(result.model)
                    removed[name] = [sorted(r["removed"]) for r in result.record["layers"]]
                diff = sum(a != b for a, b in zip(*removed.values(), strict=True)) if len(removed) == 2 else "-"
                lines.append(
                    f"| `{method}:{ratio:g}` | {name} | {en:.2f} | {other:.2f} | "
                    f"{f'{diff}/{len(removed[name])}' if name == 'diverse' else ''} |"
                )
    return lines


def _find(rows: list[Row], recipe: str) -> Row | None:
    return next((r for r in rows if r.recipe == recipe), None)


def findings(rows: list[Row], ratios: list[float], experts: int) -> list[str]:
    out = []
    for ratio in ratios:
        reap, freq = _find(rows, f"reap:{ratio:g}"), _find(rows, f"frequency:{ratio:g}")
        if reap and freq:
            verdict = "lower (better)" if reap.ppl < freq.ppl else "NOT lower"
            out.append(
                f"- {ratio:.0%} pruned: REAP perplexity {reap.ppl:.2f} vs activation frequency "
                f"{freq.ppl:.2f} -> REAP is {verdict}; REAP has {paired_comparison(reap.seq, freq.seq)}."
            )
            randoms = [r for r in rows if r.recipe.startswith(f"random:{ratio:g}")]
            if randoms:
                out.append(
                    f"  Random pruning at {ratio:.0%} over {len(randoms)} seeds: perplexity "
                    f"{min(r.ppl for r in randoms):.2f}-{max(r.ppl for r in randoms):.2f} (the spread shows how much "
                    "the choice of experts alone moves perplexity)."
                )
        keep = experts - int(ratio * experts + 0.5)
        # zeroed experts still take router slots: not an expert-count reduction, so left out here
        prunes = [r for r in rows if r.kind == "prune" and r.kept == keep and "apply=zero" not in r.recipe]
        merges = [r for r in rows if r.kind == "merge" and r.kept == keep]
        if prunes and merges:
            p2 = statistics.fmean(r.rel_d2 for r in prunes)
            m2 = statistics.fmean(r.rel_d2 for r in merges)
            best_p = max(prunes, key=lambda r: r.rel_d2)
            verdict = "lower" if m2 < p2 else "NOT lower"
            out.append(
                f"- {keep} of {experts} experts kept: mean relative distinct-2 of merges {m2:.3f} vs "
                f"prunes {p2:.3f} -> merging's diversity is {verdict} (best prune {best_p.recipe} "
                f"{best_p.rel_d2:.3f}; merges range {min(r.rel_d2 for r in merges):.3f}-"
                f"{max(r.rel_d2 for r in merges):.3f})."
            )
            pp = statistics.fmean(r.ppl for r in prunes)
            mp = statistics.fmean(r.ppl for r in merges)
            reap = _find(rows, f"reap:{ratio:g}")
            best_m = min(merges, key=lambda r: r.ppl)
            out.append(
                f"  Perplexity at that count: merges mean {mp:.2f} (best {best_m.recipe} {best_m.ppl:.2f}), "
                f"prunes mean {pp:.2f}" + (f", REAP {reap.ppl:.2f} (rel. d2 {reap.rel_d2:.3f})." if reap else ".")
            )
    if ORACLE_RHO:
        ranked = sorted(ORACLE_RHO.items(), key=lambda kv: -kv[1])
        line = (
            "- Why: rank correlation of each criterion with the measured held-out damage of removing each expert "
            "alone (see the oracle section): " + ", ".join(f"{k} {v:+.2f}" for k, v in ranked) + ". "
        )
        if ORACLE_RHO.get("reap", 0.0) < ORACLE_RHO.get("frequency", 0.0):
            line += (
                "REAP ranks experts worse than frequency here. Its conditional mean ignores how often an expert "
                f"is used; on this model ({experts} experts per layer, load-balancing loss) an often-used "
                "expert with a small per-token contribution still carries a large share of the traffic, which "
                "REAP's derivation (for 64-512 fine-grained experts) does not weigh."
            )
        else:
            line += "REAP ranks experts at least as well as frequency here, in line with seed 002."
        out.append(line)
    out.append(
        "- Reading distinct-n: it falls when a model loops and rises when it degenerates into noise, so a merge "
        "with rel. d2 > 1 and much higher perplexity / lower top-1 agreement is not 'more diverse' in a good way."
    )
    return out


def write_markdown(
    path: Path,
    args: Any,
    loaded: Any,
    moe: Any,
    rows: list[Row],
    prof: Any,
    domain: list[str],
    oracle: list[str],
    curve: list,
    calib: Any,
    evaluation: Any,
    n_prompts: int,
    seconds: float,
) -> None:
    experts = moe.blocks[0].num_experts
    lines = [
        "# Compression results",
        "",
        "Produced by `benchmarks/compare_recipes.py` (rerun: `nice -n 10 .venv/bin/python "
        "benchmarks/compare_recipes.py`). Do not edit by hand.",
        "",
        f"- model: `{loaded.path.name}` fingerprint `{loaded.short_fingerprint}`, {len(moe.blocks)} MoE layers x "
        f"{experts} experts, top-{moe.blocks[0].top_k}",
        f"- calibration: `{args.calibration}` (calibration half of the held-out data), {calib.tokens} tokens, "
        f"{calib.num_texts} texts, fingerprint `{calib.fingerprint}`",
        f"- held-out perplexity: evaluation half of `{args.calibration}`, {evaluation.tokens} tokens "
        "(disjoint from calibration)",
        f"- generation: {n_prompts} evaluation-half prompts (all languages), greedy, {args.gen_tokens} new tokens",
        f"- run time {seconds:.0f} s on a shared 2-core CPU, 1 torch thread",
        "",
        "Columns: experts kept per layer; held-out perplexity (lower is better); top-1 agreement = share of "
        "held-out positions where the variant's argmax equals the original's; distinct-2/3 = mean unique "
        "n-gram share per response; rel. d2 = mean over prompts of distinct-2(variant)/distinct-2(original), "
        "the gate's diversity check.",
        "",
        "## Findings",
        "",
        *findings(rows, list(args.ratios), experts),
        "",
        "## Table",
        "",
        "| recipe | kept | perplexity | x orig | top-1 agree | distinct-2 | distinct-3 | rel. d2 | hash |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = rows[0].ppl
    for r in rows:
        lines.append(
            f"| `{r.recipe}` | {r.kept:g} | {r.ppl:.2f} | {r.ppl / base:.2f} | {r.agree:.3f} | "
            f"{r.d2:.3f} | {r.d3:.3f} | {r.rel_d2:.3f} | `{r.hash}` |"
        )
    s = prof.summary()
    lines += [
        "",
        "## Routing profile of the original model",
        "",
        f"On `{args.calibration}` ({prof.tokens} tokens): Gini {s['gini']:.3f}, entropy ratio "
        f"{s['entropy_ratio']:.3f}, top-10 share {s['top10_share']:.1%} (uniform would be "
        f"{s['top10_uniform']:.1%}; with {experts} experts per layer top-10 covers every expert), top-25% "
        f"share {s['top_quarter_share']:.1%} (uniform 25%), dead experts "
        f"{s['dead']}/{prof.total_experts} (dead = under {prof.dead_threshold} x the uniform share 1/E).",
        "",
        "Per-layer usage (share of routed slots):",
        "",
        "```",
        prof.format(),
        "```",
        "",
        "Dead experts vs number of calibration prompts (one prompt = first 128 tokens of one text). Rules: "
        "never routed to; under 0.01 x the uniform share (the profile's rule); under 0.25 x the uniform share "
        "(about seed 000's 'activated < 0.05% of the time' on 512 experts).",
        "",
        "| prompts | tokens | never routed | < 0.01 x uniform | < 0.25 x uniform |",
        "|---:|---:|---:|---:|---:|",
        *[
            f"| {int(c['prompts_available'])} | {int(c['tokens'])} | {c['dead@0']}/{c['experts']} | "
            f"{c['dead']}/{c['experts']} | {c['dead@0.25']}/{c['experts']} |"
            for c in curve
        ],
        "",
        "## Which criterion predicts the damage? (single-expert removal oracle)",
        "",
        *(oracle or ["(skipped in --quick mode)"]),
        "",
        "## Calibration domain: English-only vs diverse",
        "",
        "Same criterion and ratio, calibrated on `english` (English prose + prompts) or `diverse` (all languages, "
        "arithmetic, translation); perplexity on the evaluation halves.",
        "",
        *domain,
        "",
        "## Records (experts removed per layer; merges: groups, survivor first)",
        "",
        "| recipe | removed per layer | groups |",
        "|---|---|---|",
    ]
    for r in rows[1:]:
        removed = " ".join(f"{k}:{v}" for k, v in r.removed.items())
        groups = " ".join(f"{k}:{[g for g in v if len(g) > 1]}" for k, v in r.groups.items())
        lines.append(f"| `{r.recipe}` | {removed} | {groups} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
