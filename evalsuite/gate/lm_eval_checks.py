"""Perplexity and multiple-choice scoring through lm-eval, fully offline, with per-item results.

Why lm-eval and not our own loop: its rolling-window log-likelihood, context/continuation token
splitting and acc/acc_norm definitions are the conventions the seeds' numbers (WikiText-2 perplexity,
MC accuracy) are reported in. Reusing them keeps our numbers comparable with published ones.

Why per item: the gate compares a compressed model with its baseline by an exact McNemar test on the
per-item correct vectors (MC) and by per-document log-likelihood (perplexity), so aggregates alone are
not enough. lm-eval's ``log_samples`` gives us exactly these per-document values.

How: each call writes a task YAML (from the templates below) plus a JSONL file into a fresh temporary
folder, builds a ``TaskManager`` over that folder only, wraps the in-memory model in ``HFLM`` and runs
``lm_eval.evaluator.evaluate``. Nothing is downloaded: the hub/datasets offline switches are set before
lm-eval (and ``datasets``) is imported, and again on the live config objects when something imported
them first; the datasets cache lives in the temporary folder.

Measured on the project's 2 loaded cores: importing lm-eval's evaluator + HF backend + task manager
costs ~1 s once (torch/transformers already loaded); a ``TaskManager`` over our folder only costs
< 1 ms, against 14-25 s for indexing lm-eval's 14,683 built-in task names (which we never do); the
per-call overhead (HFLM wrapper, task build, JSON dataset load) is ~85 ms.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalsuite.errors import EvalsuiteError
from evalsuite.io import write_jsonl

__all__ = [
    "DocLoglik",
    "LmEvalInputError",
    "McItem",
    "bits_per_byte",
    "byte_perplexity",
    "mc_accuracy",
    "mc_item",
    "mc_per_item",
    "mc_records",
    "perplexity_per_doc",
    "run_lm_eval",
    "token_perplexity",
    "word_perplexity",
]

# Set before lm-eval / datasets are imported anywhere through this module: both read them at import.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"

_PPL_TASK = "evalsuite_perplexity"
_MC_TASK = "evalsuite_multiple_choice"

# Task templates. Fields are referenced by *name* (not Jinja "{{text}}"): lm-eval then returns the raw
# value, so texts containing braces, trailing whitespace or newlines reach the model unchanged.
_PPL_TEMPLATE: dict[str, Any] = {
    "task": _PPL_TASK,
    "dataset_path": "json",
    "test_split": "test",
    "output_type": "loglikelihood_rolling",
    "doc_to_text": "",
    "doc_to_target": "text",
    "num_fewshot": 0,
    "metric_list": [
        {"metric": "word_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
        {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
    ],
}

_MC_TEMPLATE: dict[str, Any] = {
    "task": _MC_TASK,
    "dataset_path": "json",
    "test_split": "test",
    "output_type": "multiple_choice",
    "doc_to_text": "context",
    "doc_to_choice": "choices",
    "doc_to_target": "gold",
    "num_fewshot": 0,
    "metric_list": [
        {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
    ],
}


class LmEvalInputError(EvalsuiteError, ValueError):
    """Texts or MC items handed to the lm-eval checks are malformed (names the item and field)."""


@dataclass(frozen=True)
class DocLoglik:
    """Rolling log-likelihood of one document, with the counts every perplexity flavour needs.

    ``loglikelihood`` is the natural-log sum over every token of the document (lm-eval's
    ``loglikelihood_rolling``: the first token is conditioned on the prefix token, long documents are
    scored in disjoint windows of ``max_length``). ``words`` and ``bytes`` follow lm-eval's counting
    (``len(re.split(r"\\s+", text))`` and UTF-8 length); ``tokens`` is the number of scored tokens.
    """

    index: int
    loglikelihood: float
    tokens: int
    words: int
    bytes: int


@dataclass(frozen=True)
class McItem:
    """Per-item multiple-choice outcome, the unit of the gate's McNemar test.

    ``pred`` is the choice with the highest summed log-likelihood (lm-eval ``acc``); ``pred_norm`` the
    highest log-likelihood per character of the choice (lm-eval ``acc_norm``).
    """

    index: int
    item_id: str
    gold: int
    pred: int
    pred_norm: int
    acc: bool
    acc_norm: bool
    loglikelihoods: tuple[float, ...]


# ---------------------------------------------------------------------------------------- aggregates


def _check_docs(docs: Sequence[DocLoglik]) -> None:
    if not docs:
        raise LmEvalInputError("perplexity of an empty document list is undefined; pass >= 1 document")


def word_perplexity(docs: Sequence[DocLoglik]) -> float:
    """exp(-sum loglik / sum words): lm-eval's corpus-level ``word_perplexity`` (weighted, not a mean)."""
    _check_docs(docs)
    return math.exp(-sum(d.loglikelihood for d in docs) / sum(d.words for d in docs))


