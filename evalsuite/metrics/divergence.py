"""Logit divergence: KL(P_base || P_new) of next-token distributions, teacher-forced on the baseline.

The baseline stores, per position of its own response, the top-k token ids and their log-probs. The
new model is run teacher-forced on the same tokens and yields a full log-prob row per position. KL is
computed over the k baseline tokens plus one "tail" bucket holding all remaining mass on each side, so
it stays a proper KL between two distributions over k+1 outcomes (>= 0, == 0 when they agree).

API:
    topk_record(logprobs, k) -> TopK          from a full row [V] or matrix [T, V] of log-probs or logits
        TopK(ids: np.ndarray[int64, (T, k)], logprobs: np.ndarray[float64, (T, k)]); .to_dict()/.from_dict()
    kl_topk(base_ids, base_logprobs, new_logprobs, *, eps=1e-12) -> np.ndarray   per-position KL [T]
        new_logprobs: full rows [T, V] (log-probs or logits; re-normalised)
    topk_kl(base_logprobs, new_gathered, *, eps=1e-12) -> np.ndarray    per-position KL [T] when the
        new model's log-probs were already gathered at the baseline's top-k ids ([T, k] each)
    kl_topk_records(base: TopK, new: TopK, *, eps=1e-12) -> np.ndarray   when the new side is top-k too
        (base tokens missing from the new top-k share the new tail mass; an estimate, not exact)
    check_logit_divergence(base_ids, base_logprobs, new_logprobs, *, max_mean_kl=0.25,
                           max_position_kl=None) -> CheckResult      value = mean KL (nats), op "<=".

Why lump the tail: storing full vocab rows per position is too large for baselines; dropping the tail
instead would make KL negative-prone and not comparable between runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from evalsuite.metrics.result import CheckResult


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (identity on rows that already are log-probs)."""
    a = np.asarray(x, dtype=np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    z = a - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


@dataclass(frozen=True)
class TopK:
    """Top-k token ids and log-probs per position, as stored in a baseline."""

    ids: np.ndarray
    logprobs: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids.tolist(), "logprobs": self.logprobs.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopK:
        return cls(np.asarray(d["ids"], dtype=np.int64), np.asarray(d["logprobs"], dtype=np.float64))


def topk_record(logprobs: ArrayLike, k: int) -> TopK:
    """Top-k (ids, log-probs) from full rows; accepts logits too (rows are re-normalised)."""
    lp = log_softmax(logprobs)
    squeeze = lp.ndim == 1
    if squeeze:
        lp = lp[None, :]
    if lp.ndim != 2:
        raise ValueError(f"expected a [V] row or a [T, V] matrix, got shape {lp.shape}")
    k = min(k, lp.shape[1])
    if k < 1:
        raise ValueError("k must be >= 1")
    part = np.argpartition(-lp, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(lp, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    if squeeze:
        return TopK(ids[0], vals[0])
    return TopK(ids, vals)


def _with_tail(p_k: np.ndarray, eps: float) -> np.ndarray:
    tail = np.clip(1.0 - p_k.sum(axis=-1, keepdims=True), 0.0, 1.0)
    return np.concatenate([p_k, tail], axis=-1)


def _kl_buckets(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    q = np.maximum(q, eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.maximum(p, eps)) - np.log(q)), 0.0)
    return np.maximum(terms.sum(axis=-1), 0.0)


def topk_kl(base_logprobs: ArrayLike, new_gathered: ArrayLike, *, eps: float = 1e-12) -> np.ndarray:
    """Per-position KL(P_base || P_new) from the baseline's top-k log-probs and the new model's
    log-probs of the same k tokens (already gathered, [T, k]); each side's remaining mass is the tail."""
    blp = np.atleast_2d(np.asarray(base_logprobs, dtype=np.float64))
    nlp = np.atleast_2d(np.asarray(new_gathered, dtype=np.float64))
    if blp.shape != nlp.shape:
        raise ValueError(f"shape mismatch: baseline top-k {blp.shape}, new gathered {nlp.shape}")
    return _kl_buckets(_with_tail(np.exp(blp), eps), _with_tail(np.exp(nlp), eps), eps)


def kl_topk(
    base_ids: ArrayLike, base_logprobs: ArrayLike, new_logprobs: ArrayLike, *, eps: float = 1e-12
) -> np.ndarray:
    """Per-position KL(P_base || P_new) over the baseline's top-k tokens plus one tail bucket."""
    ids = np.asarray(base_ids, dtype=np.int64)
    blp = np.asarray(base_logprobs, dtype=np.float64)
    new = log_softmax(new_logprobs)
    if ids.ndim == 1:
        ids, blp, new = ids[None], blp[None], new.reshape(1, -1)
    if ids.shape != blp.shape or new.ndim != 2 or new.shape[0] != ids.shape[0]:
        raise ValueError(
            f"shape mismatch: base ids {ids.shape}, base logprobs {blp.shape}, new logprobs {new.shape}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= new.shape[1]):
        raise ValueError(f"baseline token id out of range for a vocabulary of {new.shape[1]}")
    return topk_kl(blp, np.take_along_axis(new, ids, axis=1), eps=eps)


def kl_topk_records(base: TopK, new: TopK, *, eps: float = 1e-12) -> np.ndarray:
    """KL when the new side is also stored as top-k: missing ids get an equal share of the new tail."""
    bids, blp = np.atleast_2d(base.ids), np.atleast_2d(base.logprobs)
    nids, nlp = np.atleast_2d(new.ids), np.atleast_2d(new.logprobs)
    if bids.shape[0] != nids.shape[0]:
        raise ValueError(f"position count differs: {bids.shape[0]} vs {nids.shape[0]}")
    out = np.empty(bids.shape[0])
    for t in range(bids.shape[0]):
        newp = dict(zip(nids[t].tolist(), np.exp(nlp[t]).tolist(), strict=True))
        tail_new = max(0.0, 1.0 - sum(newp.values()))
        missing = [i for i in bids[t].tolist() if i not in newp]
        share = tail_new / (len(missing) + 1)
        q_k = np.array([newp.get(i, share) for i in bids[t].tolist()])
        p = _with_tail(np.exp(blp[t]), eps)
        q = np.append(q_k, max(0.0, 1.0 - q_k.sum()))
        out[t] = _kl_buckets(p, q, eps)
    return out


def check_logit_divergence(
    base_ids: ArrayLike,
    base_logprobs: ArrayLike,
    new_logprobs: ArrayLike,
    *,
    max_mean_kl: float = 0.25,
    max_position_kl: float | None = None,
) -> CheckResult:
    """Fail when the mean (or, if set, any single position's) KL exceeds its tolerance."""
    kl = kl_topk(base_ids, base_logprobs, new_logprobs)
    mean = float(kl.mean()) if kl.size else 0.0
    worst = int(np.argmax(kl)) if kl.size else -1
    worst_kl = float(kl[worst]) if kl.size else 0.0
    passed = mean <= max_mean_kl and (max_position_kl is None or worst_kl <= max_position_kl)
    detail = f"mean KL {mean:.4f} nats over {kl.size} positions; worst position {worst} ({worst_kl:.4f})"
    if max_position_kl is not None and worst_kl > max_position_kl:
        detail += f" exceeds the per-position limit {max_position_kl}"
    return CheckResult("logit_divergence", passed, mean, max_mean_kl, "<=", detail, baseline=0.0,
                       data={"per_position": kl.tolist(), "worst_position": worst, "worst_kl": worst_kl})
