"""Users' data through `datasets`: every format gives the same records; bad data is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.datafiles import iter_records, read_records
from evalsuite.errors import CaseFileError, EvalsuiteError

ROWS = [{"id": "a", "text": "the cat sat"}, {"id": "b", "text": "el perro duerme"}]


def test_every_format_reads_the_same_records(tmp_path: Path, write_all_formats) -> None:
    for fmt, path in write_all_formats(tmp_path, ROWS).items():
        assert read_records(path) == ROWS, fmt
        assert read_records(path, limit=1) == ROWS[:1], fmt


def test_dataset_dict_folder_uses_train_or_asks(tmp_path: Path) -> None:
    import datasets

    train, test = datasets.Dataset.from_list(ROWS), datasets.Dataset.from_list(ROWS[:1])
    both = datasets.DatasetDict({"train": train, "test": test})
    both.save_to_disk(tmp_path / "dd")
    assert read_records(tmp_path / "dd") == ROWS
    odd = datasets.DatasetDict({"a": datasets.Dataset.from_list(ROWS), "b": datasets.Dataset.from_list(ROWS)})
    odd.save_to_disk(tmp_path / "odd")
    with pytest.raises(EvalsuiteError, match=r"splits \['a', 'b'\].*save the one to use alone"):
        read_records(tmp_path / "odd")


def test_bad_data_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(CaseFileError, match=r"bad\.jsonl:2: not valid JSON"):
        read_records(tmp_path / "bad.jsonl", error=CaseFileError)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EvalsuiteError, match=r"bad\.parquet: datasets could not read it"):
        read_records(tmp_path / "bad.parquet")
    (tmp_path / "data.xlsx").write_bytes(b"")
    with pytest.raises(EvalsuiteError, match=r"unknown data format '\.xlsx'"):
        read_records(tmp_path / "data.xlsx")
    (tmp_path / "plain").mkdir()
    with pytest.raises(EvalsuiteError, match="not one written by datasets' save_to_disk"):
        read_records(tmp_path / "plain")


def test_large_files_are_read_lazily(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "big.parquet"
    datasets.Dataset.from_list([{"text": f"row {i}"} for i in range(50_000)]).to_parquet(path)
    records = iter_records(path)
    assert next(records) == {"text": "row 0"}  # streamed: the first record without materialising the rest


def test_data_digest_is_the_file_hash_and_covers_folders(tmp_path: Path, write_all_formats) -> None:
    import hashlib

    from evalsuite.datafiles import data_digest

    paths = write_all_formats(tmp_path, ROWS)
    assert data_digest(paths["jsonl"]) == hashlib.sha256(paths["jsonl"].read_bytes()).hexdigest()  # baselines keep
    before = data_digest(paths["saved"])
    (tmp_path / "other").mkdir()
    write_all_formats(tmp_path / "other", [*ROWS, {"id": "c", "text": "more"}])
    assert data_digest(tmp_path / "other" / "saved") != before
