"""The gate: prompt cases, stored baselines, and the checks that compare a model variant with them.

Modules:
    cases.py          YAML prompt cases (`load_case_file`, `Case`); format in prompts/README.md
    baselines.py      `BaselineStore`: one diffable JSON per case per model fingerprint, atomic writes,
                      missing/stale detection
    checks.py         baseline-relative checks over the pure metrics in evalsuite/metrics/, and the
                      check registry (`REGISTRY`: name, kind, default tolerance, needs, function)
    outcome.py        `CheckOutcome`, the one verdict type every check returns and every report reads
    models.py         variants (base / recipe / checkpoint), the model cache, in-place activation
    plan.py           a variant's work plan: every request collected, one backend call per request type
    recording.py      what a baseline stores (response, ids, log-probs, metrics, engine)
    runner.py         `Gate`: orchestration (baselines, plans, checks, outcomes)
The backends that answer a plan (hf, vllm, openai) are in evalsuite/backends/; held-out data paths and
the calibration/evaluation split in evalsuite/heldout.py.
    lm_eval_checks.py perplexity / multiple-choice scoring through lm-eval
    testing.py        tiny checkpoints for testing a gate setup
The pytest side (options, collection, fixtures, reporting hooks) is evalsuite/plugin.py.
"""
