"""Stored baselines of the original model: one diffable JSON file per case, per model fingerprint.

Layout::

    baselines/<fingerprint[:16]>/model.json            model, settings, library versions
    baselines/<fingerprint[:16]>/<suite>/<case>.json   response text + ids, top-k log-probs, metrics

Why this shape: a reviewer sees in a diff which responses changed when baselines are refreshed (one
line per scalar field, one line per token position for log-probs); a gate run can tell "missing" from
"stale" (case hash, generation settings or model fingerprint differ) and say which and how to fix it.
Files are written atomically (evalsuite.io: temp file in the same folder, fsync, os.replace), so an interrupted
`--evalsuite-update-baselines` never leaves a half-written baseline that a later run would trust.
"""

from __future__ import annotations

import json
import math
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import BaselineError, MissingBaselinesError
from evalsuite.io import atomic_write_text

__all__ = [
    "NAME_RULE",
    "BaselineStore",
    "StoredBaseline",
    "dumps_diffable",
    "library_versions",
    "name_problem",
    "shape_problem",
]

FORMAT = 1
UPDATE_HINT = "record it with `pytest --evalsuite-update-baselines` (or `evalsuite record`)"


#: Suite and case names become folder and file names under baselines/<fingerprint>/: letters, digits,
#: '_', '.', '-', starting with a letter or digit (so never '.', '..' or a hidden file), no separators,
#: no control characters, short enough for any file system.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
NAME_RULE = "1-100 letters, digits, '_', '.', '-', starting with a letter or digit"


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a suite or case (None when it can).

    ``fullmatch``, not ``match`` with ``$``: ``$`` also matches before a trailing newline, which let
    ``"id\n"`` through and created file names ending in a line break.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return f"must be {NAME_RULE}; got {name!r}"
    if name.endswith("."):
        return f"must not end in '.' (some file systems drop it); got {name!r}"
    if name.lower() == "model.json":
        return "must not be 'model.json': baselines/<fingerprint>/model.json holds the model's own record"
    return None


