"""Is a case's expected answer in a response: text as text, numbers by value.

API:
    contains_text(text, term) -> bool            case/whitespace-insensitive; an alphanumeric edge of
                                                 the term must not be glued to another ("5" not in "15")
    number_readings(token) -> set[Decimal]       the values a written number can mean ("1,024" -> 1024
                                                 or 1.024; "1 024" -> 1024; "3,5" -> 3.5)
    contains_answer(text, answer) -> bool        when the answer has a number: the answer's tokens in
                                                 order, numbers compared by value; else contains_text
    check_answer_kept(text, baseline, answer) -> CheckResult
        value 1.0 when the answer is in the new response, baseline 1.0 when it was in the baseline's;
        fails only when the baseline had it and the new response lost it.

Why by value: "1,024", "1.024" (German), "1 024" (French, Russian), "1024 MB" and "1024MB" all carry
the answer 1024; counting them as "answer lost" is a false alarm. A number written so that it has two
readings (1,024: a thousand and twenty-four in English, one point zero two four in German) matches
either: the question is whether the answer is still there, not which locale wrote it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from evalsuite.metrics.result import CheckResult, shorten

# Scripts written without spaces: a number right after such a character is not glued to a word.
_DENSE = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"


def _number_re(separators: str) -> re.Pattern[str]:
    """A written number: optional sign, digit groups joined by one repeated thousands separator and an
    optional decimal part, or plain digits with an optional decimal part."""
    # not glued to a preceding word (x5, v1.2) but a unit may follow (1024MB, 5km)
    return re.compile(
        rf"(?<![.,])(?<![^\W{_DENSE}])[-\u2212]?"
        rf"(?:\d{{1,3}}(?P<sep>[{separators}])\d{{3}}(?:(?P=sep)\d{{3}})*(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?!\d)"
    )


# Thousands separators: comma, dot, apostrophe (Swiss), no-break and thin spaces, and (in one of the
# two readings of a text) the plain space: "1 024" is a number in French, "3 100-page books" is two.
_NUMBER = _number_re(",.'\u00a0\u202f\u2009 ")
_NUMBER_NO_SPACE = _number_re(",.'\u00a0\u202f\u2009")
_WORDISH = re.compile(rf"[{_DENSE}]|[^\W{_DENSE}]+|[^\w\s]")


def contains_text(text: str, term: str) -> bool:
    """Case- and whitespace-insensitive containment; a term that starts/ends with a letter or digit
    must not be glued to another one ("5" is not found in "15", "cat" not in "catalog")."""
    needle = " ".join(term.lower().split())
    hay = " ".join(text.lower().split())
    if not needle:
        return True
    left = r"(?<!\w)" if needle[0].isalnum() else ""
    right = r"(?!\w)" if needle[-1].isalnum() else ""
    if re.search(left + re.escape(needle) + right, hay):
        return True
    # scripts written without spaces (zh, ja) never have word boundaries around a term
    return any(ord(ch) > 0x2E80 for ch in needle) and needle in hay


def _decimal(digits: str) -> Decimal | None:
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


def number_readings(token: str) -> set[Decimal]:
    """Every value the written number ``token`` can stand for (see the module docstring)."""
    sign = "-" if token[:1] in "-\u2212" else ""
    body = token.lstrip("-\u2212")
    seps = [ch for ch in body if not ch.isdigit()]
    readings: set[str] = set()
    if not seps:
        readings.add(body)
    elif len(seps) == 1 and seps[0] in ",.":
        whole, frac = re.split(r"[.,]", body)
        readings.add(f"{whole}.{frac}")  # decimal mark
        if len(frac) == 3:
            readings.add(whole + frac)  # or a thousands separator
    else:
        # a thousands separator repeated, possibly followed by a decimal part after the other mark
        group = seps[0]
        last = seps[-1]
        if last != group and last in ",.":
            whole, frac = body.rsplit(last, 1)
            readings.add(whole.replace(group, "") + "." + frac)
        elif all(s == group for s in seps):
            readings.add(body.replace(group, ""))
    return {d for r in readings if (d := _decimal(sign + r)) is not None}


def _tokens(text: str, *, spaces_group: bool) -> list[str | set[Decimal]]:
    """Words (lower-cased), punctuation and dense-script characters as strings; numbers as the set of
    their readings. ``spaces_group``: whether "1 024" is one number or two."""
    out: list[str | set[Decimal]] = []
    pos = 0
    for m in (_NUMBER if spaces_group else _NUMBER_NO_SPACE).finditer(text):
        out.extend(t.lower() for t in _WORDISH.findall(text[pos : m.start()]))
        out.append(number_readings(m.group(0)))
        pos = m.end()
    out.extend(t.lower() for t in _WORDISH.findall(text[pos:]))
    return out


def _matches(hay: list[str | set[Decimal]], needle: list[str | set[Decimal]]) -> bool:
    def same(h: str | set[Decimal], n: str | set[Decimal]) -> bool:
        if isinstance(h, set) and isinstance(n, set):
            return bool(h & n)
        return h == n

    n = len(needle)
    return any(all(same(hay[i + j], needle[j]) for j in range(n)) for i in range(len(hay) - n + 1))


def contains_answer(text: str, answer: str) -> bool:
    """An answer with a number: its tokens in order, numbers compared by value ("1024" is in "1,024 MB",
    not in "1024.5"); any other answer: as text."""
    if not _NUMBER.search(answer):
        return contains_text(text, answer)
    needle = _tokens(answer, spaces_group=True)
    return any(_matches(_tokens(text, spaces_group=g), needle) for g in (True, False))


def check_answer_kept(text: str, baseline: str, answer: str) -> CheckResult:
    """Fail when the baseline response contained ``answer`` and the new one does not."""
    base = contains_answer(baseline, answer)
    new = contains_answer(text, answer)
    passed = new or not base
    state = "still present" if new else "lost" if base else "absent in both (not a regression)"
    detail = f"answer {answer!r} {state}" + ("" if new or not base else f" in {shorten(text, 80)!r}")
    return CheckResult("answer", passed, float(new), 1.0 if base else 0.0, ">=", detail, baseline=float(base),
                       data={"answer": answer})
