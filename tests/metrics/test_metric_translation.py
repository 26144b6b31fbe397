from __future__ import annotations

import pytest
from seed_texts import SPANISH_BASE, SPANISH_CJK, SPANISH_REFERENCE

from evalsuite.metrics.translation import check_translation, check_translation_corpus, chrf, corpus_chrf


def test_seed_contaminated_translation_fails() -> None:
    r = check_translation(SPANISH_CJK, SPANISH_REFERENCE, baseline_hypothesis=SPANISH_BASE)
    assert not r.passed and r.baseline is not None and r.value < r.baseline - 10


def test_baseline_passes_itself() -> None:
    r = check_translation(SPANISH_BASE, SPANISH_REFERENCE, baseline_hypothesis=SPANISH_BASE)
    assert r.passed and r.value == pytest.approx(r.baseline)
    assert chrf(SPANISH_REFERENCE, SPANISH_REFERENCE) == pytest.approx(100.0)


def test_corpus_level_names_worst_sentence() -> None:
    refs = [SPANISH_REFERENCE, "Me gusta leer libros por la noche."]
    base = [SPANISH_BASE, "Me gusta leer libros en la noche."]
    new = [SPANISH_CJK, "Me gusta leer libros en la noche."]
    assert check_translation_corpus(base, refs, baseline_hypotheses=base).passed
    r = check_translation_corpus(new, refs, baseline_hypotheses=base)
    assert not r.passed and r.data["worst"][0]["index"] == 0
    assert corpus_chrf(base, refs) > corpus_chrf(new, refs)


def test_needs_a_reference_point() -> None:
    with pytest.raises(ValueError):
        check_translation("a", "b")
    assert check_translation(SPANISH_BASE, SPANISH_REFERENCE, min_score=30).passed
