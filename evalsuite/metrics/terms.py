"""Content terms of a text, per script: what "the same content" means in each writing system.

API:
    content_terms(text) -> list[str]     content terms in order of occurrence (repeats kept), lower-cased
    lost_terms(terms, text) -> list[str]  the terms not found in ``text`` (words by stem, dense-script
                                          terms by substring)
    stem(term) -> str                     the part of a term a match needs

Rules, by script (code spans are the caller's to strip):
    words in spaced scripts (Latin, Cyrillic, Greek, ...)  4+ letters, not a stopword; matched by stem
    Katakana runs (incl. the long-vowel mark)              one term each: loanwords and names are
                                                            written as one katakana run
    Han runs in text that has kana (Japanese)              one term each: kanji compounds sit
                                                            between hiragana grammar (hiragana dropped)
    Han text without kana (Chinese)                        jieba's dictionary words of 2+ characters
    Hangul words (space-separated eojeol)                  the word less its trailing particle/ending
                                                            (컴퓨터를 -> 컴퓨터), 2+ syllables

Why not character bigrams: a katakana word of eight characters is one word, not seven terms; when the
new answer names it differently (a brand name in Latin letters) one term is lost, not seven.
jieba (pure Python, dictionary in the wheel, loaded on the first Chinese text: ~1-2 s, +69 MB; measured
in benchmarks/cjk_terms.py) segments Chinese; Japanese and Korean need no dictionary for this.
"""

from __future__ import annotations

import functools
import logging
import re

_STOPWORDS_TEXT = """
    about above after again against also although always another because been before being below
    between both could does doing down during each either every from further have having here hers
    herself himself however into itself just like many might more most much must myself never only
    other ours ourselves over same should some such than that their theirs them themselves then there
    these they this those through under until upon very what when where which while will with within
    without would your yours yourself yourselves make makes made using used use uses example examples
    first second well want wants need needs thing things shall cannot can't don't isn't it's that's
    let's here's there's
    great question explain clearly sure certainly happy help helps following
    para como pero porque cuando donde esta este esto estos estas eso esos esas ese también tiene
    tienen puede pueden sobre entre hasta desde muy más menos todo todos toda todas otro otra otros
    otras cada cual cuales ser son está están fue fueron hay han sido siendo hacer hace nuestro
    nuestra ejemplo sin embargo mismo misma entonces
    avec pour dans sans sous plus moins tout tous toute toutes autre autres comme mais donc alors
    elle elles nous vous leur leurs être sont était fait faire peut peuvent cette ces aussi très
    exemple
    aber auch oder und eine einer eines einem einen dass dies diese dieser dieses mit für von über
    unter nicht noch schon sehr mehr kann können wird werden wurde sind sein ihre ihren beispiel
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
# Chinese function words that jieba returns as two-character words.
_ZH_STOPWORDS_TEXT = """
    一个 一些 一种 我们 你们 他们 她们 它们 这个 那个 这些 那些 这样 那样 什么 怎么 可以 因为 所以 但是 如果
    就是 还是 或者 以及 而且 已经 没有 不是 进行 通过 其中 之一 时候 非常 然后 并且 自己 这种 那种 可能 需要 应该
"""
_ZH_STOPWORDS = frozenset(_ZH_STOPWORDS_TEXT.split())
# Korean particles and common endings, longest first: stripped from the end of a word.
_KO_SUFFIXES_TEXT = """
    에서는 으로는 에게서 이라는 이라고 입니다 합니다 했습니다 됩니다 있습니다 이었다 하는 하고 하여 해서 한다 했다
    된다 이다 이며 이고 에서 에게 으로 까지 부터 처럼 보다 이나 라는 라고
    은 는 이 가 을 를 의 에 로 와 과 도 만 나 고 다
"""
_KO_SUFFIXES = tuple(sorted(_KO_SUFFIXES_TEXT.split(), key=len, reverse=True))

_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HIRAGANA = "\u3040-\u309f"
_HAN = "\u3005\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_RUN = re.compile(
    rf"(?P<kata>[{_KATAKANA}]+)|(?P<hira>[{_HIRAGANA}]+)|(?P<han>[{_HAN}]+)|(?P<hangul>[{_HANGUL}]+)"
    rf"|(?P<word>[^\W\d_{_KATAKANA}{_HIRAGANA}{_HAN}{_HANGUL}]+)"
)
_DENSE = re.compile(rf"[{_KATAKANA}{_HIRAGANA}{_HAN}{_HANGUL}]")
_KANA = re.compile(rf"[{_KATAKANA}{_HIRAGANA}]")


@functools.cache
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it logs the dictionary build at INFO
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def _chinese_words(run: str) -> list[str]:
    return [w for w in _jieba().lcut(run, HMM=True) if len(w) >= 2 and w not in _ZH_STOPWORDS]


def _korean_stem(word: str) -> str:
    for suffix in _KO_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)]
    return word


def content_terms(text: str) -> list[str]:
    """Content terms of ``text`` in order of occurrence, repeats kept (see the module docstring)."""
    japanese = _KANA.search(text) is not None
    out: list[str] = []
    for m in _RUN.finditer(text.lower()):
        kind, run = m.lastgroup, m.group(0)
        if kind == "word":
            if len(run) >= 4 and run not in _STOPWORDS:
                out.append(run)
        elif kind == "kata":
            if len(run.strip("ー・")) >= 2:
                out.append(run)
        elif kind == "han":
            if japanese:
                if len(run) >= 2:
                    out.append(run)
            else:
                out.extend(_chinese_words(run))
        elif kind == "hangul":
            root = _korean_stem(run)
            if len(root) >= 2:
                out.append(root)
    return out


def stem(term: str) -> str:
    """Crude multilingual stem for spaced-script words (tolerates plural/inflection endings:
    "monads" ~ "monad"); dense-script terms are their own stem."""
    return term if _DENSE.search(term) else term[: max(4, len(term) - 2)]


def lost_terms(terms: list[str], text: str) -> list[str]:
    """The ``terms`` missing from ``text``: dense-script terms by substring (no spaces to anchor on),
    words when no word of ``text`` shares their stem (and the word itself is not in the text)."""
    lowered = text.lower()
    stems = {stem(m.group(0)) for m in _RUN.finditer(lowered) if m.lastgroup == "word"}
    lost = []
    for term in terms:
        found = term in lowered if _DENSE.search(term) else stem(term) in stems or term in lowered
        if not found:
            lost.append(term)
    return lost
