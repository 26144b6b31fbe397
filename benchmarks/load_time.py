"""Time to load the embedded default model (target: under 2 s), and what the fingerprint adds.

Prints, measured side by side in one run: plain `from_pretrained` (model + tokenizer), evalsuite's
`load_model` (same, plus safety checks and the weight fingerprint), and the ratio between them.
Run: .venv/bin/python benchmarks/load_time.py [--repeats 5] [--model PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time

from evalsuite.model.loading import configure_torch, default_model_path, load_model


def _best_of(repeats: int, func) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    configure_torch(1)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = args.model or default_model_path()

    def plain() -> None:
        AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, local_files_only=True)
        AutoTokenizer.from_pretrained(path, local_files_only=True)

    plain()  # warm the page cache and imports for both contestants
    plain_best, plain_median = _best_of(args.repeats, plain)
    ours_best, ours_median = _best_of(args.repeats, lambda: load_model(args.model))
    print(f"model: {path}")
    print(f"plain from_pretrained   best {plain_best:6.3f} s   median {plain_median:6.3f} s")
    print(f"evalsuite load_model    best {ours_best:6.3f} s   median {ours_median:6.3f} s")
    print(f"ratio load_model/plain  {ours_median / plain_median:5.2f}x   target: load_model under 2 s -> "
          f"{'met' if ours_median < 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
