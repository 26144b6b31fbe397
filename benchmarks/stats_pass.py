"""Cost of the compression statistics pass vs a plain forward pass over the same tokens.

The statistics pass (`collect_routing_stats`) runs the model once and, per MoE layer, re-evaluates each
routed expert alone to get ||f_j(x)|| (EAN, REAP) and every expert on a small token sample (CKA/cosine
grouping). Target: <= 2.5x the plain pass's time. Both are measured side by side in one run,
interleaved (plain, stats, plain, stats, ...) so load on the shared CPU hits both alike; the median of
the repeats is reported. Peak memory = highest RSS above the pre-call RSS, sampled every 2 ms.

    nice -n 10 .venv/bin/python benchmarks/stats_pass.py [--model PATH] [--tokens 8192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from evalsuite.compression import calibration_batches
from evalsuite.compression.recipe import DEFAULT_OUTPUT_SAMPLES
from evalsuite.model.loading import configure_torch, load_model
from evalsuite.model.routing import collect_routing_stats


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trim() -> None:
    """Give freed heap back to the OS so the next call's RSS increase reflects what it allocates."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(func: Callable[[], Any]) -> tuple[float, int, int]:
    """(seconds, peak RSS increase over the pre-call RSS, peak RSS) of one call."""
    gc.collect()
    _trim()
    base = _rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    func()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    peak[0] = max(peak[0], _rss())
    return seconds, peak[0] - base, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--calibration", default="diverse")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-samples", type=int, default=DEFAULT_OUTPUT_SAMPLES)
    args = parser.parse_args()
    configure_torch(1)
    loaded = load_model(args.model)
    model, tok = loaded.model.eval(), loaded.tokenizer
    calib = calibration_batches(args.calibration, tok, token_budget=args.tokens)
    batches = list(calib)

    @torch.no_grad()
    def plain() -> None:
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)

    def stats_pass() -> None:
        collect_routing_stats(model, iter(batches), output_samples=args.output_samples)

    def stats_no_outputs() -> None:
        collect_routing_stats(model, iter(batches), output_samples=0)

    plain()  # warm-up (allocator, kernels)
    stats_pass()
    runs: dict[str, list[tuple[float, int, int]]] = {"plain": [], "stats": [], "stats (no outputs)": []}
    for _ in range(args.repeats):
        runs["plain"].append(measure(plain))
        runs["stats"].append(measure(stats_pass))
        runs["stats (no outputs)"].append(measure(stats_no_outputs))

    print(
        f"model {loaded.path.name} ({loaded.short_fingerprint}); {calib.tokens} tokens in {len(batches)} "
        f"batches; output_samples={args.output_samples}; {args.repeats} interleaved repeats, 1 torch thread"
    )

    def med(name: str, index: int) -> float:
        return statistics.median(v[index] for v in runs[name])

    base_t, base_inc, base_peak = med("plain", 0), max(med("plain", 1), 1), med("plain", 2)
    print(
        f"{'pass':20s} {'median s':>9s} {'tok/s':>8s} {'time x':>7s} {'+MiB':>8s} {'+mem x':>7s} "
        f"{'peak RSS MiB':>13s} {'peak x':>7s}"
    )
    for name in runs:
        t, inc, peak = med(name, 0), med(name, 1), med(name, 2)
        print(
            f"{name:20s} {t:9.3f} {calib.tokens / t:8.0f} {t / base_t:7.2f} {inc / 2**20:8.1f} "
            f"{inc / base_inc:7.2f} {peak / 2**20:13.1f} {peak / base_peak:7.2f}"
        )
    ratio = med("stats", 0) / base_t
    print(
        f"statistics pass / plain pass: time {ratio:.2f}x (target <= 2.5x: {'OK' if ratio <= 2.5 else 'OVER'}), "
        f"peak RSS {med('stats', 2) / base_peak:.2f}x, memory above pre-call RSS {med('stats', 1) / base_inc:.2f}x"
    )


if __name__ == "__main__":
    main()
