"""Measure training and decoding speed before the long run: threads x experts kernel x sequence length.

    python -m training.probe_throughput                       # v2, ~3-4 min with the CPU to itself
    python -m training.probe_throughput --preset v2-lite --seconds 5

Run it at the start of the dedicated training session, with nothing else on the CPU (numbers taken on
a shared CPU are meaningless: 2 threads were 700x slower for tiny matmuls under load). Each setting
trains on random token ids (no corpus needed) for `--seconds`, after one untimed warm-up step, and
reports tokens/s side by side with the first setting; then it times greedy decoding of a batch of 8
prompts (what the gate does) per experts kernel. The last lines say how long --tokens would take with
the fastest setting, and the flags to pass to training.train.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F

from training.model_config import PRESETS, model_config, param_counts
from training.train import pick_device

KERNELS = ("eager", "grouped_mm", "batched_mm")
# batched_mm gathers one weight matrix per (token, expert) pair: for v2 at 4096 tokens per step that is
# 16k x 256 x 256 floats per projection (~4 GB), which stalled the machine; probe it only on request.
DEFAULT_KERNELS = ["eager", "grouped_mm"]


def build(preset: str, kernel: str, vocab: int, device: torch.device):
    from transformers import Qwen3MoeForCausalLM

    torch.manual_seed(0)
    cfg = model_config(preset, vocab, 0, 1)
    cfg._experts_implementation = kernel
    return Qwen3MoeForCausalLM(cfg).to(device)


def train_speed(model, batch: int, ctx: int, seconds: float, device: torch.device) -> float:
    """Training tokens per second (forward, backward, AdamW step), after one warm-up step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    vocab = model.config.vocab_size
    model.train()

    def one_step() -> None:
        xy = torch.randint(0, vocab, (batch, ctx + 1), device=device)
        out = model(input_ids=xy[:, :-1], output_router_logits=True)
        loss = F.cross_entropy(out.logits.reshape(-1, vocab), xy[:, 1:].reshape(-1)) + 0.01 * out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one_step()
    n, t0 = 0, time.perf_counter()
    while True:
        one_step()
        n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * batch * ctx / dt


@torch.no_grad()
def decode_speed(model, new_tokens: int, device: torch.device) -> float:
    """Greedy new tokens per second for 8 prompts of 24 tokens (the gate's batch size)."""
    model.eval()
    ids = torch.randint(2, model.config.vocab_size, (8, 24), device=device)

    def run(n: int) -> None:
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=1,
        )

    run(2)  # warm-up
    t0 = time.perf_counter()
    run(new_tokens)
    return 8 * new_tokens / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--kernels", nargs="+", default=DEFAULT_KERNELS, choices=KERNELS)
    ap.add_argument("--ctx", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--batch-tokens", type=int, default=4096, help="tokens per step (batch = this / ctx)")
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per setting")
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--tokens", type=float, default=30e6, help="training length to estimate the time of")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    counts = param_counts(args.preset, args.vocab)
    print(
        f"{args.preset}: {counts['total']:,.0f} params, {counts['active_per_token']:,.0f} active per token, "
        f"{counts['bf16_MB']:.1f} MB bf16; {args.batch_tokens} tokens per step; {args.seconds}s per setting"
    )
    print(f"{'threads':>7s} {'kernel':>10s} {'ctx':>5s} {'batch':>5s} {'train tok/s':>12s} {'x first':>8s}")
    results = []
    for threads, kernel, ctx in itertools.product(args.threads, args.kernels, args.ctx):
        torch.set_num_threads(threads)
        batch = max(1, args.batch_tokens // ctx)
        try:
            speed = train_speed(build(args.preset, kernel, args.vocab, device), batch, ctx, args.seconds, device)
        except (RuntimeError, NotImplementedError) as exc:  # a kernel without a CPU implementation
            print(f"{threads:>7d} {kernel:>10s} {ctx:>5d} {batch:>5d}   unavailable: {str(exc)[:60]}")
            continue
        results.append((speed, threads, kernel, ctx, batch))
        print(
            f"{threads:>7d} {kernel:>10s} {ctx:>5d} {batch:>5d} {speed:>12.0f} {speed / results[0][0]:>8.2f}",
            flush=True,
        )
    print(f"\ngreedy decoding, batch 8, {args.decode_tokens} new tokens (the gate's workload)")
    for threads, kernel in itertools.product(args.threads, args.kernels):
        torch.set_num_threads(threads)
        try:
            speed = decode_speed(build(args.preset, kernel, args.vocab, device), args.decode_tokens, device)
        except (RuntimeError, NotImplementedError) as exc:
            print(f"  threads {threads} {kernel:>10s}: unavailable: {str(exc)[:60]}")
            continue
        print(f"  threads {threads} {kernel:>10s}: {speed:8.0f} new tokens/s", flush=True)
    if results:
        speed, threads, kernel, ctx, batch = max(results)
        hours = args.tokens / speed / 3600
        print(f"\nfastest: {speed:.0f} tok/s -> {args.tokens / 1e6:.0f}M tokens in {hours:.1f} h")
        print(f"train with: --threads {threads} --experts-impl {kernel} --ctx {ctx} --batch {batch}")


if __name__ == "__main__":
    main()