def library_versions() -> dict[str, str]:
    """Versions that can change greedy outputs; stored with every baseline for the report."""
    import torch
    import transformers

    import evalsuite

    return {
        "evalsuite": evalsuite.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def dumps_diffable(obj: Any, indent: int = 0) -> str:
    """JSON with one line per key, lists of scalars on one line, lists of lists one row per line."""
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        rows = [f"{inner}{json.dumps(str(k))}: {dumps_diffable(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(rows) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not _scalar_list(obj):
        rows = [f"{inner}{dumps_diffable(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _floats(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _rows(value: Any, ok: Any, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(ok(row) for row in value)


def shape_problem(data: Any) -> str | None:
    """What is wrong with the structure of a baseline file's content (None when it is sound).

    Why check: a hand-edited or damaged file that is valid JSON (a list, ids as strings, top-k rows of
    the wrong length) must fail its own case with one clear message, not crash the batched scoring that
    serves every other case's divergence check.
    """
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    for key, kind in (("metrics", dict), ("logprobs", dict), ("response", str)):
        if key in data and not isinstance(data[key], kind):
            return f"field {key!r} must be a {kind.__name__}, got {type(data[key]).__name__}"
    for key in ("response_ids", "prompt_ids"):
        if key in data and not _ints(data[key]):
            return f"field {key!r} must be a list of token ids (non-negative integers)"
    lp = data.get("logprobs")
    if not lp:
        return None
    n = len(data.get("response_ids", []))
    if "token" in lp and not (_floats(lp["token"]) and len(lp["token"]) == n):
        return f"logprobs.token must hold one finite log-prob per response token ({n})"
    if not _rows(lp.get("top_ids"), _ints, n):
        return f"logprobs.top_ids must hold one list of token ids per response token ({n})"
    if not _rows(lp.get("top_logprobs"), _floats, n):
        return f"logprobs.top_logprobs must hold one list of finite log-probs per response token ({n})"
    if any(len(a) != len(b) or not a for a, b in zip(lp["top_ids"], lp["top_logprobs"], strict=True)):
        return "logprobs.top_ids and logprobs.top_logprobs rows must be non-empty and of equal length"
    if len({len(row) for row in lp["top_ids"]}) > 1:
        return "logprobs.top_ids rows must all have the same length (the recorded top-k)"
    return None


@dataclass
class StoredBaseline:
    """One case's baseline as read from disk."""

    path: Path
    data: dict[str, Any]

    @property
    def response(self) -> str:
        return self.data.get("response", "")

    @property
    def response_ids(self) -> list[int]:
        return self.data.get("response_ids", [])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.data.get("metrics", {})

    @property
    def logprobs(self) -> dict[str, Any]:
        return self.data.get("logprobs", {})


class BaselineStore:
    """Baselines of one model (by fingerprint) under a baselines root folder."""

    def __init__(self, root: str | Path, fingerprint: str, *, model_path: str | None = None) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.model_path = model_path
        self.folder = self.root / fingerprint[:16]

    def case_path(self, suite: str, case_id: str) -> Path:
        """Where a case's baseline lives; refuses names that could leave (or clash inside) the folder."""
        for what, name in (("suite", suite), ("case id", case_id)):
            problem = name_problem(name)
            if problem:
                raise BaselineError(f"{what} {problem}; a baseline path is made from it")
        return self.folder / suite / f"{case_id}.json"

    # -- writing ---------------------------------------------------------------------------------
    def write_model_info(self, info: dict[str, Any]) -> Path:
        path = self.folder / "model.json"
        payload = {"format": FORMAT, "fingerprint": self.fingerprint, **info, "versions": library_versions()}
        atomic_write_text(path, dumps_diffable(payload) + "\n")
        return path

    def write_case(
        self,
        suite: str,
        case_id: str,
        *,
        case_hash: str,
        settings: dict[str, Any],
        settings_hash: str,
        payload: dict[str, Any],
    ) -> Path:
        """Store one case's baseline (replacing an older one atomically)."""
        data = {
            "format": FORMAT,
            "suite": suite,
            "case": case_id,
            "case_hash": case_hash,
            "settings_hash": settings_hash,
            "settings": settings,
            "model_fingerprint": self.fingerprint,
            "versions": library_versions(),
            **payload,
        }
        path = self.case_path(suite, case_id)
        atomic_write_text(path, dumps_diffable(data) + "\n")
        return path

    # -- reading ---------------------------------------------------------------------------------
    def _other_fingerprints_for_same_model(self) -> list[str]:
        if not self.root.is_dir() or self.model_path is None:
            return []
        found = []
        for info in sorted(self.root.glob("*/model.json")):
            try:
                data = json.loads(info.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and str(data.get("path", "")) == self.model_path:
                found.append(info.parent.name)
        return found

    def load(self, suite: str, case_id: str, *, case_hash: str, settings_hash: str) -> StoredBaseline:
        """The stored baseline of a case, or BaselineError saying why it is missing or stale."""
        path = self.case_path(suite, case_id)
        if not path.is_file():
            if not self.folder.is_dir():
                others = [f for f in self._other_fingerprints_for_same_model() if f != self.folder.name]
                if others:
                    raise MissingBaselinesError(
                        f"stale baseline: the model changed. Baselines exist for {self.model_path} under "
                        f"fingerprint(s) {', '.join(others)} in {self.root}, but the model now has fingerprint "
                        f"{self.fingerprint[:16]}; if the new weights are the intended original, {UPDATE_HINT}",
                        scope="baselines",
                    )
                raise MissingBaselinesError(
                    f"missing baseline: no baselines for model fingerprint {self.fingerprint[:16]} in "
                    f"{self.root}; {UPDATE_HINT}",
                    scope="baselines",
                )
            if not path.parent.is_dir():
                raise MissingBaselinesError(
                    f"missing baselines for suite {suite!r}: {path.parent} does not exist; {UPDATE_HINT}",
                    scope=f"suite {suite}",
                )
            raise BaselineError(f"missing baseline for case {suite}/{case_id}: {path} does not exist; {UPDATE_HINT}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BaselineError(f"unreadable baseline {path}: {exc}; {UPDATE_HINT}") from None
        problem = shape_problem(data)
        if problem:
            raise BaselineError(f"corrupt baseline {path}: {problem}; restore it from version control or {UPDATE_HINT}")
        if data.get("format") != FORMAT:
            raise BaselineError(
                f"stale baseline {path}: format {data.get('format')!r}, expected {FORMAT}; {UPDATE_HINT}"
            )
        if data.get("model_fingerprint") != self.fingerprint:
            raise BaselineError(
                f"stale baseline {path}: recorded for model {str(data.get('model_fingerprint'))[:16]}, "
                f"the model is {self.fingerprint[:16]}; {UPDATE_HINT}"
            )
        if data.get("case_hash") != case_hash:
            raise BaselineError(
                f"stale baseline {path}: the case changed since it was recorded (prompt, references, "
                f"decoding budget or data; hash {data.get('case_hash')} -> {case_hash}); {UPDATE_HINT}"
            )
        if data.get("settings_hash") != settings_hash:
            raise BaselineError(
                f"stale baseline {path}: generation settings changed since it was recorded "
                f"(recorded {data.get('settings')}); {UPDATE_HINT} or restore those settings"
            )
        return StoredBaseline(path, data)
