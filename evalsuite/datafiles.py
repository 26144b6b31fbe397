"""Users' data files through `datasets`: JSON lines, CSV, Parquet and `save_to_disk` folders.

Why `datasets`: a user's calibration sample or evaluation data usually already is a `datasets` artefact (a
saved C4 or wikitext slice, a Parquet export), and `datasets` reads each of these formats without
evalsuite growing a reader per format. Folders written by `save_to_disk` are memory-mapped Arrow;
CSV, Parquet and JSON files are read in streaming mode, record by record, so a multi-gigabyte file is
never held in memory. JSON lines go through `evalsuite.io.iter_jsonl` (also streamed): its errors name
``file:line``, where pyarrow's name a 0-based row. Nothing is downloaded: only local paths are accepted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError
from evalsuite.io import iter_jsonl

__all__ = ["DATA_SUFFIXES", "data_digest", "is_dataset_folder", "iter_records", "read_records"]

#: file suffix -> the `datasets` packaged builder that reads it
DATA_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_SPLIT_PREFERENCE = ("train", "validation", "test")


def is_dataset_folder(path: str | os.PathLike[str]) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    folder = Path(path)
    return folder.is_dir() and any((folder / marker).is_file() for marker in ("state.json", "dataset_dict.json"))


def _from_disk(folder: Path, error: type[EvalsuiteError]) -> Any:
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(folder))
    if isinstance(data, DatasetDict):
        splits = list(data)
        pick = next((s for s in _SPLIT_PREFERENCE if s in data), splits[0] if len(splits) == 1 else None)
        if pick is None:
            raise error(f"{folder} holds splits {splits}; save the one to use alone (dataset[split].save_to_disk)")
        data = data[pick]
    return data


def iter_records(path: str | os.PathLike[str], *, error: type[EvalsuiteError] = EvalsuiteError) -> Iterator[dict]:
    """The records of a local data file or `save_to_disk` folder, one dict per row, lazily."""
    source = Path(path)
    try:
        if source.is_dir():
            if not is_dataset_folder(source):
                raise error(f"{source} is a folder but not one written by datasets' save_to_disk (no state.json)")
            yield from _from_disk(source, error)
            return
        if source.suffix.lower() == ".jsonl":
            yield from iter_jsonl(source, error=error)
            return
        builder = DATA_SUFFIXES.get(source.suffix.lower())
        if builder is None:
            raise error(f"{source}: unknown data format {source.suffix!r}; use {', '.join(DATA_SUFFIXES)} or a "
                        "datasets save_to_disk folder")  # fmt: skip
        if not source.is_file():
            raise error(f"data file {source} does not exist")
        from datasets import load_dataset

        yield from load_dataset(builder, data_files=str(source), split="train", streaming=True)
    except EvalsuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets/pyarrow raise many types for unreadable data
        cause = exc.__cause__ or exc
        raise error(f"{source}: datasets could not read it ({type(cause).__name__}: {cause})") from None


def read_records(
    path: str | os.PathLike[str], *, limit: int | None = None, error: type[EvalsuiteError] = EvalsuiteError
) -> list[dict[str, Any]]:
    """The first ``limit`` (default: all) records; see `iter_records`."""
    return list(islice(iter_records(path, error=error), limit))


def data_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a data file's bytes, or of every file of a data folder (names and bytes, in path order)."""
    source = Path(path)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    digest = hashlib.sha256()
    for file in files:
        if source.is_dir():
            digest.update(str(file.relative_to(source)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
