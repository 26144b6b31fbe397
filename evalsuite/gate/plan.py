"""A variant's work plan: every request its checks need, collected first, then one batched pass per
request type (like lm-eval's request model).

Why: every check of every case reads the same few model outputs (the greedy response, the teacher-
forced log-probs of the baseline response, per-document log-likelihoods, per-item MC outcomes). Asking
the backend once per request type with everything a variant needs keeps batches full (what makes a
serving engine fast), and keeps the model work out of the checks, which only compare numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evalsuite.backends.base import Backend, GenerateRequest, ScoreRequest
from evalsuite.errors import BaselineError
from evalsuite.gate.cases import Case
from evalsuite.gate.checks import REGISTRY, code_program, sampling_of
from evalsuite.gate.lm_eval_checks import mc_accuracy, token_perplexity
from evalsuite.gate.lm_eval_tasks import task_values
from evalsuite.heldout import case_rows

__all__ = ["WorkPlan", "build_plan", "execute", "needs_of"]


def needs_of(case: Case) -> set[str]:
    """What the case's checks need from the model (see CheckSpec.needs)."""
    return {REGISTRY[name].needs for name in case.checks}


@dataclass
class WorkPlan:
    """Requests of one variant, by case key, grouped by request type."""

    generate: dict[str, GenerateRequest] = field(default_factory=dict)
    score: dict[str, ScoreRequest] = field(default_factory=dict)
    rolling: dict[str, list[str]] = field(default_factory=dict)
    mc: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    code: dict[str, Case] = field(default_factory=dict)  # run in the sandbox after generation
    lm_eval: dict[str, Case] = field(default_factory=dict)  # lm-eval task cases, one task run each
    top_k: int = 0  # > 0 when recording: generation also returns the top-k log-probs per new token

    def __len__(self) -> int:
        return len(self.generate) + len(self.score) + len(self.rolling) + len(self.mc) + len(self.lm_eval)


def build_plan(
    cases: list[Case],
    *,
    prompt_ids: Callable[[Case], list[int]],
    budget: Callable[[Case], int],
    baseline: Callable[[Case], Any] | None,
    top_k: int = 0,
) -> WorkPlan:
    """The requests for ``cases``. ``baseline`` gives a case's stored baseline (for teacher-forced
    scoring of its response); None means recording, where responses are generated with log-probs."""
    plan = WorkPlan(top_k=top_k)
    for case in cases:
        needs = needs_of(case)
        if case.generative:
            plan.generate[case.key] = GenerateRequest(tuple(prompt_ids(case)), budget(case), tuple(case.stop))
            if "code" in needs or (baseline is None and case.tests):
                plan.code[case.key] = case
            if "kl_rows" in needs and baseline is not None:
                try:
                    stored = baseline(case)
                except BaselineError:
                    continue  # the check itself reports the missing / stale baseline
                top_ids = stored.logprobs.get("top_ids", [])
                plan.score[case.key] = ScoreRequest(
                    tuple(prompt_ids(case)), tuple(stored.response_ids), tuple(tuple(t) for t in top_ids)
                )
        elif "rolling" in needs:
            plan.rolling[case.key] = [row["text"] for row in case_rows(case)]
        elif "mc" in needs:
            plan.mc[case.key] = case_rows(case)
        elif "lm_eval" in needs:
            plan.lm_eval[case.key] = case
    return plan


def _with_tail(rows: list[list[float]]) -> list[list[float]]:
    """Log-probs at the baseline's top-k ids plus log of the remaining mass: an exact k+1-outcome
    distribution for the KL."""
    out = []
    for row in rows:
        rest = 1.0 - sum(math.exp(v) for v in row)
        out.append([*row, math.log(max(rest, 1e-30))])
    return out


def _split(keys: list[str], lengths: list[int], flat: list[Any]) -> dict[str, list[Any]]:
    out, offset = {}, 0
    for key, n in zip(keys, lengths, strict=True):
        out[key] = flat[offset : offset + n]
        offset += n
    return out


def _perplexity_values(docs: list[Any], texts: list[str]) -> dict[str, Any]:
    return {
        "docs": len(docs),
        "token_perplexity": round(float(token_perplexity(docs)), 6),
        "loglikelihood": [round(float(d.loglikelihood), 4) for d in docs],
    }


