"""Benchmark (issue 10): does the suite verdict pass benign noise and fail real compression?

On the embedded model and prompts/embedded:
1. record baselines and a noise floor of K benign replicates (weight noise, scales 1e-2 / 3e-2 x rms
   cycled, seeds 0..K-1) into a temporary baselines folder (the project's baselines stay untouched);
2. gate, in one session, benign variants the floor never saw (weight noise at 1e-2 and 3e-2 x rms with
   seeds 100.., a safetensors re-save, bf16 and fp16 round trips) and the six compression recipes of the
   issue; print per variant the suite verdict, the failing items, and for every failing check family the
   cases and one regression with both responses;
3. with --sweep, sweep frequency, REAP and one merging method over ratios and print the largest passing
   ratio per method, the HTML report with the plot, and the run time.

    python benchmarks/verdicts.py                         # K=8 replicates, 10 seeds per scale
    python benchmarks/verdicts.py --replicates 4 --seeds 3 --no-recipes
    python benchmarks/verdicts.py --sweep --ratios 0.125 0.25 0.5 --out evalsuite-report/verdicts
    python benchmarks/verdicts.py --project-baselines    # gate against the committed baselines + floor

The target (issue 10): benign variants PASS in >= 95% of runs; freq:0.125, random:0.125,
merge-cka-uniform:7, reap:0.25, freq:0.25@english and freq:0.5@english FAIL, each naming a regression.
Printed results, never a timed unit test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the recipes; merge-cka-uniform:7 of its 8-expert model is written as the ratio it removes
RECIPES = ["freq:0.125", "random:0.125", "merge-cka-uniform:0.125", "reap:0.25", "freq:0.25@english",
           "freq:0.5@english"]


class _Verdicts:
    """pytest plugin object: keeps the session's suite verdicts, sweep summary and outcomes."""

    def __init__(self) -> None:
        self.verdicts: list = []
        self.sweep: list = []
        self.outcomes: list = []

    def pytest_sessionfinish(self, session) -> None:
        from evalsuite import plugin

        self.verdicts = session.config.stash.get(plugin._VERDICTS, [])
        self.sweep = session.config.stash.get(plugin._SWEEP, [])
        collected = session.config.stash.get(plugin._COLLECTOR, None)
        self.outcomes = list(collected.outcomes) if collected is not None else []


def run(args: list[str]) -> tuple[_Verdicts, float, int]:
    import pytest

    probe = _Verdicts()
    start = time.perf_counter()
    code = pytest.main(["prompts/embedded", "-m", "evalsuite", "-q", "-p", "no:cacheprovider", "--no-header",
                        "-rN", "--tb=no", *args], plugins=[probe])
    return probe, time.perf_counter() - start, int(code)


def _short(text: str | None, n: int = 90) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 3] + "..."


def report_variant(v, outcomes: list) -> list[str]:
    mine = [o for o in outcomes if o.recipe == v.variant]
    failed = [o for o in mine if not o.passed]
    excused = [o for o in mine if o.passed and not o.extra.get("floor", {}).get("absolute_passed", True)]
    lines = [f"{v.variant:<28} {'PASS' if v.passed else 'FAIL'}  failing items {len(failed):>3}/{len(mine)}  "
             f"excused by the floor {len(excused):>3}"]
    for f in v.families:
        if not f.failed:
            continue
        lines.append(f"    FAIL {f.describe()}")
        mine_f = [o for o in failed if o.check == f.check]
        example = next((o for o in mine_f if o.case_id not in f.fragile_failures), mine_f[0] if mine_f else None)
        if example is not None:
            lines.append(f"      e.g. {example.case_id}: {_short(example.detail)}")
            if example.baseline_response is not None:
                lines.append(f"        baseline: {_short(example.baseline_response)}")
                lines.append(f"        new:      {_short(example.new_response)}")
    return lines


