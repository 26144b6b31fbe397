"""Pure quality checks: functions of text, token ids and log-probs; no model needed.

Every ``check_*`` returns a frozen :class:`~evalsuite.metrics.result.CheckResult` with ``passed``,
``value``, ``threshold``, ``op``, ``baseline`` and a ``detail`` line naming what was found. Thresholds
are keyword parameters with defaults; the gate passes tolerances from config.

    collapse      check_collapse(text)                                    empty/short, loops, char runs
    language      check_language(text, expected=None, baseline=None)      language per sentence + script runs
                  (codeswitch: word runs in another language inside a sentence; lingua_detect: detector)
    length        check_length_ratio(text, baseline)                      answer length vs baseline
    drift         check_content_drift / check_term_retention / check_denial (text, baseline)
                  (terms: content terms per script)
    answer        check_answer_kept(text, baseline, answer); contains_answer (numbers by value)
    diversity     check_diversity(text, baseline); distinct_n, repetition_rate
    divergence    check_logit_divergence(base_ids, base_logprobs, new_logprobs); kl_topk, topk_kl,
                  topk_record (top-k record from a full log-prob row)
    translation   check_translation(hyp, ref, baseline_hypothesis=...); chrf, corpus_chrf
    perplexity    check_perplexity(new_ppl, baseline_ppl); perplexity, perplexity_from_logprobs
    significance  check_mc_regression(base_correct, new_correct); mcnemar_exact (exact McNemar)
    passk         check_pass_at_k(counts, baseline_counts=...); pass_at_k (Chen et al. estimator)
"""

from evalsuite.metrics.collapse import check_collapse
from evalsuite.metrics.divergence import check_logit_divergence, kl_topk, topk_kl, topk_record
from evalsuite.metrics.diversity import check_diversity, distinct_n, repetition_rate
from evalsuite.metrics.drift import check_content_drift, check_denial, check_term_retention
from evalsuite.metrics.language import check_language
from evalsuite.metrics.length import check_length_ratio
from evalsuite.metrics.passk import check_pass_at_k, pass_at_k
from evalsuite.metrics.perplexity import check_perplexity
from evalsuite.metrics.result import CheckResult
from evalsuite.metrics.significance import check_mc_regression, mcnemar_exact
from evalsuite.metrics.translation import check_translation, check_translation_corpus, chrf

__all__ = [
    "CheckResult",
    "check_collapse",
    "check_content_drift",
    "check_denial",
    "check_diversity",
    "check_language",
    "check_length_ratio",
    "check_logit_divergence",
    "check_mc_regression",
    "check_pass_at_k",
    "check_perplexity",
    "check_term_retention",
    "check_translation",
    "check_translation_corpus",
    "chrf",
    "distinct_n",
    "kl_topk",
    "mcnemar_exact",
    "pass_at_k",
    "repetition_rate",
    "topk_kl",
    "topk_record",
]
