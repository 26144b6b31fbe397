"""The gate: prompt cases, stored baselines, and the checks that compare a model variant with them.

Modules:
    cases.py          YAML prompt cases (`load_case_file`, `Case`); format in prompts/README.md
    baselines.py      `BaselineStore`: one diffable JSON per case per model fingerprint, atomic writes,
                      missing/stale detection
    checks.py         baseline-relative checks over the pure metrics in evalsuite/metrics/
    runner.py         `Gate`: variants (base / recipe / checkpoint), one batched generation pass per
                      variant, caches, recording, outcomes
    lm_eval_checks.py perplexity / multiple-choice scoring through lm-eval
    testing.py        tiny checkpoints for testing a gate setup
The pytest side (options, collection, fixtures, reporting hooks) is evalsuite/plugin.py.
"""
