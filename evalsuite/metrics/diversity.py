"""N-gram diversity (distinct-n, repetition rate) against the baseline response.

API:
    ngrams(tokens, n) -> list[tuple[str, ...]]
    distinct_n(text_or_tokens, n) -> float        unique n-grams / all n-grams, in [0, 1] (0.0 if none)
    repetition_rate(text_or_tokens, n) -> float   1 - distinct_n: share of n-grams that repeat an earlier one
    check_diversity(text, baseline, *, ns=(1, 2, 3), min_ratio=0.8) -> CheckResult
        value = min over n of distinct_n(text) / distinct_n(baseline), op ">=". Measured on the prose:
        fenced/inline code and code identifiers written in prose (get_user_id, os.path.join()) are left
        out, unless the baseline is mostly code (then both texts are measured whole).

Why relative to the baseline: distinct-n depends on length and style; merged experts show up as a drop
from the original model's own diversity on the same prompt, not as a low absolute number.
Why without code: an answer that names `get_user` and `get_user_id` five times each repeats identifiers,
not words; in a German explanation of an API they are not a loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.metrics._text import strip_code_and_identifiers, tokenize
from evalsuite.metrics.result import CheckResult


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of ``tokens``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _toks(text_or_tokens: str | Sequence[str]) -> Sequence[str]:
    return tokenize(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens


def distinct_n(text_or_tokens: str | Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams (Li et al. 2016); 0.0 when there is no n-gram at all."""
    grams = ngrams(_toks(text_or_tokens), n)
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(text_or_tokens: str | Sequence[str], n: int) -> float:
    """Share of n-grams that repeat an earlier n-gram; 0.0 when there is no n-gram."""
    grams = ngrams(_toks(text_or_tokens), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def check_diversity(
    text: str, baseline: str, *, ns: Sequence[int] = (1, 2, 3), min_ratio: float = 0.8
) -> CheckResult:
    """Fail when distinct-n of the answer dropped below ``min_ratio`` x the baseline's, for any n."""
    new_t, base_t = tokenize(text), tokenize(baseline)
    base_prose = tokenize(strip_code_and_identifiers(baseline))
    prose_only = 2 * len(base_prose) >= len(base_t)  # a mostly-code answer is measured whole
    if prose_only:
        new_t, base_t = tokenize(strip_code_and_identifiers(text)), base_prose
    per_n: dict[int, dict[str, float]] = {}
    worst_n, worst = ns[0], float("inf")
    for n in ns:
        d_new, d_base = distinct_n(new_t, n), distinct_n(base_t, n)
        # A baseline too short to have n-grams gives nothing to compare against.
        ratio = 1.0 if d_base == 0.0 else d_new / d_base
        per_n[n] = {"new": d_new, "baseline": d_base, "ratio": ratio}
        if ratio < worst:
            worst_n, worst = n, ratio
    passed = worst >= min_ratio
    w = per_n[worst_n]
    detail = (f"distinct-{worst_n} {w['new']:.3f} vs baseline {w['baseline']:.3f} "
              f"(ratio {w['ratio']:.2f}, repetition rate {1 - w['new']:.3f})")
    return CheckResult("diversity", passed, worst, min_ratio, ">=", detail, baseline=1.0,
                       data={"per_n": per_n, "worst_n": worst_n, "prose_only": prose_only})