def token_perplexity(docs: Sequence[DocLoglik]) -> float:
    """exp(-sum loglik / sum tokens): tokenizer-dependent, so compare only models sharing a tokenizer."""
    _check_docs(docs)
    return math.exp(-sum(d.loglikelihood for d in docs) / sum(d.tokens for d in docs))


def byte_perplexity(docs: Sequence[DocLoglik]) -> float:
    """exp(-sum loglik / sum UTF-8 bytes): lm-eval's ``byte_perplexity``, tokenizer-independent."""
    _check_docs(docs)
    return math.exp(-sum(d.loglikelihood for d in docs) / sum(d.bytes for d in docs))


def bits_per_byte(docs: Sequence[DocLoglik]) -> float:
    """-sum loglik / (sum bytes * ln 2): lm-eval's ``bits_per_byte``."""
    _check_docs(docs)
    return -sum(d.loglikelihood for d in docs) / (sum(d.bytes for d in docs) * math.log(2))


def mc_accuracy(items: Sequence[McItem], *, norm: bool = False) -> float:
    """Fraction correct (``acc``, or ``acc_norm`` with ``norm=True``)."""
    if not items:
        raise LmEvalInputError("accuracy of an empty item list is undefined; pass >= 1 item")
    return sum(it.acc_norm if norm else it.acc for it in items) / len(items)


# ------------------------------------------------------------------------------------------ running


@contextmanager
def _task_folder(template: dict[str, Any], records: list[dict[str, Any]]) -> Iterator[Path]:
    """A temp folder holding `data.jsonl` + one task YAML; removed afterwards (datasets cache included)."""
    with tempfile.TemporaryDirectory(prefix="evalsuite-lmeval-") as tmp:
        folder = Path(tmp)
        data = folder / "data.jsonl"
        write_jsonl(data, records)  # ASCII JSON: no U+2028/U+0085 a reader could take for a line break
        config = dict(template)
        config["dataset_kwargs"] = {
            "data_files": {"test": str(data)},
            # Keep the Arrow cache out of ~/.cache: every run has new data and would pile up there.
            "cache_dir": str(folder / "hf_datasets_cache"),
        }
        tasks = folder / "tasks"
        tasks.mkdir()
        (tasks / f"{config['task']}.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        yield tasks


def _lm_eval() -> tuple[Any, Any, Any]:
    """Import lm-eval lazily (about 1 s, and most gate runs need no perplexity/MC at all)."""
    try:
        from lm_eval.evaluator import evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ModuleNotFoundError as exc:
        raise EvalsuiteError(
            f"perplexity / multiple-choice checks need lm-eval's Hugging Face backend, but {exc.name!r} "
            "is not installed; install it with: pip install 'accelerate>=0.26' (or 'lm-eval[hf]==0.4.13')"
        ) from exc
    _force_offline()
    return evaluate, HFLM, TaskManager


def _force_offline() -> None:
    """The env switches only act at import; if datasets/huggingface_hub came first, flip their config too."""
    import sys

    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        hub.HF_HUB_OFFLINE = True
    ds = sys.modules.get("datasets.config")
    if ds is not None:
        ds.HF_DATASETS_OFFLINE = True
        if hasattr(ds, "HF_HUB_OFFLINE"):
            ds.HF_HUB_OFFLINE = True


@contextmanager
def _isolated() -> Iterator[None]:
    """Run lm-eval without side effects on the process: global RNG states and log/progress settings.

    Why: lm-eval draws from the global `random` module (random task ids) and logs warnings on every
    call; a gate run's other checks must not depend on whether a perplexity check ran before them.
    """
    import datasets
    import numpy as np
    import torch

    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    logger = logging.getLogger("lm_eval")
    level = logger.level
    bars_were_off = datasets.are_progress_bars_disabled()
    logger.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if not bars_were_off:
            datasets.enable_progress_bars()
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])


