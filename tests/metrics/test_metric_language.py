from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seed_texts import MONAD_BASE, SPANISH_BASE, SPANISH_CJK, SPANISH_EN_SENTENCE

from evalsuite.metrics.language import (
    char_script,
    check_language,
    detect_language,
    foreign_runs,
    normalize_lang,
    split_sentences,
)


def test_seed_han_run_inside_spanish_is_flagged() -> None:
    r = check_language(SPANISH_CJK, "es")
    assert not r.passed
    kinds = {f["kind"] for f in r.data["findings"]}
    assert "foreign_script" in kinds
    run = next(f for f in r.data["findings"] if f["kind"] == "foreign_script")
    assert run["run"] == "我" and run["scripts"] == ["Han"]
    assert "我" in r.detail and "El clima" in r.detail
    # The English half is caught on its own too.
    assert any(f["kind"] in {"segment_language", "sentence_language"} and f["detected"] == "en"
               for f in r.data["findings"])


def test_english_sentence_in_spanish_answer_is_flagged() -> None:
    r = check_language(SPANISH_EN_SENTENCE, "es")
    assert not r.passed
    f = [x for x in r.data["findings"] if x["kind"] == "sentence_language"]
    assert f and f[0]["detected"] == "en" and "water" in f[0]["sentence"]


def test_baselines_pass() -> None:
    assert check_language(SPANISH_BASE, "es").passed
    assert check_language(MONAD_BASE, "en").passed
    assert check_language("单子是函数式编程中的一种设计模式。它可以把计算串联起来。", "zh-cn").passed
    assert check_language("モナドは関数型プログラミングのデザインパターンです。計算をつなげます。", "ja").passed
    assert check_language("Монада — это шаблон проектирования в функциональном программировании.", "ru").passed


def test_expected_language_from_baseline() -> None:
    assert check_language(SPANISH_BASE, baseline=SPANISH_BASE).passed
    r = check_language("I plan to go hiking in the mountains with my friends today.", baseline=SPANISH_BASE)
    assert not r.passed and r.data["expected"] == "es"
    with pytest.raises(ValueError):
        check_language("hola")


def test_scripts_used_by_baseline_are_tolerated() -> None:
    base = "En chino, 'yo' se escribe 我 y se pronuncia wǒ. Es un carácter muy común en el idioma chino."
    new = "En chino, 'yo' se escribe 我 y se pronuncia wǒ. Es un carácter muy frecuente del idioma."
    assert not check_language(new, "es").passed
    assert check_language(new, "es", baseline=base).passed


def test_code_blocks_are_ignored() -> None:
    text = "Una mónada encadena cálculos con contexto.\n```python\nresult = maybe.bind(lambda x: x + 1)\n```\n"
    assert check_language(text, "es").passed


def test_short_text_is_not_judged() -> None:
    assert detect_language("ok") is None
    assert check_language("Sí.", "es").passed


def test_helpers() -> None:
    assert normalize_lang("zh-cn") == normalize_lang("zh-TW") == normalize_lang("zh_Hans") == "zh"
    assert char_script("a") == "Latin" and char_script("我") == "Han" and char_script("я") == "Cyrillic"
    assert char_script("ア") == "Katakana" and char_script(",") == "Common" and char_script("Ａ") == "Latin"
    runs = foreign_runs("abc 你好 世界 def", {"Latin"})
    assert [r.text for r in runs] == ["你好 世界"]
    assert len(split_sentences("Uno. Dos! ¿Tres?\n四。五")) == 5


def test_deterministic() -> None:
    text = "El clima está hermoso hoy. Mañana lloverá en la ciudad y en el campo."
    assert [detect_language(text) for _ in range(3)] == [detect_language(text)] * 3


def test_chinese_answer_to_japanese_prompt_is_flagged() -> None:
    zh = "我们明天去公园散步，然后一起吃晚饭。天气很好。"
    r = check_language(zh, "ja")
    assert not r.passed and r.data["findings"][0]["kind"] == "missing_script"
    assert check_language(zh, "zh").passed


def test_kanji_only_sentence_is_not_misread_as_korean() -> None:
    # langdetect calls Han-only compounds Korean; script evidence decides instead.
    assert check_language("東京都知事選挙結果。今日はとても良い天気ですね。", "ja").passed
    assert not check_language("今日はとても良い天気ですね。我们明天去公园。", "zh").passed


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["en", "es", "zh", "ja", "ru"]))
def test_never_raises_and_counts_findings(text: str, lang: str) -> None:
    r = check_language(text, lang)
    assert r.value == len(r.data["findings"]) and r.passed == (r.value == 0)
