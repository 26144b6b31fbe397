"""Measure the embedded model on the shipped held-out data and regenerate docs/MODEL_CARD.md.

    python -m training.evaluate [--model evalsuite/default_model]                 # ~5 min on 2 cores
    python -m training.evaluate --quick --results /tmp/r.json --card /tmp/card.md  # 4 items per set

Reads the model as the gate does (`evalsuite.model.loading.load_model`, fp32), measures with the
package's own functions (training/measure.py, routing_eval.py, stability.py), writes
training/eval_results.json and the card (training/model_card.py). Multiple choice is measured on the
model and again under the seeds' failure recipe `freq:0.5@english` (evalsuite's `compress`), to show
that every shipped set moves when the model is damaged.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from evalsuite.compression import compress  # noqa: E402
from evalsuite.io import atomic_write_text  # noqa: E402
from evalsuite.metrics.significance import mcnemar_exact  # noqa: E402
from evalsuite.model.loading import configure_torch, default_model_path, load_model  # noqa: E402
from training import measure  # noqa: E402
from training.model_card import write_card  # noqa: E402
from training.pick_cases import continuation_candidates, score, translation_candidates  # noqa: E402
from training.routing_eval import specialisation  # noqa: E402
from training.stability import SUITE, stability  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DAMAGE_RECIPE = "freq:0.5@english"


def parameter_counts(model, folder: Path) -> dict[str, Any]:
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    inactive = experts * (cfg.num_experts - cfg.num_experts_per_tok) // cfg.num_experts
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
    return {"total": total, "experts": experts, "active_per_token": total - inactive, "package_dir_MB": round(size, 2)}


def card_config(cfg) -> dict[str, Any]:
    """The architecture fields the card reports (attribute names, which alias e.g. num_local_experts)."""
    keys = (
        "model_type",
        "architectures",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "router_aux_loss_coef",
        "vocab_size",
        "max_position_embeddings",
    )
    return {k: getattr(cfg, k) for k in keys}


def multiple_choice_with_damage(s: measure.Subject, limit: int | None) -> dict[str, dict[str, Any]]:
    """MC accuracy before and under DAMAGE_RECIPE, with the paired McNemar test of the drop."""
    base = measure.multiple_choice(s, limit)
    damaged = compress(s.model, s.tokenizer, DAMAGE_RECIPE)
    try:
        after = measure.multiple_choice(measure.Subject(damaged.model, s.tokenizer, s.batch_size), limit)
    finally:
        damaged.restore()
    for name, row in base.items():
        new = after[name]["correct"]
        row["compressed_acc"] = after[name]["acc"]
        row["changed_items"] = sum(a != b for a, b in zip(row["correct"], new, strict=True))
        row["mcnemar_p"] = mcnemar_exact(row["correct"], new).p_value
        del row["correct"]
    return base


def candidate_fragility(s: measure.Subject, seeds: tuple[int, ...], limit: int | None) -> dict[str, dict[str, Any]]:
    """Share of all candidate continuations / translations whose greedy answer changes under 1e-2 noise.

    The shipped cases are picked for stable answers (`training.pick_cases`, other seeds); this is the
    model's own fragility before that choice, stated next to the shipped cases' figure."""
    out = {}
    for name, cands in (("continuation", continuation_candidates()), ("translation", translation_candidates())):
        cands = cands[:limit]
        score(s, cands, SUITE / f"{name}.yaml", list(seeds), lambda c: 1.0)  # every candidate counts here
        out[name] = {"candidates": len(cands), "changed_share": round(sum(c.flips > 0 for c in cands) / len(cands), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--quick", action="store_true", help="4 items per set, 1 noise seed (a smoke test)")
    ap.add_argument("--results", type=Path, default=ROOT / "training" / "eval_results.json")
    ap.add_argument("--card", type=Path, default=ROOT / "docs" / "MODEL_CARD.md")
    args = ap.parse_args()
    configure_torch(1)
    limit = 4 if args.quick else None
    t0 = time.time()
    loaded = load_model(args.model)
    model, tok = loaded.model, loaded.tokenizer
    s = measure.Subject(model, tok)
    state_path = args.model / "training_state.json"
    r: dict[str, Any] = {
        "config": card_config(model.config),
        "params": parameter_counts(model, args.model),
        "training_state": json.loads(state_path.read_text()) if state_path.exists() else {},
        "samples": {},
    }
    r["perplexity"] = measure.perplexities(s, limit)
    for key, fn in [
        ("language_consistency", measure.language_consistency),
        ("translation", measure.translation),
        ("arithmetic", measure.arithmetic),
        ("code", measure.code),
    ]:
        r[key], samples = fn(s, limit)
        r["samples"].update(samples)
        print(key, json.dumps(r[key], ensure_ascii=False), flush=True)
    r["multiple_choice"] = multiple_choice_with_damage(s, limit)
    seeds = (0,) if args.quick else (0, 1, 2)
    r["stability"] = stability(model, tok, seeds=seeds)
    r["stability"]["candidates"] = candidate_fragility(s, seeds, limit)
    r["specialisation"] = specialisation(model, tok, limit)
    r["eval_time_s"] = round(time.time() - t0, 1)
    atomic_write_text(args.results, json.dumps(r, indent=1, ensure_ascii=False, default=str))
    write_card(r, args.model, args.card)
    print(f"wrote {args.results} and {args.card} in {r['eval_time_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
