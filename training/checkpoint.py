"""Resumable training state: one file per run, replaced atomically, so a kill -9 at any moment resumes.

Where: training/runs/<run>/ (git-ignored). `ckpt.pt` holds everything the next step depends on: model
and optimizer state, step, tokens seen, wall time, the numpy generator that draws the data windows
(that *is* the data position: windows are sampled, so the same state gives the same next batches) and
torch's RNG, and a digest of every token stream (resuming on other data is refused).
A checkpoint is written with `evalsuite.io.atomic_write` (a temp file in the same folder, fsync,
rename over `ckpt.pt`); a kill during the write leaves the previous checkpoint intact (and at most a
stray `.ckpt.pt.*.tmp`, git-ignored). `log.csv` rows past the checkpoint's step are dropped
on resume, so the log never holds the same step twice.

If the run folder is lost, the state cannot be rebuilt: the exported model in evalsuite/default_model
has the weights but no optimizer or RNG state. Retrain with the same command (the corpus, tokenizer and
data order are deterministic from the seeds), or start a new run from the export with
`train.py --init-from` (fresh optimizer and schedule; see training/README.md).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from evalsuite.io import atomic_write

CKPT = "ckpt.pt"
LOG = "log.csv"


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(run_dir / CKPT, buf.getvalue())


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The last complete checkpoint of the run, or None when there is none yet."""
    path = run_dir / CKPT
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def trim_log(run_dir: Path, step: int) -> None:
    """Drop log rows logged after `step` (written after the checkpoint the run resumes from)."""
    path = run_dir / LOG
    if not path.exists():
        return
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(keep)
    atomic_write(path, buf.getvalue())
