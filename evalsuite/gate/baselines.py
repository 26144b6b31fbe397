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
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import BaselineError
from evalsuite.io import atomic_write_text

__all__ = ["BaselineStore", "StoredBaseline", "dumps_diffable", "library_versions"]

FORMAT = 1
UPDATE_HINT = "record it with `pytest --evalsuite-update-baselines` (or `evalsuite record`)"


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
            if str(data.get("path", "")) == self.model_path:
                found.append(info.parent.name)
        return found

    def load(self, suite: str, case_id: str, *, case_hash: str, settings_hash: str) -> StoredBaseline:
        """The stored baseline of a case, or BaselineError saying why it is missing or stale."""
        path = self.case_path(suite, case_id)
        if not path.is_file():
            if not self.folder.is_dir():
                others = [f for f in self._other_fingerprints_for_same_model() if f != self.folder.name]
                if others:
                    raise BaselineError(
                        f"stale baseline: the model changed. Baselines exist for {self.model_path} under "
                        f"fingerprint(s) {', '.join(others)} in {self.root}, but the model now has fingerprint "
                        f"{self.fingerprint[:16]}; if the new weights are the intended original, {UPDATE_HINT}"
                    )
                raise BaselineError(
                    f"missing baseline: no baselines for model fingerprint {self.fingerprint[:16]} in "
                    f"{self.root}; {UPDATE_HINT}"
                )
            raise BaselineError(f"missing baseline for case {suite}/{case_id}: {path} does not exist; {UPDATE_HINT}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BaselineError(f"unreadable baseline {path}: {exc}; {UPDATE_HINT}") from exc
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
