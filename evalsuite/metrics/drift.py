"""Content drift: key terms of the baseline answer that the new answer lost, and new denials/refusals.

API:
    key_terms(text, *, top_n=12) -> list[str]      most frequent content terms, per script (metrics.terms)
    term_retention(text, baseline, *, top_n=12) -> tuple[float, list[str]]   (share kept, lost terms)
    find_denial(text, patterns=None, *, subjects=None) -> str | None   the matched denial/refusal phrase
        (DENIAL_PATTERNS always; WEAK_DENIAL_PATTERNS such as "does not exist" only right after one of
        ``subjects``, the baseline's key terms, when given)
    check_term_retention(text, baseline, *, min_retention=0.5, top_n=12) -> CheckResult
        value = share of the baseline's key terms still present, op ">=".
    check_denial(text, baseline, *, patterns=DENIAL_PATTERNS) -> CheckResult
        value = 1.0 if the new answer denies/refuses while the baseline did not, else 0.0; op "<=" 0.
    check_content_drift(text, baseline, *, min_retention=0.5, top_n=12) -> CheckResult
        both of the above; fails if either fails (value = retention).

Why both: the pruned model's "there no such term as 'monad'" keeps the key words (monad, functional,
programming) yet flips the answer into a denial; a shortened answer drops the terms without denying.
"""

from __future__ import annotations

import re
from collections import Counter

from evalsuite.metrics._text import strip_code
from evalsuite.metrics.result import CheckResult, shorten
from evalsuite.metrics.terms import content_terms, lost_terms, stem


def key_terms(text: str, *, top_n: int = 12) -> list[str]:
    """The baseline's content terms (see :mod:`evalsuite.metrics.terms`), most frequent first."""
    terms = content_terms(strip_code(text))
    counts = Counter(terms)
    order = {t: i for i, t in reversed(list(enumerate(terms)))}
    return sorted(counts, key=lambda t: (-counts[t], order[t]))[:top_n]


def term_retention(text: str, baseline: str, *, top_n: int = 12) -> tuple[float, list[str]]:
    """Share of the baseline's key terms found in ``text``, and the lost ones."""
    terms = key_terms(baseline, top_n=top_n)
    if not terms:
        return 1.0, []
    lost = lost_terms(terms, text)
    return 1.0 - len(lost) / len(terms), lost


_APOS = "['’]"
# Phrases that deny or refuse whatever the context. WEAK_DENIAL_PATTERNS ("does not exist") also occur
# in ordinary explanations ("if the file does not exist, ..."), so they only count when one of the
# baseline's key terms appears shortly before them in the same sentence ("monads do not exist").
DENIAL_PATTERNS: tuple[str, ...] = (
    # English: denial of existence
    r"\bthere(?:\s+is|\s+are|" + _APOS + r"s)?\s+no\s+such\b",
    r"\bno\s+such\s+(?:thing|term|concept|word|function|method|module|library|person|place)\b",
    r"\bis\s*(?:not|n" + _APOS + r"t)\s+a\s+real\b",
    r"\bis\s+a\s+(?:made[- ]up|fictional|non-?existent)\b",
    # English: refusal / inability
    r"\bI\s*(?:can" + _APOS + r"t|cannot|can\s+not|am\s+unable\s+to|" + _APOS + r"m\s+unable\s+to|"
    r"am\s+not\s+able\s+to|" + _APOS + r"m\s+not\s+able\s+to|won" + _APOS + r"t\s+be\s+able\s+to)\b",
    r"\bI\s*(?:do\s+not|don" + _APOS + r"t)\s+know\b",
    r"\bI\s*(?:" + _APOS + r"m|\s+am)\s+sorry,?\s+but\b",
    r"\bas\s+an\s+AI\b",
    # Spanish
    r"\bno\s+hay\s+(?:tal|ning[uú]n|ninguna)\b",
    r"\bno\s+(?:puedo\s+(?:ayudar|responder)|lo\s+sé|sé)\b",
    r"\blo\s+siento,?\s+pero\b",
    # French
    r"\bje\s+ne\s+(?:peux|sais)\s+pas\b",
    r"\bil\s+n" + _APOS + r"existe\s+pas\s+de\b",
    # German
    r"\bso\s+etwas\s+gibt\s+es\s+nicht\b",
    r"\bich\s+kann\s+(?:nicht|kein)\b",
    # Russian
    r"\bтакого\s+\w+\s+не\s+существует",
    r"\bне\s+могу\b",
    # Chinese / Japanese
    r"没有(?:这样|这种)",
    r"我(?:无法|不能|不知道)",
    r"わかりません",
)
WEAK_DENIAL_PATTERNS: tuple[str, ...] = (
    r"\b(?:does|do|did)\s*(?:not|n" + _APOS + r"t)\s+exist\b",
    r"\bno\s+exist(?:e|en)\b",
    r"\bn" + _APOS + r"existe(?:nt)?\s+pas\b",
    r"\bexistier(?:t|en)\s+nicht\b",
    r"\b(?:gibt\s+es\s+(?:nicht|kein(?:e|en)?)|es\s+gibt\s+kein(?:e|en)?)\b",
    r"не\s+существует",
    r"不存在",
    r"存在しません",
)
_DENIAL_RE = tuple(re.compile(p, re.IGNORECASE) for p in DENIAL_PATTERNS)
_WEAK_RE = tuple(re.compile(p, re.IGNORECASE) for p in WEAK_DENIAL_PATTERNS)


