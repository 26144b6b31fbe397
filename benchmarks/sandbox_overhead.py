"""Per-run cost of each sandbox isolation level, side by side with a bare interpreter start.

    PYTHONPATH=. python benchmarks/sandbox_overhead.py [--runs 10]

A code check runs one sandboxed program per case and variant, so the per-run overhead is what the
isolation costs a gate run. Prints the median wall time of a trivial program (and of a HumanEval-style
completion + asserts through run_tests) for: a plain `python -I -S` subprocess, then every level.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from evalsuite.sandbox import isolation_report, run_tests, run_untrusted

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    report = isolation_report()
    print(f"uid {os.geteuid()}, Landlock ABI {report['landlock_abi']}, seccomp {report['seccomp']}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    plain = _median(lambda: subprocess.run([os.path.realpath(sys.executable), "-I", "-S", "-c", "pass"],
                                           check=True), args.runs)
    print(f"{'level':<12}{'trivial (ms)':>14}{'x plain':>9}{'run_tests (ms)':>16}   layers")
    print(f"{'plain':<12}{plain * 1000:>14.0f}{1.0:>9.1f}{'-':>16}")
    for level in ("namespaces", "bwrap", "weak"):
        if report["levels"][level]:
            print(f"{level:<12} unavailable: {report['levels'][level]}")
            continue
        r = run_untrusted("pass\n", level=level)
        assert r.passed, r.reason
        trivial = _median(lambda lv=level: run_untrusted("pass\n", level=lv), args.runs)
        tests = _median(lambda lv=level: run_tests("    return a + b\n", PROMPT, TESTS, "add", level=lv), args.runs)
        print(f"{level:<12}{trivial * 1000:>14.0f}{trivial / plain:>9.1f}{tests * 1000:>16.0f}   {len(r.isolation)}: "
              f"{','.join(r.isolation[1:])}")


if __name__ == "__main__":
    main()
