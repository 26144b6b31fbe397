"""The language detector behind the language check: lingua, restricted to the languages below, lazy.

API:
    LINGUA_CODES: dict[str, lingua.Language]      ISO 639-1 code -> lingua language (the detector's set)
    iso_code(language) -> str                     lingua language -> ISO 639-1 ("nb"/"nn" -> "no")
    detector() -> lingua.LanguageDetector         one shared instance, built on first use
    confidences(text) -> dict[str, float]         ISO code -> confidence (sums to 1), nonzero entries only
    supported(code) -> bool                       whether the detector knows this ISO code

Why lingua and not langdetect: on this project's hand-written examples lingua separates close
relatives (es/pt, de/nl) on short sentences, is deterministic, and finds a clause in another language
inside a sentence (benchmarks/language_detectors.py prints the comparison). Why restricted and lazy:
all 75 languages cost more memory and confuse rare relatives with common ones on short text; lingua
loads a language's model only when a text's script makes that language possible.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import Language, LanguageDetector

# Widely used languages a model drifts into. lingua loads the models of every listed language that
# uses a script once it first sees that script: Latin + Cyrillic + Han for this set peak at ~660 MB
# RSS (all 75 languages: ~1.15 GB; benchmarks/language_detectors.py measures both). Languages with a
# script of their own (Bengali, Tamil, ...) cost nothing until a text uses it. Not listed, so judged by
# script only: Macedonian and Serbian (each would add its models to every Cyrillic text), and what lingua
# lacks (Nepali, Kannada, Malayalam).
_CODES = (
    "en", "es", "pt", "fr", "it", "de", "nl", "ca", "ro", "pl", "cs", "sv", "da", "nb", "fi", "hu", "tr", "id",
    "vi", "ru", "uk", "bg", "el", "ar", "fa", "ur", "he", "hi", "mr", "bn", "pa", "gu", "ta", "te", "th", "zh",
    "ja", "ko",
)


@functools.cache
def _lingua_codes() -> dict[str, Language]:
    from lingua import IsoCode639_1, Language

    return {code: Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in _CODES}


def __getattr__(name: str) -> object:
    # LINGUA_CODES is built on first access so importing the metrics does not import lingua.
    if name == "LINGUA_CODES":
        return _lingua_codes()
    raise AttributeError(name)


def supported(code: str) -> bool:
    """A language outside the set can only be judged by its script, never by detection."""
    return code in _CODES or (code == "no" and "nb" in _CODES)


def iso_code(language: Language) -> str:
    """ISO 639-1 code of a lingua language; Norwegian Bokmal/Nynorsk are both "no"."""
    code = language.iso_code_639_1.name.lower()
    return "no" if code in {"nb", "nn"} else code


@functools.cache
def detector() -> LanguageDetector:
    """The shared detector (models load lazily, per script, on first detection)."""
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(*_lingua_codes().values()).build()


def confidences(text: str) -> dict[str, float]:
    """Confidence per language for ``text`` (ISO codes), highest first; empty when lingua finds no
    letters to judge."""
    return dict(_confidences(text))


@functools.lru_cache(maxsize=1 << 16)
def _confidences(text: str) -> tuple[tuple[str, float], ...]:
    # Cached: the gate judges the same baseline sentences for every recipe, and the code-switch scan
    # asks about overlapping windows. Rounded to 9 digits: lingua's sums differ in the last bits from
    # call to call, and a gate verdict must not.
    out: dict[str, float] = {}
    for c in detector().compute_language_confidence_values(text):
        if c.value > 0:
            code = iso_code(c.language)
            out[code] = out.get(code, 0.0) + c.value
    return tuple((code, round(v, 9)) for code, v in sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
