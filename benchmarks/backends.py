"""Benchmark: the same suite through the hf and vllm backends, side by side.

Why: a serving engine is how large MoE models are run, but its numerics differ from transformers'. This
prints, for the greedy prompts of a suite on the embedded model: wall time and new tokens/s of the
gate's generation pass per backend (vLLM warm, and the server's start-up separately), greedy token
agreement with transformers (bf16 and fp32, the committed baselines' dtype), and the teacher-forced
log-prob differences on transformers' own responses (the divergence check's input).

    make setup-vllm                                    # once: vLLM in its own venv (.venv-vllm)
    python benchmarks/backends.py                      # embedded model, prompts/embedded
    python benchmarks/backends.py --vllm-python /path/to/venv/bin/python --model /models/x --dtype bfloat16

Printed figures, never a timed unit test (the machine's load varies; say what else ran).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _requests(suite: Path, tokenizer, max_new_tokens: int):
    from evalsuite.backends.base import GenerateRequest
    from evalsuite.gate.cases import load_case_file
    from evalsuite.model.generation import encode_prompt

    cases = [c for f in sorted(suite.glob("*.yaml")) for c in load_case_file(f, suite=suite.name) if c.generative]
    return [GenerateRequest(tuple(encode_prompt(tokenizer, c.prompt, chat=c.chat)), c.max_new_tokens or max_new_tokens,
                            tuple(c.stop)) for c in cases]


def _timed(backend, requests) -> tuple[list, float]:
    start = time.perf_counter()
    out = backend.generate(requests)
    return out, time.perf_counter() - start


def _agreement(a: list, b: list) -> tuple[int, float]:
    """Identical responses, and the share of positions equal before the first difference (token level)."""
    same = sum(x.token_ids == y.token_ids for x, y in zip(a, b, strict=True))
    prefix, total = 0, 0
    for x, y in zip(a, b, strict=True):
        common = min(len(x.token_ids), len(y.token_ids))
        prefix += next((i for i in range(common) if x.token_ids[i] != y.token_ids[i]), common)
        total += max(len(x.token_ids), len(y.token_ids))
    return same, prefix / max(total, 1)


def _teacher_forced(hf, other, requests, gens) -> tuple[float, float, float]:
    from evalsuite.backends.base import ScoreRequest

    asked = [ScoreRequest(r.prompt_ids, tuple(g.token_ids)) for r, g in zip(requests, gens, strict=True) if g.token_ids]
    a, b = hf.score(asked, top_k=8), other.score(asked, top_k=8)
    diffs = [abs(x - y) for s, t in zip(a, b, strict=True) for x, y in zip(s.token_logprobs, t.token_logprobs,
                                                                          strict=True)]
    top1 = [s.top_ids[i][0] == t.top_ids[i][0] for s, t in zip(a, b, strict=True) for i in range(len(s.top_ids))]
    return statistics.fmean(diffs), max(diffs), sum(top1) / len(top1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--suite", default=str(ROOT / "prompts" / "embedded"))
    parser.add_argument("--dtype", default="bfloat16", help="the vLLM and hf dtype compared (default bfloat16)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vllm-python", default=os.environ.get("EVALSUITE_VLLM_PYTHON")
                        or str(ROOT / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--vllm-args", default="--max-model-len 512 --enforce-eager")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from evalsuite.backends.hf import HFBackend
    from evalsuite.backends.openai import OpenAIBackend
    from evalsuite.backends.vllm import VLLMServer
    from evalsuite.model.loading import configure_torch, default_model_path, load_model

    configure_torch(args.threads)
    folder = Path(args.model) if args.model else default_model_path()
    hf_low = load_model(folder, dtype=args.dtype)
    hf32 = load_model(folder, dtype="float32")
    requests = _requests(Path(args.suite), hf_low.tokenizer, args.max_new_tokens)
    budget = sum(r.max_new_tokens for r in requests)
    rows = []
    hf_backends = {f"hf {args.dtype}": HFBackend(hf_low.model, hf_low.tokenizer, batch_size=args.batch_size),
                   "hf float32": HFBackend(hf32.model, hf32.tokenizer, batch_size=args.batch_size)}
    outs = {}
    for name, backend in hf_backends.items():
        outs[name], seconds = _timed(backend, requests)
        rows.append((name, seconds, sum(len(g.token_ids) for g in outs[name]) / seconds))

    server = VLLMServer(folder, [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server"],
                        ["--dtype", args.dtype, "--generation-config", "vllm", "--seed", "0", *args.vllm_args.split()],
                        start_timeout_s=900)
    start = time.perf_counter()
    server.start()
    startup = time.perf_counter() - start
    try:
        vllm = OpenAIBackend(server.url, hf_low.tokenizer, backend="vllm", dtype=args.dtype)
        _timed(vllm, requests)  # warm-up: the first batch compiles / allocates
        vname = f"vllm {args.dtype}"
        outs[vname], seconds = _timed(vllm, requests)
        rows.append((vname, seconds, sum(len(g.token_ids) for g in outs[vname]) / seconds))
        tf_low = _teacher_forced(hf_backends[f"hf {args.dtype}"], vllm, requests, outs[f"hf {args.dtype}"])
        tf_32 = _teacher_forced(hf_backends["hf float32"], vllm, requests, outs["hf float32"])
    finally:
        server.stop()

    print(f"model {folder}; {len(requests)} greedy prompts, {budget} new-token budget; torch threads {args.threads}; "
          f"vLLM server start {startup:.1f} s (not in the times below)")
    base = rows[0][1]
    print(f"{'backend':<16} {'wall s':>8} {'new tok/s':>10} {'x hf ' + args.dtype:>12}")
    for name, seconds, rate in rows:
        print(f"{name:<16} {seconds:>8.2f} {rate:>10.1f} {base / seconds:>11.2f}x")
    for ref in hf_backends:
        same, share = _agreement(outs[vname], outs[ref])
        print(f"greedy agreement {vname} vs {ref}: {same}/{len(requests)} identical responses, "
              f"{share:.1%} of token positions before the first difference")
    for ref, (mean, worst, top1) in ((f"hf {args.dtype}", tf_low), ("hf float32", tf_32)):
        print(f"teacher-forced log-probs {vname} vs {ref} (on {ref}'s responses): mean |diff| {mean:.4f}, "
              f"max {worst:.4f} nats; top-1 agreement {top1:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
