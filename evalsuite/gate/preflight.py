"""Checks made once, before any generation, on what a whole run depends on.

Why a separate pass: a problem shared by many cases (a tokenizer without a chat template, prompts that do
not fit the model's context, a base model whose logits are NaN) used to surface item by item, as
hundreds of failures with misleading advice, or worse as a recorded baseline that every later check
passes (an all-empty response is contained in anything). Each function here raises one `SetupError`
naming the model, the cases concerned and the fix; the gate caches it for its scope.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalsuite.errors import SetupError

__all__ = ["check_prompts", "check_scores", "check_sources", "check_tokenizer", "context_length"]

_SHOWN = 5  # cases named in one message; the rest are counted
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def _examples(cases: Sequence[Any], detail: Callable[[Any], str]) -> str:
    shown = "; ".join(f"{c.file}: case {c.id!r}{detail(c)}" for c in cases[:_SHOWN])
    more = f" (and {len(cases) - _SHOWN} more)" if len(cases) > _SHOWN else ""
    return shown + more


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens the model attends to (prompt + response), from its config or tokenizer; None if unknown."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)  # "no limit" is stored as ~1e30
    return value if isinstance(value, int) and 0 < value < 10**7 else None


def check_tokenizer(tokenizer: Any, label: str, scope: str) -> None:
    """A tokenizer that can encode text: a checkpoint without tokenizer files loads one with 1 token."""
    size = len(tokenizer)
    if size < 2:
        raise SetupError(
            f"the tokenizer of {label} has {size} token(s): the checkpoint folder has no usable tokenizer files "
            "(tokenizer.json / tokenizer_config.json / vocab files); copy the original model's tokenizer files "
            "into it",
            scope=scope,
        )


def check_prompts(
    tokenizer: Any,
    model: Any,
    cases: Sequence[Any],
    encode: Callable[[Any], list[int]],
    *,
    label: str,
    scope: str,
) -> None:
    """Every prompt can be built and fits the model's context; else one SetupError."""
    chat = [c for c in cases if c.chat]
    if chat and not getattr(tokenizer, "chat_template", None):
        raise SetupError(
            f"{len(chat)} case(s) ask for `chat: true` but the tokenizer of {label} has no chat template "
            f"({_examples(chat, lambda _c: '')}); use an instruction-tuned checkpoint that ships one, or set "
            "`chat: false` for these cases (or deselect them, e.g. with -k / --evalsuite-suite)",
            scope=scope,
        )
    context = context_length(model, tokenizer)
    lengths = {c.key: len(encode(c)) for c in cases}
    empty = [c for c in cases if lengths[c.key] == 0]
    if empty:
        raise SetupError(
            f"the tokenizer of {label} encodes these prompts to no tokens: {_examples(empty, lambda _c: '')}; "
            "check the tokenizer files",
            scope=scope,
        )
    if context is None:
        return
    # the prompt alone must leave room for an answer; a budget reaching past the context is allowed
    # (generation usually ends earlier, and base and compressed model are decoded alike)
    too_long = [c for c in cases if lengths[c.key] >= context]
    if too_long:
        raise SetupError(
            f"{len(too_long)} prompt(s) do not fit the {context}-token context of {label}: "
            f"{_examples(too_long, lambda c: f' ({lengths[c.key]} tokens)')}; shorten these prompts or use a "
            "model with a longer context",
            scope=scope,
        )


def _finite(scores: Any) -> bool:
    if scores is None:
        return True
    rows = [scores.token_logprobs, *scores.top_logprobs]
    return all(math.isfinite(v) for row in rows for v in (row if isinstance(row, list) else [row]))


def check_scores(cases: Sequence[Any], gens: Sequence[Any], label: str, scope: str) -> None:
    """A base model fit to record: finite log-probs, and not every response empty.

    NaN weights gave all-empty (or NaN-scored) baselines, and an empty baseline response lets every
    later check pass (it is contained in anything), so such a model is refused before anything is written.
    """
    broken = [c for c, g in zip(cases, gens, strict=True) if not _finite(getattr(g, "scores", None))]
    if broken:
        raise SetupError(
            f"{label} gives non-finite log-probs (NaN or inf logits) for {len(broken)} of {len(cases)} prompts "
            f"({_examples(broken, lambda _c: '')}): its weights are broken or overflow in this dtype; fix the "
            'checkpoint (or try dtype = "float32") before recording baselines from it',
            scope=scope,
        )
    if cases and not any(g.text.strip() for g in gens):
        raise SetupError(
            f"every response of {label} is empty ({len(cases)} prompts, e.g. {_examples(cases, lambda _c: '')}): "
            "empty baselines would let every later check pass; check the model (it may emit end-of-sequence "
            "first), its tokenizer and chat template before recording",
            scope=scope,
        )


def _recorded_source(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = data.get("file") if isinstance(data, dict) else None
    return source if isinstance(source, str) else None


def _still_defines(case_file: Path, case: Any) -> bool:
    from evalsuite.errors import CaseFileError
    from evalsuite.gate.cases import load_case_file

    try:
        return any(c.key.lower() == case.key.lower() for c in load_case_file(case_file, suite=case.suite))
    except (CaseFileError, OSError):
        return False


def check_sources(store: Any, cases: Sequence[Any], source: Callable[[Any], str], root: Path) -> None:
    """Refuse to overwrite a baseline recorded from another case file that still defines the same suite/id.

    Why: two folders (or files with `suite:`) can define the same suite/id; recorded in separate runs, the
    second silently replaced the first one's baseline. A case that moved to another file is fine.
    """
    clashes = []
    for case in cases:
        path = store.case_path(case.suite, case.id)
        recorded = _recorded_source(path) if path.is_file() else None
        if recorded is None or recorded == source(case):
            continue
        other = Path(recorded) if Path(recorded).is_absolute() else root / recorded
        if other.is_file() and _still_defines(other, case):
            clashes.append(f"{case.key} in {case.file} and in {other}")
    if clashes:
        raise SetupError(
            f"{len(clashes)} suite/id(s) are defined by two case files, and their baselines were recorded from "
            f"the other one: {'; '.join(clashes[:_SHOWN])}; ids must be unique within a suite (they name its "
            "baseline files): rename one of the cases (or its suite) and record again",
            scope="run",
        )