def _mc_values(items: list[Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "items": len(items),
        "accuracy": round(float(mc_accuracy(items)), 6),
        "correct": [int(bool(i.acc)) for i in items],
        "ids": [str(r.get("id", i)) for i, r in enumerate(rows)],
    }


def execute(
    plan: WorkPlan, backend: Backend, *, top_k: int, timing: Any, sandbox: str = "strong",
    answer: Callable[[Case, Any], str] = lambda case, gen: gen.text,
) -> dict[tuple[str, str], Any]:
    """Run the plan: one backend call per request type. Returns {(case key, what): value} with what in
    gen (Generation), kl_rows, code (sandbox result, at isolation level ``sandbox``), disc (perplexity /
    MC / lm-eval task values). ``answer`` gives the part of a response the checks judge (a reasoning
    trace split off)."""
    results: dict[tuple[str, str], Any] = {}
    if plan.generate:
        keys = list(plan.generate)
        start = time.perf_counter()
        gens = backend.generate([plan.generate[k] for k in keys], top_k=plan.top_k)
        timing.generate_s += time.perf_counter() - start
        timing.prompts += len(keys)
        results.update({(k, "gen"): g for k, g in zip(keys, gens, strict=True)})
    if plan.score:
        keys = list(plan.score)
        start = time.perf_counter()
        scores = backend.score([plan.score[k] for k in keys], top_k=top_k)
        timing.score_s += time.perf_counter() - start
        results.update({(k, "kl_rows"): _with_tail(s.gathered) for k, s in zip(keys, scores, strict=True)})
    for key, case in plan.code.items():
        results[(key, "code")] = run_code(case, answer(case, results[(key, "gen")]), level=sandbox)
    _sample_code(plan, backend, results, timing=timing, sandbox=sandbox, answer=answer)
    for kind, requests, call, summary in (
        ("perplexity", plan.rolling, backend.loglikelihood_rolling, _perplexity_values),
        ("multiple_choice", plan.mc, backend.multiple_choice, _mc_values),
    ):
        if not requests:
            continue
        keys = list(requests)
        start = time.perf_counter()
        flat = call([row for k in keys for row in requests[k]])
        timing.extra[kind] = timing.extra.get(kind, 0.0) + time.perf_counter() - start
        for key, mine in _split(keys, [len(requests[k]) for k in keys], flat).items():
            results[(key, "disc")] = summary(mine, requests[key])
    for key, case in plan.lm_eval.items():
        start = time.perf_counter()
        results[(key, "disc")] = task_values(backend, case)
        timing.extra["lm_eval"] = timing.extra.get("lm_eval", 0.0) + time.perf_counter() - start
    return results


def _sample_code(plan: WorkPlan, backend: Backend, results: dict[tuple[str, str], Any], *, timing: Any,
                 sandbox: str, answer: Callable[[Case, Any], str]) -> None:
    """Code pass@k: n seeded samples per code case that asks for them (code check `samples` > 0), each run
    in the sandbox; per-sample outcomes go next to the greedy result (the baseline stores them)."""
    groups: dict[tuple[int, float, int], list[str]] = {}
    for key, case in plan.code.items():
        wanted = sampling_of(case)
        if wanted is not None:
            groups.setdefault(wanted, []).append(key)
    for (n, temperature, seed), keys in groups.items():
        start = time.perf_counter()
        samples = backend.sample([plan.generate[k] for k in keys], n=n, temperature=temperature, seed=seed)
        timing.extra["code samples"] = timing.extra.get("code samples", 0.0) + time.perf_counter() - start
        for key, gens in zip(keys, samples, strict=True):
            case = plan.code[key]
            passed = [int(run_code(case, answer(case, g), level=sandbox)["code_passed"]) for g in gens]
            results[(key, "code")]["code_samples"] = {"n": n, "temperature": temperature, "seed": seed,
                                                      "passed": passed}


def run_code(case: Case, response: str, *, level: str = "strong") -> dict[str, Any]:
    """Run the case's tests on a response in the sandbox (never in this process). A sandbox that
    cannot run them at ``level`` is an error, not a failing sample."""
    from evalsuite.sandbox import SandboxUnavailable, run_tests

    tol = case.checks.get("code", {})
    program = code_program(case, response)
    result = run_tests(
        program["completion"],
        case.prompt,
        "\n".join(case.tests),
        case.entry_point or "",
        include_prompt=program["include_prompt"],
        timeout_s=float(tol.get("timeout_s", 10.0)),
        memory_mb=int(tol.get("memory_mb", 1024)),
        level=level,
    )
    if result.status == "error":
        raise SandboxUnavailable(f"{case.key}: code check not run: {result.reason}")
    detail = "tests passed" if result.passed else f"tests {result.status}: {result.reason}"
    return {"code_passed": bool(result.passed), "code_detail": f"{detail[:280]} [sandbox: {result.level}]",
            "code_sandbox": result.level}
