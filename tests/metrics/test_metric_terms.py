"""Key terms per script: each language as a pair. The regression (an answer that lost the content) fails
the content check; the benign look-alike (a brand name for a katakana word, other particles, a
paraphrase keeping the terms) passes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.metrics.drift import check_term_retention, key_terms
from evalsuite.metrics.terms import content_terms, lost_terms

# language, baseline, regression (content lost), benign look-alike (content kept, worded differently)
PAIRS = [
    ("ja-katakana",
     "このアプリはスマートフォンで動きます。スマートフォンの設定画面を開いて、通知を有効にしてください。",
     "このアプリはとても便利です。ぜひ使ってみてください。",
     "このアプリはiPhoneで動きます。iPhoneの設定画面を開いて、通知を有効にしてください。"),
    ("ja-kanji",
     "東京は日本の首都です。東京には多くの美術館と公園があります。",
     "それはとても良い質問ですね。またあとで話しましょう。",
     "日本の首都は東京で、美術館や公園がたくさんあります。"),
    ("zh",
     "机器学习是人工智能的一个分支，它让计算机从数据中学习规律。机器学习需要大量数据。",
     "这是一个很好的问题，我们下次再聊吧。",
     "机器学习属于人工智能领域，让计算机从数据里学习规律，也需要大量数据。"),
    ("ko",
     "컴퓨터는 데이터를 처리합니다. 컴퓨터의 메모리는 프로그램을 저장합니다.",
     "좋은 질문이네요. 다음에 다시 이야기해요.",
     "컴퓨터가 데이터를 처리하고 메모리에 프로그램을 저장해요."),
    ("en",
     "A compiler translates source code into machine code. The compiler checks types and optimises loops.",
     "That is a good question. Let me know if you want more.",
     "The compiler checks the types, optimises the loops and translates source code to machine code."),
    ("es",
     "La fotosíntesis convierte la luz solar en energía química. Las plantas producen oxígeno y glucosa.",
     "Es una buena pregunta. Hablemos de otra cosa.",
     "Las plantas producen glucosa y oxígeno: la fotosíntesis convierte luz solar en energía química."),
    ("fr",
     "Le moteur électrique transforme l'énergie électrique en énergie mécanique grâce aux aimants.",
     "C'est une bonne question, merci beaucoup.",
     "Grâce aux aimants, le moteur électrique transforme l'énergie électrique en mouvement mécanique."),
    ("de",
     "Der Vulkan spuckt Lava und Asche. Vulkane entstehen an den Grenzen der tektonischen Platten.",
     "Das ist eine gute Frage. Bis bald.",
     "Vulkane entstehen an Grenzen tektonischer Platten; ein Vulkan spuckt Asche und Lava."),
    ("ru",
     "Фотосинтез превращает солнечный свет в химическую энергию. Растения выделяют кислород.",
     "Хороший вопрос. Давайте поговорим позже.",
     "Растения выделяют кислород, а фотосинтез превращает солнечный свет в химическую энергию."),
    ("el",
     "Η φωτοσύνθεση μετατρέπει το ηλιακό φως σε χημική ενέργεια. Τα φυτά παράγουν οξυγόνο.",
     "Καλή ερώτηση. Τα λέμε αργότερα.",
     "Τα φυτά παράγουν οξυγόνο και η φωτοσύνθεση μετατρέπει το ηλιακό φως σε ενέργεια χημική."),
]


@pytest.mark.parametrize(("lang", "base", "bad", "good"), PAIRS, ids=[p[0] for p in PAIRS])
def test_content_pairs(lang: str, base: str, bad: str, good: str) -> None:
    assert key_terms(base), lang
    assert not check_term_retention(bad, base).passed
    ok = check_term_retention(good, base)
    assert ok.passed, ok.detail


def test_katakana_word_is_one_term_not_bigrams() -> None:
    base, _, good = PAIRS[0][1:]
    assert "スマートフォン" in key_terms(base)
    r = check_term_retention(good, base)
    assert r.data["lost"] == ["スマートフォン"]  # one term lost, not six bigrams


def test_japanese_drops_hiragana_and_keeps_kanji_compounds() -> None:
    assert content_terms("設定画面を開いてください") == ["設定画面"]


def test_chinese_is_segmented_into_words() -> None:
    terms = content_terms("机器学习是人工智能的一个分支")
    assert "人工智能" in terms and "分支" in terms and "一个" not in terms


def test_korean_particles_are_stripped() -> None:
    assert content_terms("컴퓨터는 컴퓨터를 컴퓨터의") == ["컴퓨터"] * 3
    assert lost_terms(["컴퓨터", "메모리"], "컴퓨터가 빠르다") == ["메모리"]


def test_words_match_by_stem() -> None:
    assert lost_terms(["monads", "functional"], "A monad in functional code") == []
    assert lost_terms(["catalog"], "a cat") == ["catalog"]


_MIXED_ALPHABET = list("abcdefgh ÄÖẞİ。、アイウーあいう東京学習的是컴퓨터는를 \n`_.")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(_MIXED_ALPHABET), max_size=120))
def test_an_answer_keeps_all_of_its_own_terms(text: str) -> None:
    assert lost_terms(key_terms(text), text) == []
