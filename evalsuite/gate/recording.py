"""Recording baselines: what is stored per case, and whether a refresh changed it.

Why separate from the runner: what a baseline holds (response, ids, log-probs, metrics, the engine
that produced it) is the contract every later gate run is judged by; it deserves one place to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalsuite.gate.baselines import BaselineStore
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import baseline_metrics

__all__ = ["LOGPROB_DIGITS", "generative_payload", "write_baseline"]

LOGPROB_DIGITS = 5


def _rounded(values: list[float]) -> list[float]:
    return [round(v, LOGPROB_DIGITS) for v in values]


def generative_payload(
    case: Case, gen: Any, code: dict[str, Any] | None, engine: dict[str, Any], *, prompt: str, answer: Any
) -> dict[str, Any]:
    """A generative case's baseline: the prompt as the model read it (chat template applied), the
    answer (`response`, a reasoning trace split off into the metrics), its ids, top-k log-probs and
    metric values. ``answer`` is the response's ReasoningSplit."""
    metrics = baseline_metrics(case, answer.answer, answer if "reasoning" in case.checks else None)
    if code is not None:
        metrics.update(code)
    sc = gen.scores
    return {
        "kind": case.kind,
        "prompt": prompt,
        "response": answer.answer,
        "finish": gen.finish,
        "prompt_ids": gen.prompt_ids,
        "response_ids": gen.token_ids,
        "metrics": metrics,
        "engine": engine,
        "logprobs": {
            "token": _rounded(sc.token_logprobs),
            "top_ids": sc.top_ids,
            "top_logprobs": [_rounded(row) for row in sc.top_logprobs],
        },
    }


def write_baseline(
    store: BaselineStore, case: Case, payload: dict[str, Any], *, case_hash: str, settings: dict[str, Any],
    settings_hash: str,
) -> tuple[Path, str]:
    """Write one baseline; returns its path and whether it is new, changed or unchanged (for review)."""
    path = store.case_path(case.suite, case.id)
    status = "new"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        # what a reviewer cares about: the response (or a discriminative case's values), not float
        # noise in the stored log-probs
        keys = ("prompt", "response", "response_ids", "finish") if case.generative else ("data", "metrics")
        old = old if isinstance(old, dict) else {}
        same = all(old.get(k) == json.loads(json.dumps(payload.get(k))) for k in keys)
        # a settings change (dtype, top-k, backend) rewrites the stored log-probs: never "unchanged"
        same = same and old.get("case_hash") == case_hash and old.get("settings_hash") == settings_hash
        status = "unchanged" if same else "changed"
    written = store.write_case(case.suite, case.id, case_hash=case_hash, settings=settings,
                               settings_hash=settings_hash, payload=payload)
    return written, status
