"""Train evalsuite's embedded default model: a tiny Qwen3-MoE (transformers class) on the offline corpus.

One command (after build_corpus.py and train_tokenizer.py):
    python training/train.py --run main --time-budget-min 65
Resume after an interruption (same budget; elapsed time is restored from the checkpoint):
    python training/train.py --run main --time-budget-min 65 --resume
Export the latest checkpoint as a standard Hugging Face checkpoint (bf16 safetensors + tokenizer):
    python training/train.py --run main --export evalsuite/default_model

The run is bounded by wall-clock time, not steps: the learning-rate schedule is a function of elapsed
time, so the number of tokens seen follows from the machine's speed (it is logged). Data order is fixed
by --seed. Everything is written under training/runs/<run>/: ckpt.pt (model, optimizer, step, elapsed,
rng), log.csv (one row per logged step), config.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "training" / "corpus"
TOKENIZER = ROOT / "training" / "tokenizer"
RUNS = ROOT / "training" / "runs"

# Sampling probability of each training stream (per sequence). Synthetic, measurable tasks are
# over-weighted on purpose: a ~10M-parameter model seeing a few million tokens must learn them.
MIX = {
    "arith": 0.22,
    "codetask": 0.12,
    "code": 0.07,
    "trans-es": 0.04,
    "trans-fr": 0.04,
    "trans-de": 0.04,
    "trans-ru": 0.02,
    "trans-zh": 0.02,
    "trans-ja": 0.02,
    "text-en": 0.06,
    "text-es": 0.0584,
    "text-fr": 0.0584,
    "text-de": 0.0583,
    "text-ru": 0.0583,
    "text-zh": 0.0583,
    "text-ja": 0.0583,
}


def model_config(vocab_size: int, eos_id: int, pad_id: int):
    from transformers import Qwen3MoeConfig

    return Qwen3MoeConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,
        moe_intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        num_experts=8,
        num_experts_per_tok=2,
        decoder_sparse_step=1,
        norm_topk_prob=True,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        output_router_logits=False,
        router_aux_loss_coef=0.01,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


# ----------------------------------------------------------------------------------------------
# data: every stream is one long uint16 token array with <|endoftext|> between documents


def load_streams(tokenizer, max_chars: int) -> dict[str, np.ndarray]:
    cache = CORPUS / "tok"
    cache.mkdir(exist_ok=True)
    streams = {}
    for name in MIX:
        path = cache / f"{name}.npy"
        if not path.exists():
            texts, total = [], 0
            for line in open(CORPUS / f"train-{name}.jsonl", encoding="utf-8"):  # noqa: SIM115 - streamed, closed at exit
                t = json.loads(line)["text"]
                texts.append(t)
                total += len(t)
                if total > max_chars:
                    break
            ids: list[int] = []
            for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
                ids.extend(enc)
                ids.append(tokenizer.eos_token_id)
            np.save(path, np.asarray(ids, dtype=np.uint16))
        streams[name] = np.load(path)
        print(f"stream {name:10s} {len(streams[name]):>9,d} tokens", flush=True)
    return streams


def get_batch(streams, rng: np.random.Generator, batch: int, ctx: int):
    names = list(MIX)
    probs = np.array([MIX[n] for n in names]) / sum(MIX.values())
    picks = rng.choice(len(names), size=batch, p=probs)
    rows = []
    for p in picks:
        s = streams[names[p]]
        start = rng.integers(0, len(s) - ctx - 1)
        rows.append(torch.from_numpy(s[start : start + ctx + 1].astype(np.int64)))
    return torch.stack(rows), [names[p] for p in picks]


# ----------------------------------------------------------------------------------------------


def lr_at(step: int, frac: float, peak: float, warmup: int) -> float:
    """Linear warm-up by steps, then cosine decay to 10% over the wall-clock budget."""
    warm = min(1.0, (step + 1) / warmup)
    return peak * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def export(run_dir: Path, out_dir: Path) -> None:
    """Write the latest checkpoint as a plain HF checkpoint (bf16) + tokenizer, atomically."""
    from transformers import AutoTokenizer, Qwen3MoeForCausalLM

    ck = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    cfg = model_config(**ck["cfg_args"])
    model = Qwen3MoeForCausalLM(cfg)
    model.load_state_dict(ck["model"])
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    tmp = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(tmp)
    (tmp / "training_state.json").write_text(
        json.dumps(
            {
                "run": run_dir.name,
                "step": ck["step"],
                "tokens_seen": ck["tokens"],
                "elapsed_s": round(ck["elapsed"], 1),
            },
            indent=1,
        )
    )
    old = out_dir.parent / (out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    print(f"exported step {ck['step']} ({ck['tokens']:,} tokens) -> {out_dir}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="main")
    ap.add_argument("--time-budget-min", type=float, default=65.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt-every-min", type=float, default=5.0)
    ap.add_argument("--max-chars-per-stream", type=int, default=3_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", type=Path, default=None, help="export the latest checkpoint here and exit")
    args = ap.parse_args()

    run_dir = RUNS / args.run
    if args.export is not None:
        export(run_dir, args.export)
        return

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from transformers import AutoTokenizer, Qwen3MoeForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    cfg_args = {"vocab_size": len(tokenizer), "eos_id": tokenizer.eos_token_id, "pad_id": tokenizer.pad_token_id}
    cfg = model_config(**cfg_args)
    cfg._experts_implementation = "eager"  # fastest measured on this CPU; grouped_mm was ~2x slower
    model = Qwen3MoeForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params:,}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    streams = load_streams(tokenizer, args.max_chars_per_stream)

    run_dir.mkdir(parents=True, exist_ok=True)
    step, tokens, elapsed = 0, 0, 0.0
    rng = np.random.default_rng(args.seed)
    if args.resume and (run_dir / "ckpt.pt").exists():
        ck = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, tokens, elapsed = ck["step"], ck["tokens"], ck["elapsed"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed at step {step}, {tokens:,} tokens, {elapsed / 60:.1f} min", flush=True)
    (run_dir / "config.json").write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "mix": MIX, "params": n_params}, indent=1)
    )
    log_path = run_dir / "log.csv"
    new_log = not (args.resume and log_path.exists())
    log_f = open(log_path, "w" if new_log else "a", newline="")  # noqa: SIM115 - open for the whole run
    log = csv.writer(log_f)
    if new_log:
        log.writerow(["step", "tokens", "elapsed_s", "lr", "loss", "aux_loss"] + [f"loss_{n}" for n in MIX])

    def save() -> None:
        tmp = run_dir / "ckpt.pt.tmp"
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "tokens": tokens,
                "elapsed": elapsed,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cfg_args": cfg_args,
            },
            tmp,
        )
        os.replace(tmp, run_dir / "ckpt.pt")
        print(f"checkpoint step {step} tokens {tokens:,} elapsed {elapsed / 60:.1f} min", flush=True)

    budget = args.time_budget_min * 60
    model.train()
    t_last = time.time()
    last_ckpt = elapsed
    dom_sum = {n: 0.0 for n in MIX}
    dom_cnt = {n: 0 for n in MIX}
    loss_acc, aux_acc, n_acc = 0.0, 0.0, 0
    while elapsed < budget:
        lr = lr_at(step, elapsed / budget, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        xy, names = get_batch(streams, rng, args.batch, args.ctx)
        x, y = xy[:, :-1], xy[:, 1:]
        out = model(input_ids=x, output_router_logits=True)
        tok_loss = F.cross_entropy(
            out.logits.float().reshape(-1, out.logits.size(-1)), y.reshape(-1), reduction="none"
        ).view(y.shape)
        lm_loss = tok_loss.mean()
        loss = lm_loss + cfg.router_aux_loss_coef * out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

        step += 1
        tokens += x.numel()
        now = time.time()
        elapsed += now - t_last
        t_last = now
        per_seq = tok_loss.detach().mean(1)
        for n, v in zip(names, per_seq.tolist(), strict=False):
            dom_sum[n] += v
            dom_cnt[n] += 1
        loss_acc += lm_loss.item()
        aux_acc += out.aux_loss.item()
        n_acc += 1
        if step % 25 == 0:
            row = [step, tokens, round(elapsed, 1), f"{lr:.2e}", round(loss_acc / n_acc, 4), round(aux_acc / n_acc, 4)]
            row += [round(dom_sum[n] / dom_cnt[n], 3) if dom_cnt[n] else "" for n in MIX]
            log.writerow(row)
            log_f.flush()
            print(
                f"step {step} tok {tokens:,} {elapsed / 60:.1f}min lr {lr:.2e} loss {loss_acc / n_acc:.3f} "
                f"aux {aux_acc / n_acc:.3f} {tokens / max(elapsed, 1):.0f} tok/s",
                flush=True,
            )
            dom_sum = {n: 0.0 for n in MIX}
            dom_cnt = {n: 0 for n in MIX}
            loss_acc, aux_acc, n_acc = 0.0, 0.0, 0
        if elapsed - last_ckpt > args.ckpt_every_min * 60:
            save()
            last_ckpt = elapsed
    save()
    log_f.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
