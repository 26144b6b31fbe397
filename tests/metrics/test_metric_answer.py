"""Answers compared by value: each language's way of writing a number as a pair. The same value written
its own way (thousands separators, spaces, units) passes; a different value fails."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalsuite.metrics.answer import check_answer_kept, contains_answer, contains_text, number_readings

# language, answer, baseline response, regression (other value), benign (same value, other notation)
PAIRS = [
    ("en", "1024", "The buffer holds 1024 bytes.", "The buffer holds 1,042 bytes.", "The buffer holds 1,024 bytes."),
    ("de", "1024", "Der Puffer fasst 1024 Byte.", "Der Puffer fasst 1.042 Byte.", "Der Puffer fasst 1.024 Byte."),
    ("fr", "1024", "Le tampon contient 1024 octets.", "Le tampon contient 1 042 octets.",
     "Le tampon contient 1 024 octets."),
    ("ru", "1024", "Буфер вмещает 1024 байта.", "Буфер вмещает 10 24 байта.", "Буфер вмещает 1\u00a0024 байта."),
    ("de-CH", "1024", "Der Puffer fasst 1024 Byte.", "Der Puffer fasst 1'204 Byte.", "Der Puffer fasst 1'024 Byte."),
    ("es", "3.5", "El resultado es 3.5 metros.", "El resultado es 35 metros.", "El resultado es 3,5 metros."),
    ("it", "2048 MB", "Servono 2048 MB di memoria.", "Servono 2048 GB di memoria.", "Servono 2.048MB di memoria."),
    ("pt", "-12", "A temperatura foi de -12 graus.", "A temperatura foi de 12 graus.",
     "A temperatura foi de \u221212 graus."),
    ("sv", "1500000", "Staden har 1500000 invånare.", "Staden har 150000 invånare.",
     "Staden har 1\u202f500\u202f000 invånare."),
    ("ja", "1024", "バッファは1024バイトです。", "バッファは1042バイトです。", "バッファは1,024バイトです。"),
    ("zh", "42个", "一共有42个苹果。", "一共有24个苹果。", "总共是 42 个苹果。"),
    ("ko", "1024", "버퍼는 1024바이트입니다.", "버퍼는 102바이트입니다.", "버퍼는 1,024바이트입니다."),
    ("en-arith", "answer 514", "Q: 20+494=?\nA: 20+494 ... answer 514", "A: answer 5140", "So the answer 514."),
]


@pytest.mark.parametrize(("lang", "answer", "base", "bad", "good"), PAIRS, ids=[p[0] for p in PAIRS])
def test_answer_pairs(lang: str, answer: str, base: str, bad: str, good: str) -> None:
    assert contains_answer(base, answer)
    r = check_answer_kept(bad, base, answer)
    assert not r.passed and "lost" in r.detail
    ok = check_answer_kept(good, base, answer)
    assert ok.passed, ok.detail


def test_readings() -> None:
    assert number_readings("1,024") == {Decimal("1024"), Decimal("1.024")}
    assert number_readings("1.024.000") == {Decimal("1024000")}
    assert number_readings("1,024.5") == number_readings("1.024,5") == {Decimal("1024.5")}
    assert number_readings("3,5") == {Decimal("3.5")}
    assert number_readings("\u22125") == {Decimal("-5")}


def test_digits_glued_to_other_digits_or_words_are_not_the_answer() -> None:
    assert not contains_answer("it is 15", "5") and not contains_answer("variable x5", "5")
    assert not contains_answer("1024.5 bytes", "1024")
    assert contains_answer("I have 3 100-page books", "3")  # "3 100" is also two numbers


def test_answer_absent_in_both_is_not_a_regression() -> None:
    r = check_answer_kept("no idea", "still no idea", "42")
    assert r.passed and "absent in both" in r.detail


def test_text_answers_unchanged() -> None:
    assert contains_answer("The capital is Paris.", "paris") and not contains_answer("Parisian", "Paris")
    assert contains_text("首都是东京。", "东京")


@given(st.integers(min_value=0, max_value=10**9))
def test_any_grouping_of_an_integer_is_found(n: int) -> None:
    grouped = f"{n:,}"
    for sep in (",", ".", "\u00a0", " "):
        assert contains_answer(f"total: {grouped.replace(',', sep)} units", str(n))
