"""Export a run's latest checkpoint as a plain Hugging Face checkpoint: bf16 safetensors + tokenizer.

    python -m training.export --run v2 --out evalsuite/default_model

The folder is built next to the target and swapped in with renames, so evalsuite never sees half a
model. `training_state.json` records what the model card reports (preset, step, tokens, wall time), and for
a run continued from an exported model (`train --init-from`) the stages before it (`history`), so the card
can state the tokens and wall time the weights saw in all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from training.checkpoint import load_state
from training.model_config import MAX_SHIPPED_MB, model_config
from training.train import RUNS, TOKENIZER


def history(run_dir: Path, own: dict) -> list[dict]:
    """The training stages behind these weights, oldest first: the starting export's, then this run's."""
    cfg_path = run_dir / "config.json"
    init_from = json.loads(cfg_path.read_text())["args"].get("init_from") if cfg_path.is_file() else None
    earlier: list[dict] = []
    if init_from and init_from != "None":
        state_path = Path(init_from) / "training_state.json"
        if not state_path.is_file():
            raise SystemExit(
                f"{run_dir} started from {init_from}, which has no training_state.json to take its history from"
            )
        before = json.loads(state_path.read_text())
        earlier = before.get("history") or [{k: before[k] for k in ("run", "tokens_seen", "elapsed_s")}]
    return [*earlier, {k: own[k] for k in ("run", "tokens_seen", "elapsed_s")}]


def export(run_dir: Path, out_dir: Path, tokenizer_dir: Path = TOKENIZER) -> Path:
    from transformers import AutoTokenizer, Qwen3MoeForCausalLM

    state = load_state(run_dir)
    if state is None:
        raise SystemExit(f"{run_dir} has no checkpoint to export (train first: python -m training.train)")
    cfg = model_config(state["preset"], **state["cfg_args"])
    model = Qwen3MoeForCausalLM(cfg)
    model.load_state_dict(state["model"])
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(tmp)
    info = {
        "run": run_dir.name,
        "preset": state["preset"],
        "step": state["step"],
        "max_steps": state.get("max_steps"),
        "tokens_seen": state["tokens"],
        "elapsed_s": round(state["elapsed"], 1),
    }
    info["history"] = history(run_dir, info)
    (tmp / "training_state.json").write_text(json.dumps(info, indent=1))
    size_mb = sum(f.stat().st_size for f in tmp.iterdir()) / 1e6
    if size_mb > MAX_SHIPPED_MB:
        raise SystemExit(f"export is {size_mb:.1f} MB > {MAX_SHIPPED_MB} MB allowed in the package; left in {tmp}")
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    print(f"exported {info} ({size_mb:.1f} MB) -> {out_dir}")
    return out_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="v2")
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, default=TOKENIZER)
    args = ap.parse_args()
    export(args.runs / args.run, args.out, args.tokenizer)


if __name__ == "__main__":
    main()
