"""Benchmark: wall time of a full gate run, and batched vs one-prompt-at-a-time greedy generation.

Why: the gate's cost is dominated by generation, which it does once per model variant for all cases
in one batched pass. This prints how long a whole `pytest prompts/<suite>` gate takes on the embedded
model (for the original model against its own baselines, and for a compression recipe), and the
speed-up of batched generation over one prompt at a time on the same suite, checking that both give
identical tokens.

    python benchmarks/gate_run.py                       # embedded model, prompts/embedded
    python benchmarks/gate_run.py --recipe frequency:0.5@english --batch-size 16
    python benchmarks/gate_run.py --skip-gate            # only the batching comparison
    python benchmarks/gate_run.py --skip-gate --threads 1 2   # + `make gate`'s command per torch thread count

Printed ratios, never a timed unit test (the machine's load varies too much for asserts on time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _GateTiming:
    """pytest plugin object that keeps the session's gate timing and outcome counts."""

    def __init__(self) -> None:
        self.timing = None
        self.outcomes = 0
        self.failed = 0

    def pytest_sessionfinish(self, session) -> None:
        from evalsuite.plugin import gate_of

        gate = gate_of(session.config)
        self.timing = gate.timing
        self.outcomes = len(gate.outcomes)
        self.failed = sum(1 for o in gate.outcomes if not o.passed)


def gate_run(suite: str, extra: list[str]) -> dict:
    """One in-process pytest gate run; returns wall time and the gate's own timing breakdown."""
    import pytest

    probe = _GateTiming()
    argv = [suite, "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no", *extra]
    start = time.perf_counter()
    code = pytest.main(argv, plugins=[probe])
    wall = time.perf_counter() - start
    t = probe.timing
    return {
        "args": " ".join(extra) or "(original model vs its own baselines)",
        "exit_code": int(code),
        "checks": probe.outcomes,
        "failed": probe.failed,
        "wall_s": round(wall, 2),
        "load_s": round(t.load_s, 2) if t else None,
        "compress_s": round(t.compress_s, 2) if t else None,
        "generate_s": round(t.generate_s, 2) if t else None,
        "prompts_generated": t.prompts if t else None,
        "score_s": round(t.score_s, 2) if t else None,
        "discriminative_s": round(sum(t.extra.values()), 2) if t else None,
    }


def batching(model_path: str | None, suite: Path, batch_size: int, repeat: int) -> dict:
    """Generate every generative case of the suite one at a time and batched; compare time and tokens."""
    from evalsuite.config import GateSettings
    from evalsuite.gate.cases import load_case_file
    from evalsuite.model.generation import encode_prompt, generate_greedy
    from evalsuite.model.loading import configure_torch, load_model

    configure_torch(1)
    loaded = load_model(model_path)
    default_budget = GateSettings().max_new_tokens
    cases = [c for f in sorted(suite.glob("*.yaml")) for c in load_case_file(f) if c.generative]
    prompts = [encode_prompt(loaded.tokenizer, c.prompt, chat=c.chat) for c in cases]
    budgets = [c.max_new_tokens or default_budget for c in cases]
    stops = [c.stop for c in cases]

    def run(bs: int):
        best, out = float("inf"), None
        for _ in range(repeat):
            start = time.perf_counter()
            out = generate_greedy(loaded.model, loaded.tokenizer, prompts, max_new_tokens=budgets, stop=stops,
                                  batch_size=bs)
            best = min(best, time.perf_counter() - start)
        return best, out

    single_s, single = run(1)
    batched_s, batched = run(batch_size)
    identical = [a.token_ids for a in single] == [b.token_ids for b in batched]
    tokens = sum(len(g.token_ids) for g in batched)
    return {
        "model": str(loaded.path),
        "cases": len(cases),
        "new_tokens": tokens,
        "one_at_a_time_s": round(single_s, 3),
        f"batched_{batch_size}_s": round(batched_s, 3),
        "speedup": round(single_s / batched_s, 2) if batched_s else None,
        "token_identical": identical,
    }


def threads_comparison(recipes: list[str], threads: list[int]) -> dict:
    """Wall time of `make gate`'s command (a fresh process: imports and start-up count) per torch thread count."""
    import subprocess

    cli = str(Path(sys.executable).with_name("evalsuite"))
    recipe_args = [a for r in recipes for a in ("--recipe", r)]
    runs = []
    for n in threads:  # repeat a count to see the spread (e.g. --threads 1 2 1 2)
        start = time.perf_counter()
        subprocess.run([cli, "gate", *recipe_args, "--threads", str(n)], cwd=ROOT, capture_output=True, check=False)
        runs.append({"threads": n, "wall_s": round(time.perf_counter() - start, 2)})
    best = {n: min(r["wall_s"] for r in runs if r["threads"] == n) for n in dict.fromkeys(threads)}
    first = best[threads[0]]
    return {"recipes": recipes, "runs": runs, "best_wall_s": best,
            f"best_ratio_vs_{threads[0]}_threads": {n: round(w / first, 3) for n, w in best.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="base checkpoint (default: the embedded model)")
    parser.add_argument("--suite", default="prompts/embedded", help="prompt suite folder")
    parser.add_argument("--recipe", action="append", default=None,
                        help="also time a gate run of this recipe (repeatable; default frequency:0.5@english)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="batching comparison: best of N runs")
    parser.add_argument("--skip-gate", action="store_true", help="only the batching comparison")
    parser.add_argument("--threads", type=int, nargs="+", help="also time make gate's command with these thread counts")
    parser.add_argument("--gate-recipes", nargs="+", default=["reap-sum:0.125", "freq:0.5@english"],
                        help="recipes of the --threads comparison (default: the Makefile's RECIPES)")
    args = parser.parse_args(argv)

    suite = (ROOT / args.suite) if not Path(args.suite).is_absolute() else Path(args.suite)
    results: dict[str, object] = {}
    if not args.skip_gate:
        base = [f"--evalsuite-model={args.model}"] if args.model else []
        runs = [gate_run(str(suite), base)]
        for recipe in args.recipe or ["frequency:0.5@english"]:
            runs.append(gate_run(str(suite), [*base, f"--evalsuite-recipe={recipe}"]))
        results["gate_runs"] = runs
    results["batching"] = batching(args.model, suite, args.batch_size, args.repeat)
    if args.threads:
        results["threads"] = threads_comparison(args.gate_recipes, args.threads)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
