"""Memory and time of evalsuite's artefact paths on a synthetic sharded MoE (>= 1.5 GB bf16, 6+ shards).

Prints, side by side in one run:
- peak RSS of `evalsuite compress` (streamed export) vs the largest shard, above the fixed overhead of a
  process that imports the same libraries and does nothing (goal: <= 1.5x the largest shard);
- output size vs input size, and the dtypes of both (smaller, same dtype);
- peak RSS of a `--compressed` gate vs loading one model (the base, and the compressed checkpoint);
- fingerprint time cold (no cache; files in the page cache since they were just written) vs cached.

Every measurement runs in its own child process (this script re-invoked with --child); its peak RSS is
the kernel's ru_maxrss for that child (os.wait4), so one measurement never inherits another's memory.
The model is a random Qwen3-MoE written with transformers' own save_pretrained (per-expert tensors, as
real checkpoints are stored). Machine load is printed: the 2 cores are shared with other jobs.

    .venv/bin/python benchmarks/memory.py [--gb 1.6] [--shards 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
defaults: {domain: chat, language: en, max_new_tokens: 4}
cases:
  - {id: greet, prompt: "hello world, the quick brown fox"}
"""


# ------------------------------------------------------------------------------------------------------
# children: each does one thing and prints one JSON line
# ------------------------------------------------------------------------------------------------------
def _child_build(folder: str, gb: float, shards: int) -> dict:
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    from evalsuite.model.tiny import build_tiny_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tiny_tokenizer()
    hidden, inter, experts = 1024, 512, 40
    per_layer = experts * 3 * hidden * inter + 4 * hidden * hidden  # experts + attention (approximately)
    layers = max(2, round(gb * 1e9 / 2 / per_layer))
    config = Qwen3MoeConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, moe_intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=4, head_dim=128, num_experts=experts,
        num_experts_per_tok=4, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    start = time.perf_counter()
    model = Qwen3MoeForCausalLM._from_config(config, dtype=torch.bfloat16).eval()
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    model.save_pretrained(folder, max_shard_size=f"{int(total / shards / 1e6) + 1}MB")
    tokenizer.save_pretrained(folder)
    return {"layers": layers, "experts": experts, "params": sum(p.numel() for p in model.parameters()),
            "build_s": time.perf_counter() - start}  # fmt: skip


def _child_idle() -> dict:
    import torch  # noqa: F401 - the libraries every other child imports

    import evalsuite.cli  # noqa: F401
    import evalsuite.compression.export  # noqa: F401
    import evalsuite.model.loading  # noqa: F401

    return {}


def _child_compress(src: str, out: str) -> dict:
    from evalsuite.cli import main

    start = time.perf_counter()
    code = main(["compress", "--model", src, "--recipe", "random:0.25", "--out", out])
    return {"code": code, "seconds": time.perf_counter() - start}


def _child_load(folder: str) -> dict:
    from evalsuite.model.loading import configure_torch, load_model

    configure_torch(1)
    start = time.perf_counter()
    loaded = load_model(folder, dtype="auto")
    return {"seconds": time.perf_counter() - start, "dtype": str(next(loaded.model.parameters()).dtype)}


def _child_gate(project: str, src: str, out: str | None = None) -> dict:
    import pytest

    os.chdir(project)
    argv = ["prompts", "-m", "evalsuite", "-q", "-p", "no:cacheprovider", f"--evalsuite-model={src}"]
    argv += [f"--evalsuite-compressed={out}"] if out else ["--evalsuite-update-baselines"]
    start = time.perf_counter()
    code = int(pytest.main(argv))
    return {"code": code, "seconds": time.perf_counter() - start}


def _child_fingerprint(folder: str) -> dict:
    from evalsuite.model.fingerprint import fingerprint_checkpoint

    start = time.perf_counter()
    fp = fingerprint_checkpoint(folder)
    return {"seconds": time.perf_counter() - start, "fingerprint": fp[:16]}


CHILDREN = {"build": _child_build, "idle": _child_idle, "compress": _child_compress, "load": _child_load,
            "gate": _child_gate, "fingerprint": _child_fingerprint}  # fmt: skip