def run_lm_eval(
    model: Any,
    tokenizer: Any,
    load: Callable[[Any], dict[str, Any]],
    *,
    batch_size: int,
    max_length: int | None = None,
    add_bos_token: bool | None = None,
    limit: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """Run lm-eval on the in-memory model, offline and without side effects on the process.

    ``load`` gets lm-eval's ``TaskManager`` class and returns ``TaskManager.load(...)``'s task dict (it
    decides which folders are indexed). Returns lm-eval's results (with per-sample logs) and the HFLM used.
    """
    evaluate, HFLM, TaskManager = _lm_eval()

    if batch_size < 1:
        raise LmEvalInputError(f"batch_size must be >= 1, got {batch_size}")
    was_training = bool(getattr(model, "training", False))
    # HFLM may set a pad token on the tokenizer it is given; never mutate the caller's tokenizer.
    tok = copy.deepcopy(tokenizer)
    try:
        with _isolated():
            lm = HFLM(
                pretrained=model,
                tokenizer=tok,
                batch_size=batch_size,
                max_length=max_length,
                add_bos_token=add_bos_token,
            )
            loaded = load(TaskManager)
            for task in loaded["tasks"].values():
                task.set_fewshot_seed(seed=None)
            # evaluate(), not simple_evaluate(): the latter reseeds the global python/numpy/torch
            # RNGs and shells out for git and environment info; a test run wants none of that.
            out = evaluate(lm=lm, task_dict=loaded, limit=limit, bootstrap_iters=0, log_samples=True)
    finally:
        model.train(was_training)
    return out, lm


def _run_task(
    model: Any,
    tokenizer: Any,
    template: dict[str, Any],
    records: list[dict[str, Any]],
    *,
    batch_size: int,
    max_length: int | None,
    add_bos_token: bool | None,
) -> tuple[list[dict[str, Any]], Any]:
    """Run one generated local task and return lm-eval's per-sample log (sorted by doc_id) and the HFLM."""
    with _task_folder(template, records) as folder:
        # Only our folder is indexed: indexing lm-eval's ~14k built-in task names costs
        # 14-25 s on 2 busy cores; ours costs < 1 ms.
        out, lm = run_lm_eval(
            model, tokenizer,
            lambda manager: manager(include_path=str(folder), include_defaults=False).load([template["task"]]),
            batch_size=batch_size, max_length=max_length, add_bos_token=add_bos_token,
        )
    samples = sorted(out["samples"][template["task"]], key=lambda s: s["doc_id"])
    if [s["doc"]["id"] for s in samples] != [r["id"] for r in records]:
        raise RuntimeError("lm-eval's per-sample log does not line up with the documents it was given")
    return samples, lm


def _check_unicode(text: str, where: str) -> None:
    """Lone surrogates (e.g. from a bad decode) can be neither tokenized nor stored; name the culprit."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LmEvalInputError(
            f"{where} is not valid Unicode text (lone surrogate {text[exc.start]!r} at offset {exc.start})"
        ) from None


def perplexity_per_doc(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    add_bos_token: bool | None = None,
) -> list[DocLoglik]:
    """Per-document rolling log-likelihood via lm-eval's ``loglikelihood_rolling``, in input order.

    ``max_length`` is the scoring window (default: lm-eval's choice from the model config). Results do
    not depend on ``batch_size`` beyond float round-off.
    """
    records = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise LmEvalInputError(f"texts[{i}] must be a non-empty string, got {text!r:.80}")
        _check_unicode(text, f"texts[{i}]")
        records.append({"id": str(i), "text": text})
    if not records:
        return []
    samples, lm = _run_task(
        model,
        tokenizer,
        _PPL_TEMPLATE,
        records,
        batch_size=batch_size,
        max_length=max_length,
        add_bos_token=add_bos_token,
    )
    docs = []
    for i, (sample, text) in enumerate(zip(samples, texts, strict=True)):
        ll, words = sample["word_perplexity"]
        _, nbytes = sample["byte_perplexity"]
        docs.append(
            DocLoglik(
                index=i,
                loglikelihood=float(ll),
                tokens=len(lm.tok_encode(text)),  # exactly the tokens the rolling windows scored
                words=int(words),
                bytes=int(nbytes),
            )
        )
    return docs


def _auto_delimiter(records: list[dict[str, Any]]) -> str:
    """The delimiter the data implies; for a mix, bake " " into the choices of the items that need it.

    An item "needs" a delimiter when its context ends in a non-space and its choices do not start with
    whitespace; an empty context says nothing either way.
    """
    needs = [
        None if not r["context"] else not (r["context"][-1].isspace() or all(c[0].isspace() for c in r["choices"]))
        for r in records
    ]
    if not any(needs):
        return ""
    if all(n is not False for n in needs):
        return " "
    for rec, need in zip(records, needs, strict=True):
        if need:
            rec["choices"] = [" " + c for c in rec["choices"]]
    return ""


def mc_records(items: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Validated MC items (``{"id", "context", "choices", "gold"}``) and the delimiter the data implies
    (see `mc_per_item`); raises LmEvalInputError naming the item and field."""
    records = []
    for i, item in enumerate(items):
        name = f"items[{i}]" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        if not isinstance(item, dict):
            raise LmEvalInputError(f"{name} must be a dict with context, choices, gold")
        context, choices, gold = item.get("context"), item.get("choices"), item.get("gold")
        if not isinstance(context, str):
            raise LmEvalInputError(f"{name}: 'context' must be a string, got {context!r:.80}")
        if (
            not isinstance(choices, list | tuple)
            or len(choices) < 2
            or not all(isinstance(c, str) and c for c in choices)
        ):
            raise LmEvalInputError(f"{name}: 'choices' must be >= 2 non-empty strings, got {choices!r:.120}")
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise LmEvalInputError(f"{name}: 'gold' must be an int in [0, {len(choices)}), got {gold!r}")
        for field_name, value in [("context", context), *((f"choices[{j}]", c) for j, c in enumerate(choices))]:
            _check_unicode(value, f"{name}: {field_name!r}")
        records.append({"id": str(item.get("id", i)), "context": context, "choices": list(choices), "gold": gold})
    return records, _auto_delimiter(records) if records else ""


def mc_item(index: int, record: dict[str, Any], loglikelihoods: tuple[float, ...]) -> McItem:
    """One item's outcome from its choices' log-likelihoods: lm-eval's acc (highest sum) and acc_norm
    (highest per character of the choice); ties go to the first choice, as numpy's argmax does."""
    lengths = [float(len(c)) for c in record["choices"]]
    n = range(len(loglikelihoods))
    pred = max(n, key=lambda j: (loglikelihoods[j], -j))
    pred_norm = max(n, key=lambda j: (loglikelihoods[j] / lengths[j], -j))
    return McItem(index=index, item_id=record["id"], gold=record["gold"], pred=pred, pred_norm=pred_norm,
                  acc=pred == record["gold"], acc_norm=pred_norm == record["gold"], loglikelihoods=loglikelihoods)


def mc_per_item(
    model: Any,
    tokenizer: Any,
    items: Sequence[dict[str, Any]],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    add_bos_token: bool | None = None,
    target_delimiter: str | None = None,
) -> list[McItem]:
    """Per-item MC verdicts via lm-eval's ``multiple_choice`` (acc and acc_norm), in input order.

    Each item is ``{"context": str, "choices": list[str], "gold": int}`` (an ``id`` is kept if given).
    Each choice is scored as ``target_delimiter + choice`` after the context (lm-eval's convention).
    ``None`` (default) picks it from the data: ``""`` when the choices already carry their leading
    space (or the context ends in whitespace), as in this package's held-out ``mc-*.jsonl``, and
    lm-eval's ``" "`` otherwise, so a choice is never scored with a doubled or a missing space.
    """
    records, auto = mc_records(items)
    if not records:
        return []
    if target_delimiter is None:
        target_delimiter = auto
    template = dict(_MC_TEMPLATE, target_delimiter=target_delimiter)
    samples, _ = _run_task(
        model,
        tokenizer,
        template,
        records,
        batch_size=batch_size,
        max_length=max_length,
        add_bos_token=add_bos_token,
    )
    return [
        mc_item(i, rec, tuple(float(resp[0]) for resp in sample["filtered_resps"]))
        for i, (sample, rec) in enumerate(zip(samples, records, strict=True))
    ]
