"""The gate's checks: each compares the variant's output with the stored baseline through a pure metric.

Why a thin layer: the metrics in evalsuite/metrics/ measure one text (or one pair); the gate decides
what a *regression* is. Every generative check here is relative to the baseline, so the original
model passes against its own baseline by construction (no false alarms), and anything the original
already did (a loop, a foreign word) is not blamed on the compressed model.

Why a registry (`REGISTRY`, at the end): one entry per check holds its name, kind, default tolerance,
the cases it applies to, what it needs from the model and its function. Adding a check is adding one
entry; the settings' defaults, the case parser and the runner all read it from there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalsuite.gate.outcome import CheckOutcome
from evalsuite.metrics.answer import contains_answer
from evalsuite.metrics.answer import contains_text as _contains

if TYPE_CHECKING:
    from evalsuite.gate.cases import Case

__all__ = [
    "CHECKS",
    "REGISTRY",
    "CheckInput",
    "CheckSpec",
    "baseline_metrics",
    "code_program",
    "default_tolerances",
    "run_check",
]

NO_LANGUAGE = {"", "any", "code", "none"}


@dataclass
class CheckInput:
    """What a check may look at: the case, both responses and the precomputed model-side values."""

    case: Case
    tolerance: dict[str, Any]
    baseline_text: str = ""
    new_text: str = ""
    baseline_metrics: dict[str, Any] = field(default_factory=dict)
    # filled by the runner when the check needs the model: teacher-forced scores, code results, ...
    new_values: dict[str, Any] = field(default_factory=dict)
    baseline_logprobs: dict[str, Any] = field(default_factory=dict)
    check: str = ""
    variant: str = ""  # label of the model variant under test

    def verdict(
        self,
        passed: bool,
        baseline_value: Any,
        new_value: Any,
        tolerance: str,
        detail: str,
        extra: dict[str, Any] | None = None,
    ) -> CheckOutcome:
        """The check's verdict as the gate's one outcome type, with the case's context filled in."""
        case = self.case
        return CheckOutcome(
            recipe=self.variant,
            case_id=case.key,
            check=self.check,
            passed=bool(passed),
            baseline_value=baseline_value,
            new_value=new_value,
            tolerance=tolerance,
            baseline_response=self.baseline_text if case.generative else None,
            new_response=self.new_text if case.generative else None,
            detail=detail,
            extra={"prompt": case.prompt, "file": str(case.file), "domain": case.domain,
                   "language": case.language, **(extra or {})},
        )


def _kw(tol: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: tol[k] for k in names if k in tol}


def _round(x: Any, nd: int = 4) -> Any:
    return round(x, nd) if isinstance(x, float) and math.isfinite(x) else x