def find_denial(
    text: str, patterns: tuple[str, ...] | None = None, *, subjects: list[str] | None = None
) -> str | None:
    """The first denial/refusal phrase in ``text`` (with a little context), or None.

    ``subjects``: terms whose denial counts for the weak patterns ("X does not exist"); None means any
    subject. Custom ``patterns`` replace both pattern lists and always count.
    """
    prose = strip_code(text)
    hits: list[re.Match[str]] = []
    if patterns is not None:
        hits = [m for p in patterns if (m := re.search(p, prose, re.IGNORECASE))]
    else:
        hits = [m for rx in _DENIAL_RE if (m := rx.search(prose))]
        for rx in _WEAK_RE:
            for m in rx.finditer(prose):
                if subjects is None or _subject_before(prose, m.start(), subjects):
                    hits.append(m)
                    break
    if not hits:
        return None
    m = min(hits, key=lambda h: h.start())
    a = max(0, m.start() - 30)
    return prose[a : m.end() + 40]


def _subject_before(prose: str, pos: int, subjects: list[str]) -> bool:
    """Is one of ``subjects`` named in the same sentence, at most ~60 characters before ``pos``?"""
    window = prose[max(0, pos - 60) : pos]
    window = re.split(r"[.!?。！？\n]", window)[-1].lower()
    return any(stem(s.lower()) in window for s in subjects)


def check_term_retention(
    text: str, baseline: str, *, min_retention: float = 0.5, top_n: int = 12
) -> CheckResult:
    """Fail when the answer lost too many of the baseline answer's key terms."""
    kept, lost = term_retention(text, baseline, top_n=top_n)
    terms = key_terms(baseline, top_n=top_n)
    passed = kept >= min_retention
    detail = (f"kept {len(terms) - len(lost)}/{len(terms)} baseline key terms"
              + (f"; lost: {', '.join(lost)}" if lost else ""))
    return CheckResult("term_retention", passed, kept, min_retention, ">=", detail, baseline=1.0,
                       data={"terms": terms, "lost": lost})


def check_denial(text: str, baseline: str, *, patterns: tuple[str, ...] | None = None) -> CheckResult:
    """Fail when the answer denies or refuses while the baseline answered."""
    subjects = key_terms(baseline, top_n=8)
    new_hit = find_denial(text, patterns, subjects=subjects)
    base_hit = find_denial(baseline, patterns)
    regressed = new_hit is not None and base_hit is None
    if regressed:
        detail = f"new answer denies/refuses where the baseline answered: {shorten(new_hit or '', 100)!r}"
    elif new_hit is not None:
        detail = f"denial present in both the baseline and the new answer: {shorten(new_hit, 100)!r}"
    else:
        detail = "no denial or refusal"
    return CheckResult("denial", not regressed, 1.0 if regressed else 0.0, 0.0, "<=", detail,
                       baseline=0.0 if base_hit is None else 1.0,
                       data={"new_match": new_hit, "baseline_match": base_hit})


def check_content_drift(
    text: str,
    baseline: str,
    *,
    min_retention: float = 0.5,
    top_n: int = 12,
    patterns: tuple[str, ...] | None = None,
) -> CheckResult:
    """Term retention and denial in one result; fails if either does."""
    ret = check_term_retention(text, baseline, min_retention=min_retention, top_n=top_n)
    den = check_denial(text, baseline, patterns=patterns)
    passed = ret.passed and den.passed
    detail = den.detail if not den.passed else ret.detail
    if not den.passed and not ret.passed:
        detail = f"{den.detail}; {ret.detail}"
    return CheckResult("content_drift", passed, ret.value, min_retention, ">=", detail, baseline=1.0,
                       data={"lost": ret.data["lost"], "terms": ret.data["terms"],
                             "denial": den.data["new_match"], "denial_regressed": not den.passed})
