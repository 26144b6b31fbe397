"""Export a run's latest checkpoint as a plain Hugging Face checkpoint: bf16 safetensors + tokenizer.

    python -m training.export --run v2 --out evalsuite/default_model

The folder is built next to the target and swapped in with renames, so evalsuite never sees half a
model. Everything the model card reports about training travels with the weights, not in the git-ignored
run folder (a lost machine took session 6's run folders and left v2c's card without its arguments):
`training_state.json` holds preset, step, tokens, wall time, the run's arguments, its data mix with the
sizes of the streams it mixed, and for a run continued from an exported model (`train --init-from`) the
stages before it (`history`); `training_log.csv` is the run's loss log (the card's loss curve).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from training.checkpoint import LOG, load_state
from training.model_config import MAX_SHIPPED_MB, model_config
from training.train import CORPUS, RUNS, TOKENIZER

TRAINING_LOG = "training_log.csv"
STAGE = ("run", "tokens_seen", "elapsed_s")  # one training stage of `history`


def history(init_from: str | None, own: dict) -> list[dict]:
    """The training stages behind these weights, oldest first: the starting export's, then this run's."""
    earlier: list[dict] = []
    if init_from and init_from != "None":
        state_path = Path(init_from) / "training_state.json"
        if not state_path.is_file():
            raise SystemExit(
                f"the run started from {init_from}, which has no training_state.json to take its history from"
            )
        before = json.loads(state_path.read_text())
        earlier = before.get("history") or [{k: before[k] for k in STAGE}]
    return [*earlier, {k: own[k] for k in STAGE}]


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
    cfg_path = run_dir / "config.json"
    run_cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {"args": {}, "mix": {}}
    info["args"], info["mix"] = run_cfg["args"], run_cfg["mix"]
    stats_path = Path(run_cfg["args"].get("corpus", CORPUS)) / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    info["streams"] = {name: stats[name] for name in info["mix"] if name in stats}
    info["history"] = history(run_cfg["args"].get("init_from"), info)
    (tmp / "training_state.json").write_text(json.dumps(info, indent=1))
    if (run_dir / LOG).is_file():
        shutil.copyfile(run_dir / LOG, tmp / TRAINING_LOG)
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