# -- generative -------------------------------------------------------------------------------------
def check_collapse(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.collapse import check_collapse as metric

    kw = _kw(x.tolerance, "min_chars", "max_degenerate_fraction", "max_char_run")
    new = metric(x.new_text, **kw)
    base = metric(x.baseline_text, **kw)
    passed = new.passed or not base.passed
    detail = new.detail if new.passed or base.passed else f"{new.detail} (the baseline collapsed too: not a regression)"
    return x.verdict(
        passed,
        _round(base.value),
        _round(new.value),
        f"degenerate fraction <= {kw.get('max_degenerate_fraction', 0.2)} unless the baseline collapsed",
        detail,
    )


def check_language(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.language import check_language as metric

    kw = _kw(x.tolerance, "min_confidence", "min_letters")
    allowed = int(x.tolerance.get("max_new_findings", 0))
    expected = x.case.language
    base = metric(x.baseline_text, expected, **kw, max_findings=10**6)
    new = metric(x.new_text, expected, baseline=x.baseline_text, **kw, max_findings=10**6)
    passed = new.value <= base.value + allowed
    return x.verdict(
        passed,
        int(base.value),
        int(new.value),
        f"findings <= baseline + {allowed} (expected language {expected!r})",
        new.detail,
        {"findings": list(new.data.get("findings", []))},
    )


def check_length_ratio(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.length import check_length_ratio as metric

    kw = _kw(x.tolerance, "min_ratio", "max_ratio")
    result = metric(x.new_text, x.baseline_text, **kw)
    return x.verdict(
        result.passed,
        len(x.baseline_text),
        len(x.new_text),
        f"length ratio in [{kw.get('min_ratio')}, {kw.get('max_ratio')}] (got {_round(result.value, 3)})",
        result.detail,
        {"ratio": _round(result.value)},
    )


def check_content(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.drift import check_content_drift as metric

    kw = _kw(x.tolerance, "min_retention", "top_n")
    result = metric(x.new_text, x.baseline_text, **kw)
    kept_by_base = [k for k in x.case.keywords if _contains(x.baseline_text, k)]
    lost_keywords = [k for k in kept_by_base if not _contains(x.new_text, k)]
    passed = result.passed and not lost_keywords
    detail = result.detail
    if lost_keywords:
        detail = f"lost case keyword(s) {', '.join(map(repr, lost_keywords))}; " + detail
    missing_in_base = [k for k in x.case.keywords if k not in kept_by_base]
    if missing_in_base:
        detail += f" (keywords the baseline lacks too, not checked: {', '.join(map(repr, missing_in_base))})"
    return x.verdict(
        passed,
        1.0,
        _round(result.value),
        f"key-term retention >= {kw.get('min_retention', 0.5)}, no new denial, baseline keywords kept",
        detail,
        {"lost_keywords": lost_keywords, **{k: v for k, v in result.data.items() if isinstance(v, str | list)}},
    )


def check_diversity(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.diversity import check_diversity as metric

    result = metric(x.new_text, x.baseline_text, **_kw(x.tolerance, "min_ratio"))
    per_n = {str(n): dict(v) for n, v in result.data.get("per_n", {}).items()}
    worst = per_n.get(str(result.data.get("worst_n")), {})
    return x.verdict(
        result.passed,
        _round(worst.get("baseline")),
        _round(worst.get("new")),
        f"distinct-n >= {result.threshold} x baseline (n = 1, 2, 3)",
        result.detail,
        {"per_n": per_n},
    )


def check_divergence(x: CheckInput) -> CheckOutcome:
    """KL over the baseline's top-k + tail: the new side arrives as [T, k+1] rows, exact on that support."""
    import numpy as np

    from evalsuite.metrics.divergence import check_logit_divergence

    max_kl = float(x.tolerance.get("max_mean_kl", 0.25))
    lp = x.baseline_logprobs
    rows = x.new_values.get("kl_rows")
    if not lp.get("top_ids") or rows is None or len(rows) == 0:
        return x.verdict(True, 0.0, 0.0, f"mean KL <= {max_kl} nats", "empty baseline response: nothing to compare")
    base_lp = np.asarray(lp["top_logprobs"], dtype=np.float64)
    k = base_lp.shape[1]
    local_ids = np.tile(np.arange(k), (base_lp.shape[0], 1))
    result = check_logit_divergence(local_ids, base_lp, np.asarray(rows, dtype=np.float64), max_mean_kl=max_kl)
    return x.verdict(
        result.passed,
        0.0,
        _round(float(result.value)),
        f"mean KL(baseline||new) <= {max_kl} nats",
        result.detail,
        {"per_token_kl": [_round(float(v)) for v in result.data.get("per_position", [])]},
    )


def _chrf(text: str, reference: str) -> float:
    from evalsuite.metrics.translation import chrf

    return float(chrf(text, reference))


def check_chrf(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.translation import check_translation

    assert x.case.reference is not None
    result = check_translation(
        x.new_text, x.case.reference, baseline_hypothesis=x.baseline_text, **_kw(x.tolerance, "max_drop")
    )
    return x.verdict(
        result.passed,
        _round(result.baseline, 2),
        _round(float(result.value), 2),
        f"chrF >= baseline - {x.tolerance.get('max_drop')} = {result.threshold:.1f}",
        result.detail,
    )


def check_answer(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.answer import check_answer_kept

    result = check_answer_kept(x.new_text, x.baseline_text, str(x.case.answer))
    return x.verdict(result.passed, bool(result.baseline), bool(result.value), "answer kept when the baseline had it",
                     result.detail)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(response: str) -> str:
    """The code in a response: its fenced blocks (python or untagged) joined, else the text as is."""
    blocks = [body for lang, body in _FENCE.findall(response) if lang.lower() in {"", "python", "py", "python3"}]
    return "\n\n".join(b.rstrip() for b in blocks) + "\n" if blocks else response


def code_program(case: Case, response: str) -> dict[str, Any]:
    """How a code case's response is run: after the prompt (a completion of the given signature),
    or alone when it (re)defines the entry point itself (e.g. a chat answer with a fenced block)."""
    code = extract_code(response)
    entry = case.entry_point
    standalone = code is not response or (bool(entry) and f"def {entry}(" in code)
    return {"completion": code, "include_prompt": not standalone}


def sampling_of(case: Case) -> tuple[int, float, int] | None:
    """(n, temperature, seed) of a code case's pass@k samples; None = greedy pass@1 only (the default)."""
    tol = case.checks.get("code", {})
    n = int(tol.get("samples", 0))
    return (n, float(tol.get("temperature", 0.8)), int(tol.get("seed", 0))) if n > 0 else None


def _check_code_samples(x: CheckInput, n: int, temperature: float, seed: int) -> CheckOutcome:
    """pass@k from n seeded samples, compared per problem with a paired test: sample j of the baseline
    and of the variant share a random stream, so the exact one-sided McNemar test on the n pairs asks
    whether the variant solves fewer samples than the original did."""
    from evalsuite.errors import BaselineError
    from evalsuite.metrics.passk import pass_at_k
    from evalsuite.metrics.significance import mcnemar_exact

    base = x.baseline_metrics.get("code_samples")
    stored = (base.get("n"), base.get("temperature"), base.get("seed")) if isinstance(base, dict) else None
    if stored != (n, temperature, seed):
        got = "no samples" if stored is None else "n={}, temperature={}, seed={}".format(*stored)
        raise BaselineError(
            f"{x.case.key}: the code check asks for n={n} samples at temperature {temperature} (seed {seed}) but "
            f"the baseline holds {got}; re-record with `evalsuite record` (or set samples = 0 for greedy pass@1)"
        )
    new = x.new_values["code_samples"]["passed"]
    ks = sorted({int(k) for k in x.tolerance.get("k", [1]) if 1 <= int(k) <= n}) or [1]
    before = {k: round(pass_at_k(n, sum(base["passed"]), k), 4) for k in ks}
    after = {k: round(pass_at_k(n, sum(new), k), 4) for k in ks}
    stats = mcnemar_exact([bool(v) for v in base["passed"]], [bool(v) for v in new])
    alpha, max_drop = float(x.tolerance.get("alpha", 0.05)), float(x.tolerance.get("max_drop", 0.0))
    drop = max(before[k] - after[k] for k in ks)
    passed = not (stats.p_value < alpha and drop > max_drop)
    per_k = ", ".join(f"pass@{k} {before[k]:.3f} -> {after[k]:.3f}" for k in ks)
    detail = (f"{per_k} over n={n} samples at T={temperature}; paired McNemar: {stats.b} sample(s) lost, "
              f"{stats.c} gained, p={stats.p_value:.3g} (fails when p < {alpha} and a pass@k drop > {max_drop})")
    top = ks[-1]
    return x.verdict(passed, before[top], after[top], f"paired McNemar p >= {alpha} or pass@k drop <= {max_drop}",
                     detail, {"pass_at_k": {"baseline": before, "new": after}, "mcnemar_p": stats.p_value,
                              "lost": stats.b, "gained": stats.c, "samples": n, "temperature": temperature})


def check_code(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.passk import check_pass_at_k

    sampled = sampling_of(x.case)
    if sampled is not None:
        return _check_code_samples(x, *sampled)
    base = int(bool(x.baseline_metrics.get("code_passed", False)))
    new = int(bool(x.new_values.get("code_passed", False)))
    result = check_pass_at_k([(1, new)], k=1, baseline_counts=[(1, base)], **_kw(x.tolerance, "max_drop"))
    return x.verdict(
        result.passed,
        float(base),
        float(new),
        f"greedy pass@1 >= baseline - {x.tolerance.get('max_drop')}",
        str(x.new_values.get("code_detail", "")) or result.detail,
        {"sandbox": x.new_values["code_sandbox"]} if "code_sandbox" in x.new_values else {},
    )


# -- discriminative ---------------------------------------------------------------------------------
def check_perplexity(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.perplexity import check_perplexity as metric

    base = float(x.baseline_metrics["token_perplexity"])
    new = float(x.new_values["token_perplexity"])
    result = metric(new, base, **_kw(x.tolerance, "max_ratio"), label=x.case.id)
    return x.verdict(
        result.passed,
        _round(base),
        _round(new),
        f"perplexity ratio <= {x.tolerance.get('max_ratio')}",
        f"{result.detail} over {x.new_values.get('docs')} documents",
        {"ratio": _round(float(result.value))},
    )


def check_mc(x: CheckInput) -> CheckOutcome:
    from evalsuite.metrics.significance import check_mc_regression, mcnemar_exact

    base_correct = [bool(v) for v in x.baseline_metrics["correct"]]
    new_correct = [bool(v) for v in x.new_values["correct"]]
    if len(base_correct) != len(new_correct):
        raise ValueError("baseline and new multiple-choice results cover different items; re-record the baseline")
    tol = x.tolerance
    result = check_mc_regression(
        base_correct, new_correct, alpha=float(tol.get("alpha", 0.05)),
        max_accuracy_drop=tol.get("max_accuracy_drop"),
    )
    stats = mcnemar_exact(base_correct, new_correct)
    return x.verdict(
        result.passed,
        _round(stats.base_accuracy),
        _round(stats.new_accuracy),
        f"McNemar p >= {tol.get('alpha')} and accuracy drop <= {tol.get('max_accuracy_drop')}",
        result.detail,
        {"mcnemar_p": stats.p_value, "lost": stats.b, "gained": stats.c},
    )


def check_reasoning(x: CheckInput) -> CheckOutcome:
    """The reasoning trace, split off before the answer checks, judged on its own (metrics.reasoning)."""
    from evalsuite.metrics.reasoning import ReasoningSplit
    from evalsuite.metrics.reasoning import check_reasoning as metric

    stored = x.baseline_metrics["reasoning"]  # {"trace", "closed"}: see baseline_metrics
    base = ReasoningSplit(stored["trace"], x.baseline_text, bool(stored["closed"]))
    new = x.new_values["reasoning"]
    result = metric(new, base, **_kw(x.tolerance, "min_ratio", "max_degenerate_fraction", "max_char_run"))
    return x.verdict(
        result.passed,
        len(base.reasoning),
        len(new.reasoning),
        f"trace >= {x.tolerance.get('min_ratio')} x baseline chars, not degenerate, ended when the baseline's did",
        result.detail,
        {"baseline_reasoning": base.reasoning, "new_reasoning": new.reasoning},
    )


@dataclass(frozen=True)
class CheckSpec:
    """One check: everything the settings, the case parser and the runner need to know about it.

    ``needs`` names what the runner must compute for it: "text" (the greedy responses only), "kl_rows"
    (teacher-forced log-probs of the baseline response), "code" (a sandbox run of the response),
    "rolling" (rolling log-likelihood of documents), "mc" (multiple-choice log-likelihoods) or "lm_eval"
    (an lm-eval task run on the model, per-item outcomes).
    ``applies`` says whether a case of its kind runs the check by default; ``requires`` says why not.
    """

    name: str
    kind: str  # "generative" | "discriminative"
    tolerance: dict[str, Any]
    run: Callable[[CheckInput], CheckOutcome]
    needs: str = "text"
    applies: Callable[[Case], bool] = lambda case: True
    requires: str = "does not apply to this case"


def _generative(case: Case) -> bool:
    return case.kind == "generate"


REGISTRY: dict[str, CheckSpec] = {spec.name: spec for spec in (
    # collapse (metrics.collapse): fails when the new response is degenerate and the baseline's is not
    CheckSpec("collapse", "generative", {"min_chars": 10, "max_degenerate_fraction": 0.2, "max_char_run": 25},
              check_collapse, applies=_generative),
    # language (metrics.language): findings (foreign-script runs, sentences in another language) may
    # exceed the baseline's by at most max_new_findings
    CheckSpec("language", "generative", {"min_confidence": 0.9, "min_letters": 20, "max_new_findings": 0},
              check_language, applies=_generative),
    # length_ratio (metrics.length): len(new) / len(baseline) in characters must lie in [min, max]
    CheckSpec("length_ratio", "generative", {"min_ratio": 0.5, "max_ratio": 3.0}, check_length_ratio,
              applies=_generative),
    # content (metrics.drift): share of the baseline's top_n key terms kept >= min_retention, no new
    # denial/refusal, and every case keyword the baseline contains is still there
    CheckSpec("content", "generative", {"min_retention": 0.5, "top_n": 12}, check_content, applies=_generative),
    # diversity (metrics.diversity): distinct-n (n = 1, 2, 3) of the response >= min_ratio x the baseline's
    CheckSpec("diversity", "generative", {"min_ratio": 0.8}, check_diversity, applies=_generative),
    # divergence (metrics.divergence): mean per-token KL(baseline || new) in nats, teacher-forced on the
    # baseline response, over the baseline's stored top-k tokens plus one tail bucket
    CheckSpec("divergence", "generative", {"max_mean_kl": 0.25}, check_divergence, needs="kl_rows",
              applies=_generative),
    # chrf (metrics.translation): chrF against the case's reference may fall by at most max_drop points
    CheckSpec("chrf", "generative", {"max_drop": 10.0}, check_chrf,
              applies=lambda case: _generative(case) and bool(case.reference), requires="needs a `reference`"),
    # answer: the case's `answer` must still appear in the response when it appeared in the baseline's
    CheckSpec("answer", "generative", {}, check_answer,
              applies=lambda case: _generative(case) and case.answer is not None, requires="needs an `answer`"),
    # code (sandbox + metrics.passk): greedy pass@1 of the case's tests may fall by at most max_drop
    # with samples = n > 0: n seeded samples at `temperature`, pass@k for each k in `k` (unbiased estimator),
    # failing when the paired per-sample McNemar test says p < alpha and some pass@k fell by > max_drop
    CheckSpec("code", "generative", {"max_drop": 0.0, "timeout_s": 10.0, "memory_mb": 1024, "samples": 0,
                                     "temperature": 0.8, "seed": 0, "k": [1], "alpha": 0.05}, check_code,
              needs="code", applies=lambda case: _generative(case) and bool(case.tests), requires="needs `tests`"),
    # perplexity (lm-eval rolling log-likelihood, metrics.perplexity): token perplexity new / baseline
    CheckSpec("perplexity", "discriminative", {"max_ratio": 1.2}, check_perplexity, needs="rolling",
              applies=lambda case: case.kind == "perplexity"),
    # mc (lm-eval multiple_choice, metrics.significance): fails when the exact one-sided McNemar test
    # says the new model is worse (p < alpha) or accuracy fell by more than max_accuracy_drop
    CheckSpec("mc", "discriminative", {"alpha": 0.05, "max_accuracy_drop": 0.1}, check_mc, needs="mc",
              applies=lambda case: case.kind == "multiple_choice"),
    # reasoning (metrics.reasoning): the reasoning trace of a case with a `reasoning` style must not vanish,
    # shrink below min_ratio x the baseline's, collapse into loops / runs or run out of budget inside it,
    # unless the baseline's did too (the answer checks see the answer only)
    CheckSpec("reasoning", "generative", {"min_ratio": 0.5, "max_degenerate_fraction": 0.2, "max_char_run": 25},
              check_reasoning, applies=lambda case: _generative(case) and case.reasoning not in (None, "none"),
              requires="needs a `reasoning` style (think, harmony)"),
    # task (an lm-eval task, gate.lm_eval_tasks): the mc check's paired McNemar test on its per-item outcomes
    CheckSpec("task", "discriminative", {"alpha": 0.05, "max_accuracy_drop": 0.1}, check_mc, needs="lm_eval",
              applies=lambda case: case.kind == "lm_eval"),
)}

#: name -> check function (the registry's functions, for callers that only run checks)
CHECKS: dict[str, Callable[[CheckInput], CheckOutcome]] = {name: spec.run for name, spec in REGISTRY.items()}


def default_tolerances() -> dict[str, dict[str, Any]]:
    """A fresh copy of every check's default tolerance."""
    return {name: dict(spec.tolerance) for name, spec in REGISTRY.items()}


def run_check(name: str, x: CheckInput) -> CheckOutcome:
    """Run one named check; the language check is skipped for cases without a natural language."""
    x.check = name
    if name == "language" and x.case.language.lower() in NO_LANGUAGE:
        return x.verdict(True, None, None, "n/a", f"language check off for language {x.case.language!r}")
    return REGISTRY[name].run(x)


def _distinct2(text: str) -> float:
    from evalsuite.metrics._text import tokenize
    from evalsuite.metrics.diversity import distinct_n

    return float(distinct_n(tokenize(text), 2))


def baseline_metrics(case: Case, text: str, reasoning: Any = None) -> dict[str, Any]:
    """Metric values of the baseline response (its answer), stored with it so a refresh shows up in the
    diff; with a reasoning style, the trace (a ReasoningSplit) too, for the reasoning check."""
    values: dict[str, Any] = {"chars": len(text), "distinct_2": _round(_distinct2(text))}
    if reasoning is not None:
        values["reasoning"] = {"trace": reasoning.reasoning, "closed": reasoning.closed}
    if case.reference:
        values["chrf"] = _round(_chrf(text, case.reference))
    if case.answer is not None:
        values["answer_present"] = contains_answer(text, case.answer)
    return values