def sensitivity(outcomes: list, benign: list[str], recipes: list[str]) -> list[str]:
    """Per discriminative set (perplexity / multiple-choice case): the benign spread and how far each
    recipe moved it (deviation in the check's units: perplexity ratio - 1, accuracy drop). A set no recipe
    moves beyond the benign spread carries no signal (issue 10 item 6)."""
    from evalsuite.gate.noise import deviation

    rows: dict[tuple[str, str], dict[str, float]] = {}
    for o in outcomes:
        if o.check in {"perplexity", "mc", "task"}:
            rows.setdefault((o.case_id, o.check), {})[o.recipe] = deviation(o)
    lines = ["per-set sensitivity (deviation: perplexity ratio - 1 / accuracy drop; benign max vs each recipe):"]
    for (case, check), devs in sorted(rows.items()):
        noise = max((devs[b] for b in benign if b in devs), default=0.0)
        moved = [r for r in recipes if devs.get(r, 0.0) > noise]
        cells = "  ".join(f"{r} {devs[r]:.3f}" for r in recipes if r in devs)
        lines.append(f"  {case} [{check}]: benign max {noise:.3f}; moved beyond it by {len(moved)}/{len(recipes)}: "
                     f"{cells}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=8, help="benign replicates in the recorded floor")
    parser.add_argument("--seeds", type=int, default=10, help="benign seeds gated per noise scale")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.03], help="benign variants' noise scales")
    parser.add_argument("--no-recipes", action="store_true", help="gate only the benign variants")
    parser.add_argument("--sweep", action="store_true", help="also sweep freq, reap and merge-cka-uniform")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.125, 0.25, 0.375, 0.5])
    parser.add_argument("--out", default="evalsuite-report/verdicts", help="folder for the HTML reports")
    parser.add_argument("--project-baselines", action="store_true",
                        help="read the project's committed baselines and noise floor instead of recording them "
                             "into a temporary folder (nothing is written to them)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import os

    os.chdir(ROOT)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="evalsuite-verdicts-"))
    baselines = work / "baselines"
    try:
        if args.project_baselines:
            common = [f"--evalsuite-baselines={ROOT / 'baselines'}"]
            print(f"using the committed baselines and noise floor in {ROOT / 'baselines'}")
        else:
            common = [f"--evalsuite-baselines={baselines}"]
            _, record_s, code = run([*common, "--evalsuite-update-baselines",
                                     f"--evalsuite-noise-replicates={args.replicates}"])
            print(f"recorded baselines + noise floor ({args.replicates} replicates, the noise_scales setting "
                  f"cycled): {record_s:.0f} s, exit {code}")
        benign = [f"benign:noise:{s:g}:{100 + i}" for s in args.scales for i in range(args.seeds)]
        benign += ["benign:resave", "benign:bf16", "benign:fp16"]
        recipes = [] if args.no_recipes else RECIPES
        probe, gate_s, code = run([*common, *(f"--evalsuite-recipe={r}" for r in benign + recipes),
                                   f"--evalsuite-html={out / 'verdicts.html'}"])
        print(f"gated {len(benign)} benign variants and {len(recipes)} recipes in one session: {gate_s:.0f} s "
              f"({gate_s / max(1, len(benign) + len(recipes)):.0f} s per variant), exit {code}\n")
        by_label = {v.variant: v for v in probe.verdicts}
        for label in [f"benign:{b.removeprefix('benign:')}" for b in benign]:
            if label in by_label:
                print("\n".join(report_variant(by_label[label], probe.outcomes)))
        passed = sum(by_label[b].passed for b in benign if b in by_label)
        print(f"\nbenign variants: {passed}/{len(benign)} PASS ({passed / max(1, len(benign)):.0%}; target >= 95%)\n")
        from evalsuite.compression.recipe import parse_recipe

        failed = 0
        for recipe in recipes:
            label = parse_recipe(recipe).short
            if label in by_label:
                print("\n".join(report_variant(by_label[label], probe.outcomes)))
                failed += not by_label[label].passed
        if recipes:
            print(f"\nrecipes: {failed}/{len(recipes)} FAIL (target: all)")
        if recipes:
            labels = [parse_recipe(r).short for r in recipes]
            print("\n".join(sensitivity(probe.outcomes, [b for b in benign if b in by_label], labels)))
        fragile = {c for v in probe.verdicts for c in v.fragile}
        print(f"fragile cases (greedy output flips under a floor replicate): {len(fragile)}: "
              f"{', '.join(sorted(fragile))}")
        print(f"HTML report: {out / 'verdicts.html'}")
        if args.sweep:
            ratios = ",".join(f"{r:g}" for r in args.ratios)
            probe, sweep_s, code = run([*common, "--evalsuite-sweep=freq", "--evalsuite-sweep=reap",
                                        "--evalsuite-sweep=merge-cka-uniform", f"--evalsuite-ratios={ratios}",
                                        f"--evalsuite-html={out / 'sweep.html'}"])
            from evalsuite.gate.sweep import sweep_lines

            print(f"\nsweep of freq, reap, merge-cka-uniform over {ratios}: {sweep_s:.0f} s, exit {code}")
            print("\n".join(sweep_lines(probe.sweep)))
            print(f"HTML report with the plot: {out / 'sweep.html'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
