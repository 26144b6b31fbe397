"""Held-out data: where the shipped JSONL files live, which half of them is for calibration, and the
rows a perplexity / multiple-choice case is scored on.

Why one module: compression calibrates on one half of the held-out records and the gate scores on the
other; both must agree on the folder and the split, or a recipe is evaluated on text it was fitted to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.datafiles import read_records
from evalsuite.errors import CaseFileError

if TYPE_CHECKING:
    from evalsuite.gate.cases import Case

__all__ = ["PREFIX", "case_rows", "data_path", "heldout_dir", "heldout_split", "is_calibration_record"]

#: a case's `data: heldout:NAME.jsonl` names a file of the package's held-out data
PREFIX = "heldout:"


def heldout_dir() -> Path:
    """Folder of the shipped held-out JSONL files."""
    return Path(str(resources.files("evalsuite") / "data" / "heldout"))


def is_calibration_record(record_id: str) -> bool:
    """Stable half split of held-out records by id: True = calibration half, False = evaluation half."""
    digest = hashlib.sha256(str(record_id).encode()).digest()
    return digest[0] % 2 == 0


def heldout_split(records: Sequence[dict[str, Any]], part: str = "eval") -> list[dict[str, Any]]:
    """The `part` ("eval" or "calibration") of held-out records, so evaluation never sees calibration text."""
    if part not in ("eval", "calibration"):
        raise ValueError(f"part must be 'eval' or 'calibration', not {part!r}")
    want = part == "calibration"
    return [r for r in records if is_calibration_record(str(r.get("id", ""))) == want]


def data_path(case: Case) -> Path:
    """`heldout:NAME` -> the package's held-out data; anything else is relative to the case's YAML file."""
    assert case.data is not None
    if case.data.startswith(PREFIX):
        path = heldout_dir() / case.data[len(PREFIX):]
    else:
        path = (case.file.parent / case.data).resolve()
    if not path.exists():
        raise CaseFileError(f"{case.file}: case {case.id!r}: field 'data': {path} does not exist")
    return path


def case_rows(case: Case) -> list[dict[str, Any]]:
    """The rows a data case is scored on: the evaluation half of held-out data (never text a recipe may
    calibrate on), the whole file otherwise; the first `limit` of them."""
    rows = read_records(data_path(case))  # JSONL, JSON, CSV, Parquet or a datasets save_to_disk folder
    if case.data and case.data.startswith(PREFIX):
        rows = heldout_split(rows, "eval")
    return rows[: case.limit] if case.limit else rows