# ------------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------------
def run_child(name: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run one child; its JSON result plus `peak_mb`, the child's own peak RSS (ru_maxrss)."""
    cmd = [sys.executable, __file__, "--child", name, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "EVALSUITE_PROGRESS": "0", **(env or {})})
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {name} failed ({proc.returncode}):\n{out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _dtypes(folder: Path) -> list[str]:
    from evalsuite.compression.export import checkpoint_tensors

    return sorted({t.dtype for t in checkpoint_tensors(folder).values()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.6, help="synthetic model size in GB (bf16)")
    parser.add_argument("--shards", type=int, default=7)
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temp folder, removed)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        values = [rest[0], float(rest[1]), int(rest[2])] if name == "build" else rest
        print(json.dumps(CHILDREN[name](*values)))
        return

    work = Path(args.keep or tempfile.mkdtemp(prefix="evalsuite-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    src, out, project, cache = work / "base", work / "compressed", work / "project", work / "fp-cache"
    load_before = os.getloadavg()
    try:
        built = run_child("build", str(src), str(args.gb), str(args.shards))
        shards = _shards(src)
        largest = max(p.stat().st_size for p in shards)
        size_in = sum(p.stat().st_size for p in shards)
        idle = run_child("idle")
        comp = run_child("compress", str(src), str(out))
        size_out = sum(p.stat().st_size for p in _shards(out))
        dtypes_in, dtypes_out = _dtypes(src), _dtypes(out)
        env = {"EVALSUITE_CACHE_DIR": str(cache)}
        cold = run_child("fingerprint", str(src), env=env)
        cached = run_child("fingerprint", str(src), env=env)
        base_load = run_child("load", str(src))
        comp_load = run_child("load", str(out))
        (project / "prompts" / "bench").mkdir(parents=True, exist_ok=True)
        (project / "prompts" / "bench" / "s.yaml").write_text(SUITE, encoding="utf-8")
        (project / "pyproject.toml").write_text("[tool.evalsuite]\nmax_new_tokens = 4\n", encoding="utf-8")
        recorded = run_child("gate", str(project), str(src), env=env)
        gated = run_child("gate", str(project), str(src), str(out), env=env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    mb = 1e6
    over = comp["peak_mb"] - idle["peak_mb"]
    print(f"synthetic Qwen3-MoE: {built['params'] / 1e6:.0f}M params, {built['layers']} layers x {built['experts']} "
          f"experts, bf16, {len(shards)} shards, largest {largest / mb:.0f} MB, total {size_in / 1e9:.2f} GB "
          f"(built in {built['build_s']:.0f} s)")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores shared with other jobs; load average {load_before[0]:.1f} at start, "
          f"{load_after[0]:.1f} at end (timings are inflated accordingly; memory is not)")  # fmt: skip
    print()
    print(f"{'measurement':<48}{'value':>14}{'compared with':>40}")
    rows = [
        ("compress random:0.25 (streamed export) peak RSS", f"{comp['peak_mb']:.0f} MB",
         f"largest shard {largest / 2**20:.0f} MiB"),
        ("  fixed overhead (same imports, no work)", f"{idle['peak_mb']:.0f} MB", ""),
        ("  peak above the fixed overhead", f"{over:.0f} MB",
         f"{over * 2**20 / largest:.2f}x largest shard (goal <= 1.5x)"),
        ("  export time", f"{comp['seconds']:.1f} s", f"{size_in / 1e9 / comp['seconds']:.2f} GB/s read"),
        ("output size", f"{size_out / 1e9:.2f} GB", f"input {size_in / 1e9:.2f} GB ({size_out / size_in:.2f}x)"),
        ("dtypes out / in", "/".join(dtypes_out), "/".join(dtypes_in)),
        ("gate --compressed peak RSS", f"{gated['peak_mb']:.0f} MB",
         f"one model: base {base_load['peak_mb']:.0f} MB ({gated['peak_mb'] / base_load['peak_mb']:.2f}x)"),
        ("  the compressed checkpoint loaded alone", f"{comp_load['peak_mb']:.0f} MB",
         f"gate / it: {gated['peak_mb'] / comp_load['peak_mb']:.2f}x"),
        ("  record baselines of the base (for reference)", f"{recorded['peak_mb']:.0f} MB", ""),
        ("fingerprint, cold (no cache)", f"{cold['seconds']:.2f} s",
         f"{size_in / 1e9 / cold['seconds']:.2f} GB/s over {len(shards)} shards"),
        ("fingerprint, cached", f"{cached['seconds']:.3f} s",
         f"{cold['seconds'] / max(cached['seconds'], 1e-9):.0f}x faster (goal < 1 s)"),
    ]
    for name, value, versus in rows:
        print(f"{name:<48}{value:>14}{versus:>40}")
    for name, result in (("compress", comp), ("record", recorded), ("gate", gated)):
        if result.get("code"):
            print(f"note: {name} exited {result['code']} (see its output above)")


if __name__ == "__main__":
    main()
