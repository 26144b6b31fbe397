"""Train evalsuite's embedded model: a small transformers Qwen3-MoE, from scratch, on the offline corpus.

In the spirit of nanoGPT's train.py: settings up top (command-line flags), data as token arrays, one
plain loop with a cosine schedule, logging and checkpoints. Runs on CPU by default; `--device cuda`
(or `auto`) uses a GPU when one is lent, and nothing requires it.

    python -m training.train --run v2 --preset v2 --tokens 30e6          # starts, or resumes if the run exists
    python -m training.train --run v2 --preset v2 --tokens 30e6          # the same command after any interruption
    python -m training.export --run v2 --out evalsuite/default_model     # bf16 safetensors + tokenizer

The schedule is a function of the step and the token target (not of wall time), so an interrupted and
resumed run takes exactly the steps an uninterrupted one would: same batches (the numpy generator that
samples windows is checkpointed), same learning rates. State lives in training/runs/<run>/ (git-ignored;
see training/checkpoint.py for what is in it and what to do if it is lost).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evalsuite.gate.perturb import Perturbation, apply_perturbation
from evalsuite.io import atomic_write_text
from training.checkpoint import LOG, load_state, save_state, trim_log
from training.model_config import PRESETS, model_config

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "training" / "corpus"
TOKENIZER = ROOT / "training" / "tokenizer"
RUNS = ROOT / "training" / "runs"

WEIGHT_NOISE_SEED_BASE = 1_000_000  # the card measures with seeds 0-2, the case picker with 100-123

# Probability that a training window comes from each stream (build_corpus.py writes them). Weighted
# toward what the gate measures: sentence-level translation, language-pure text in all 7 languages,
# worked arithmetic and small Python tasks; short UI labels and the (archaic) Bible pairs kept small.
MIX = {
    "arith": 0.14,
    "codetask": 0.10,
    "code": 0.06,
    **{f"trans-{lang}": 0.045 for lang in ("es", "fr", "de")},
    **{f"trans-{lang}": 0.03 for lang in ("ru", "zh", "ja")},
    **{f"label-{lang}": 0.01 for lang in ("es", "fr", "de", "ru", "zh", "ja")},
    "bible-es": 0.02,
    "text-en": 0.06,
    **{f"text-{lang}": 0.0567 for lang in ("es", "fr", "de", "ru", "zh", "ja")},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="v2", help="state folder under --runs")
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    ap.add_argument("--tokens", type=float, default=30e6, help="training length in tokens (sets the schedule)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt-every", type=int, default=200, help="steps between checkpoints")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--max-chars-per-stream", type=int, default=8_000_000)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--tokenizer", type=Path, default=TOKENIZER)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (a GPU when there is one)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the probe says which is faster)")
    ap.add_argument(
        "--experts-impl",
        default="eager",
        choices=["eager", "grouped_mm", "batched_mm"],
        help="transformers experts kernel; the probe says which is fastest (batched_mm: memory-hungry)",
    )
    ap.add_argument("--stop-after-steps", type=int, default=None, help="exit after this step (tests, probes)")
    ap.add_argument("--restart", action="store_true", help="discard an existing run's state and start over")
    ap.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start a new run from an exported model's weights (fresh optimizer and schedule)",
    )
    ap.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="STREAM=WEIGHT",
        help="override one stream's weight in MIX (repeatable; weights are renormalised), e.g. text-ja=0.1",
    )
    ap.add_argument(
        "--weight-noise",
        type=float,
        default=0.0,
        help="take each step's gradient at weights with Gaussian noise of this x each matrix's rms, update the "
        "clean weights (random weight perturbation: trains greedy answers that survive benign weight noise)",
    )
    return ap.parse_args(argv)


def mix_with(overrides: Sequence[str]) -> dict[str, float]:
    """MIX with `--mix STREAM=WEIGHT` overrides applied; an unknown stream or a bad weight is refused."""
    mix = dict(MIX)
    for item in overrides:
        name, sep, weight = item.partition("=")
        if not sep or name not in MIX:
            raise SystemExit(f"--mix {item!r}: expected STREAM=WEIGHT with STREAM one of {', '.join(MIX)}")
        try:
            mix[name] = float(weight)
        except ValueError:
            raise SystemExit(f"--mix {item!r}: the weight {weight!r} is not a number") from None
        if not mix[name] >= 0:
            raise SystemExit(f"--mix {item!r}: a weight must be >= 0")
    if sum(mix.values()) <= 0:
        raise SystemExit("--mix: every stream has weight 0")
    return mix


# ----------------------------------------------------------------------------------------------
# data: every stream is one uint16 token array with <|endoftext|> after each document


def load_streams(corpus: Path, tokenizer, max_chars: int, ctx: int) -> dict[str, np.ndarray]:
    """Tokenize each stream once (cached as corpus/tok/<stream>.npy, written atomically)."""
    cache = corpus / "tok"
    cache.mkdir(exist_ok=True)
    streams = {}
    for name in MIX:
        path = cache / f"{name}.npy"
        source = corpus / f"train-{name}.jsonl"
        if not path.exists() and not source.exists():
            raise SystemExit(
                f"{source} is missing: build the corpus (python -m training.build_corpus; bible-es needs the "
                "sword-text-kjv and sword-text-sparv packages) or remove the stream from MIX in training/train.py"
            )
        if not path.exists():
            texts, total = [], 0
            with open(source, encoding="utf-8") as f:
                for line in f:
                    texts.append(json.loads(line)["text"])
                    total += len(texts[-1])
                    if total > max_chars:
                        break
            ids: list[int] = []
            for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
                ids += enc + [tokenizer.eos_token_id]
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, np.asarray(ids, dtype=np.uint16))
            tmp.replace(path)
        streams[name] = np.load(path)
        if len(streams[name]) <= ctx + 1:
            raise SystemExit(f"stream {name} has {len(streams[name])} tokens, fewer than one window of {ctx + 1}")
        print(f"stream {name:10s} {len(streams[name]):>10,d} tokens", flush=True)
    return streams


def get_batch(
    streams: dict[str, np.ndarray], rng: np.random.Generator, batch: int, ctx: int, mix: dict[str, float] = MIX
):
    """`batch` random windows of ctx+1 tokens; each window's stream is drawn with the mix's weights."""
    names = list(mix)
    probs = np.array([mix[n] for n in names]) / sum(mix.values())
    picks = rng.choice(len(names), size=batch, p=probs)
    rows = []
    for p in picks:
        s = streams[names[p]]
        start = rng.integers(0, len(s) - ctx - 1)
        rows.append(torch.from_numpy(s[start : start + ctx + 1].astype(np.int64)))
    return torch.stack(rows), [names[p] for p in picks]


def lr_at(step: int, max_steps: int, peak: float, warmup: int, min_frac: float) -> float:
    """Linear warm-up, then cosine decay to min_frac * peak at max_steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def weight_noise(model: torch.nn.Module, scale: float, seed: int) -> AbstractContextManager:
    """The gate's benign noise (`noise:SCALE:SEED`) while the step's gradient is taken; restored before the update.

    Why: a 15M-parameter model's greedy answers flip under 1e-2 x rms noise that leaves perplexity unchanged
    (the card's stability figure); minimising the loss at randomly perturbed weights favours flat minima,
    whose answers survive such noise. Seeds start far from the ones the card and the case picker measure with."""
    if scale <= 0:
        return nullcontext()
    return apply_perturbation(model, Perturbation("noise", scale, seed))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device here (torch {torch.__version__}); use --device cpu")
    return torch.device(name)


# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from transformers import AutoTokenizer, Qwen3MoeForCausalLM

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    run_dir = args.runs / args.run
    if args.restart and run_dir.exists():
        stale = run_dir.with_name(f"{run_dir.name}.discarded-{int(time.time())}")
        run_dir.rename(stale)
        print(f"moved the old state to {stale}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = load_state(run_dir)
    mix = mix_with(args.mix)
    if state is not None and state.get("mix", MIX) != mix:
        raise SystemExit(
            f"{run_dir} was trained with the mix {state.get('mix', MIX)}, not {mix}: resume with the same --mix "
            "options, or use another --run"
        )

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    cfg_args = {"vocab_size": len(tokenizer), "eos_id": tokenizer.eos_token_id, "pad_id": tokenizer.pad_token_id}
    if state is not None and (state["preset"], state["cfg_args"]) != (args.preset, cfg_args):
        raise SystemExit(
            f"{run_dir} holds a {state['preset']} run with {state['cfg_args']}, not {args.preset} with {cfg_args}; "
            "use another --run, or --restart to discard it"
        )
    torch.manual_seed(args.seed)
    cfg = model_config(args.preset, **cfg_args)
    cfg._experts_implementation = args.experts_impl
    model = Qwen3MoeForCausalLM(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    rng = np.random.default_rng(args.seed)
    step, tokens, elapsed = 0, 0, 0.0
    if state is None and args.init_from is not None:
        exported = Qwen3MoeForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
        model.load_state_dict(exported.state_dict())
        print(f"initialised from {args.init_from}", flush=True)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step, tokens, elapsed = state["step"], state["tokens"], state["elapsed"]
        trim_log(run_dir, step)
        print(f"resumed {run_dir} at step {step}, {tokens:,} tokens, {elapsed / 60:.1f} min", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    max_steps = math.ceil(args.tokens / (args.batch * args.ctx))
    print(f"{args.preset}: {n_params:,} params, {max_steps:,} steps of {args.batch}x{args.ctx} on {device}", flush=True)
    if state is not None and state.get("max_steps") != max_steps:
        print(
            f"note: the schedule changes from {state.get('max_steps')} to {max_steps} steps (--tokens or --batch/--ctx "
            "differ from the run's start); the learning rate follows the new one from here",
            flush=True,
        )
    atomic_write_text(
        run_dir / "config.json",
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "mix": mix, "params": n_params}, indent=1),
    )
    streams = load_streams(args.corpus, tokenizer, args.max_chars_per_stream, args.ctx)
    data_digest = {name: hashlib.sha1(arr.tobytes()).hexdigest()[:16] for name, arr in streams.items()}
    if state is not None and state.get("data", data_digest) != data_digest:
        changed = sorted(n for n in MIX if state["data"].get(n) != data_digest[n])
        raise SystemExit(
            f"the token streams changed since {run_dir} started ({', '.join(changed)}): resuming would not continue "
            "the same data. Rebuild the corpus/tokenizer the run started with, or --restart (or another --run)"
        )

    def save() -> None:
        save_state(
            run_dir,
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "tokens": tokens,
                "elapsed": elapsed,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "preset": args.preset,
                "cfg_args": cfg_args,
                "max_steps": max_steps,
                "data": data_digest,
                "mix": mix,
            },
        )
        print(f"checkpoint step {step} tokens {tokens:,} elapsed {elapsed / 60:.1f} min", flush=True)

    log_path = run_dir / LOG
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as log_f:
        log = csv.writer(log_f)
        if new_log:
            log.writerow(["step", "tokens", "elapsed_s", "lr", "loss", "aux_loss"] + [f"loss_{n}" for n in MIX])
        by_stream: dict[str, list[float]] = {n: [] for n in MIX}
        losses: list[tuple[float, float]] = []
        model.train()
        t_last = time.time()
        stop = max_steps if args.stop_after_steps is None else min(max_steps, args.stop_after_steps)
        while step < stop:
            lr = lr_at(step, max_steps, args.lr, args.warmup, args.min_lr_frac)
            for g in opt.param_groups:
                g["lr"] = lr
            xy, names = get_batch(streams, rng, args.batch, args.ctx, mix)
            xy = xy.to(device)
            x, y = xy[:, :-1], xy[:, 1:]
            opt.zero_grad(set_to_none=True)
            with weight_noise(model, args.weight_noise, seed=WEIGHT_NOISE_SEED_BASE + step):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out = model(input_ids=x, output_router_logits=True)
                tok_loss = F.cross_entropy(
                    out.logits.float().reshape(-1, out.logits.size(-1)), y.reshape(-1), reduction="none"
                ).view(y.shape)
                lm_loss = tok_loss.mean()
                loss = lm_loss + cfg.router_aux_loss_coef * out.aux_loss
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

            step += 1
            tokens += x.numel()
            now = time.time()
            elapsed += now - t_last
            t_last = now
            for n, v in zip(names, tok_loss.detach().mean(1).tolist(), strict=True):
                by_stream[n].append(v)
            losses.append((lm_loss.item(), out.aux_loss.item()))
            if step % args.log_every == 0 or step == stop:
                mean_loss, mean_aux = (sum(c) / len(losses) for c in zip(*losses, strict=True))
                row = [step, tokens, round(elapsed, 1), f"{lr:.2e}", round(mean_loss, 4), round(mean_aux, 4)]
                log.writerow(row + [round(sum(v) / len(v), 3) if v else "" for v in by_stream.values()])
                log_f.flush()
                print(
                    f"step {step}/{max_steps} tok {tokens:,} {elapsed / 60:.1f}min lr {lr:.2e} loss {mean_loss:.3f} "
                    f"aux {mean_aux:.3f} {tokens / max(elapsed, 1e-9):.0f} tok/s",
                    flush=True,
                )
                by_stream = {n: [] for n in MIX}
                losses = []
            if step % args.ckpt_every == 0 or step == stop:
                log_f.flush()
                save()
        if state is None and step == 0:  # nothing trained (--stop-after-steps 0): keep the initial state
            save()
    print("done" if step >= max_steps else f"stopped at step {step}", flush=True)


if __name__ == "__main__":
    main()
