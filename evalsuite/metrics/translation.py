"""Translation quality: chrF (sacrebleu) against the reference, compared with the baseline's score.

API:
    chrf(hypothesis, reference) -> float                       sentence chrF, 0..100
    corpus_chrf(hypotheses, references) -> float               corpus chrF, 0..100
    check_translation(hypothesis, reference, *, baseline_hypothesis=None, baseline_score=None,
                      max_drop=10.0, min_score=None) -> CheckResult
        value = chrF of the new translation; threshold = baseline chrF - max_drop (op ">="),
        or min_score when there is no baseline.
    check_translation_corpus(hypotheses, references, *, baseline_hypotheses=None, baseline_score=None,
                             max_drop=5.0, min_score=None) -> CheckResult      same, corpus-level.

Why chrF: character n-grams score morphologically rich targets and partial words fairly, and a
half-English, half-Chinese "Spanish" translation loses most of its character n-grams.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.metrics.result import CheckResult, shorten


def _metric():  # type: ignore[no-untyped-def]
    from sacrebleu.metrics import CHRF

    return CHRF()


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF (0..100)."""
    return float(_metric().sentence_score(hypothesis, [reference]).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level chrF (0..100) over aligned hypothesis/reference lists."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return float(_metric().corpus_score(list(hypotheses), [list(references)]).score)


def _threshold(base: float | None, max_drop: float, min_score: float | None) -> float:
    if base is None and min_score is None:
        raise ValueError("give baseline_hypothesis/baseline_score or min_score to compare against")
    cands = []
    if base is not None:
        cands.append(base - max_drop)
    if min_score is not None:
        cands.append(min_score)
    return max(cands)


def check_translation(
    hypothesis: str,
    reference: str,
    *,
    baseline_hypothesis: str | None = None,
    baseline_score: float | None = None,
    max_drop: float = 10.0,
    min_score: float | None = None,
) -> CheckResult:
    """Fail when chrF fell more than ``max_drop`` points below the baseline's (or below min_score)."""
    score = chrf(hypothesis, reference)
    base = baseline_score
    if base is None and baseline_hypothesis is not None:
        base = chrf(baseline_hypothesis, reference)
    thr = _threshold(base, max_drop, min_score)
    passed = score >= thr
    detail = f"chrF {score:.1f}" + (f" vs baseline {base:.1f}" if base is not None else "")
    detail += f" (min {thr:.1f}) for {shorten(hypothesis, 80)!r}"
    return CheckResult("translation_chrf", passed, score, thr, ">=", detail, baseline=base,
                       data={"reference": reference})


def check_translation_corpus(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    baseline_hypotheses: Sequence[str] | None = None,
    baseline_score: float | None = None,
    max_drop: float = 5.0,
    min_score: float | None = None,
) -> CheckResult:
    """Corpus-level version; data["worst"] names the sentences that lost the most chrF."""
    score = corpus_chrf(hypotheses, references)
    base = baseline_score
    worst: list[dict[str, object]] = []
    if baseline_hypotheses is not None:
        if len(baseline_hypotheses) != len(hypotheses):
            raise ValueError(f"{len(baseline_hypotheses)} baseline hypotheses but {len(hypotheses)} new ones")
        if base is None:
            base = corpus_chrf(baseline_hypotheses, references)
        drops = []
        for i, (h, b, r) in enumerate(zip(hypotheses, baseline_hypotheses, references, strict=True)):
            drops.append((chrf(b, r) - chrf(h, r), i))
        drops.sort(reverse=True)
        worst = [{"index": i, "drop": d, "hypothesis": hypotheses[i]} for d, i in drops[:3] if d > 0]
    thr = _threshold(base, max_drop, min_score)
    passed = score >= thr
    detail = f"corpus chrF {score:.1f}" + (f" vs baseline {base:.1f}" if base is not None else "")
    detail += f" (min {thr:.1f})"
    if worst and not passed:
        detail += f"; worst: #{worst[0]['index']} {shorten(str(worst[0]['hypothesis']), 60)!r}"
    return CheckResult("translation_chrf", passed, score, thr, ">=", detail, baseline=base,
                       data={"worst": worst, "n": len(hypotheses)})
