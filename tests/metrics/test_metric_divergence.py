from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evalsuite.metrics.divergence import (
    TopK,
    check_logit_divergence,
    kl_topk,
    kl_topk_records,
    log_softmax,
    topk_kl,
    topk_record,
)

rng = np.random.default_rng(0)
BASE_LOGITS = rng.normal(size=(12, 50)) * 3


def test_topk_record_from_full_rows() -> None:
    rec = topk_record(BASE_LOGITS, 5)
    assert rec.ids.shape == (12, 5) and rec.logprobs.shape == (12, 5)
    full = log_softmax(BASE_LOGITS)
    assert np.allclose(np.take_along_axis(full, rec.ids, 1), rec.logprobs)
    assert np.all(np.diff(rec.logprobs, axis=1) <= 0)  # sorted best first
    assert (rec.ids[:, 0] == full.argmax(1)).all()
    one = topk_record(BASE_LOGITS[0], 3)
    assert one.ids.shape == (3,)
    assert TopK.from_dict(rec.to_dict()).ids.tolist() == rec.ids.tolist()


def test_baseline_against_itself_is_zero_and_passes() -> None:
    rec = topk_record(BASE_LOGITS, 8)
    kl = kl_topk(rec.ids, rec.logprobs, BASE_LOGITS)
    assert np.allclose(kl, 0.0, atol=1e-9)
    assert check_logit_divergence(rec.ids, rec.logprobs, BASE_LOGITS).passed
    assert np.allclose(kl_topk_records(rec, rec), 0.0, atol=1e-9)


def test_drifted_logits_fail() -> None:
    rec = topk_record(BASE_LOGITS, 8)
    drifted = BASE_LOGITS + rng.normal(size=BASE_LOGITS.shape) * 4
    r = check_logit_divergence(rec.ids, rec.logprobs, drifted, max_mean_kl=0.1)
    assert not r.passed and r.value > 0.1 and "worst position" in r.detail


def test_tail_bucket_matters() -> None:
    # Same top-k probabilities but the new model moved all tail mass onto one of the top tokens.
    base = np.log(np.array([[0.5, 0.2]]))
    new_same = np.log(np.array([[0.5, 0.2]]))
    new_no_tail = np.log(np.array([[0.8, 0.2 - 1e-9]]))
    assert topk_kl(base, new_same)[0] < 1e-12
    assert topk_kl(base, new_no_tail)[0] > 1.0


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (4, 20), elements=st.floats(-20, 20)),
    arrays(np.float64, (4, 20), elements=st.floats(-20, 20)),
    st.integers(1, 20),
)
def test_kl_nonnegative_and_zero_on_identity(a: np.ndarray, b: np.ndarray, k: int) -> None:
    rec = topk_record(a, k)
    assert np.all(kl_topk(rec.ids, rec.logprobs, b) >= 0)
    assert np.allclose(kl_topk(rec.ids, rec.logprobs, a), 0.0, atol=1e-7)
