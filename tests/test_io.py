"""evalsuite.io: atomic writes (mode, cleanup, clear errors) and JSON-lines reading with file:line errors."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from evalsuite.errors import EvalsuiteError, InvalidRecipeError, StorageError
from evalsuite.io import atomic_write, atomic_write_text, read_jsonl, write_jsonl


@pytest.fixture
def umask():
    """Set a umask for one test and restore the caller's afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_mode_open_would_give(tmp_path, umask, mask, mode):
    umask(mask)
    target = atomic_write_text(tmp_path / "b.json", "x\n")
    assert target.stat().st_mode & 0o777 == mode


def test_text_bytes_and_chunks_are_written_in_order(tmp_path):
    assert atomic_write_text(tmp_path / "a.txt", "héllo\n").read_bytes() == "héllo\n".encode()
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "sub" / "c.txt", (s for s in ["a", "b", "c"])).read_text() == "abc"


def _only(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_failed_write_keeps_old_content_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "b.json"
    atomic_write_text(target, "old\n")

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match=r"cannot write .*b\.json: No space left on device; free disk space"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert _only(tmp_path) == ["b.json"]


def test_an_exception_while_rendering_chunks_leaves_no_temp_file(tmp_path):
    def chunks():
        yield "half"
        raise RuntimeError("renderer broke")

    with pytest.raises(RuntimeError, match="renderer broke"):
        atomic_write(tmp_path / "r.html", chunks())
    assert _only(tmp_path) == []


def test_read_only_folder_is_a_clear_error(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, mode=0o777, **kw):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(StorageError, match=r"Read-only file system; make .* writable"):
        atomic_write_text(tmp_path / "b.json", "x")
    assert _only(tmp_path) == []


def test_a_folder_in_place_of_the_file_is_a_clear_error(tmp_path):
    (tmp_path / "report").mkdir()
    with pytest.raises(StorageError, match="it is a folder; give a file path"):
        atomic_write_text(tmp_path / "report", "x")


def test_temp_names_are_unique_and_git_ignored(tmp_path, monkeypatch):
    seen: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_text(tmp_path / "b.json", "1")
    atomic_write_text(tmp_path / "b.json", "2")
    assert len(set(seen)) == 2 and all(n.startswith(".b.json.") and n.endswith(".tmp") for n in seen)
    repo = Path(__file__).resolve().parents[1]
    probe = f"baselines/x/{seen[0]}"
    assert subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", probe]).returncode == 0
    assert subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "baselines/x/b.json"]).returncode == 1


def test_jsonl_round_trip_skips_blank_lines_and_honours_limit(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"t": "a\u2028b"}, {"t": 2}])
    assert "\u2028" not in path.read_text()  # ASCII: no character a reader could split a line at
    path.write_text(path.read_text() + "\n  \n" + '{"t": 3}\n')
    assert read_jsonl(path) == [{"t": "a\u2028b"}, {"t": 2}, {"t": 3}]
    assert read_jsonl(path, limit=2) == [{"t": "a\u2028b"}, {"t": 2}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1}\n{"a": \n', r"d\.jsonl:2: not valid JSON"),
        ('{"a": 1}\n\n[1, 2]\n', r"d\.jsonl:3: each line must be a JSON object, got list"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "d.jsonl"
    path.write_text(text)
    with pytest.raises(EvalsuiteError, match=message):
        read_jsonl(path)
    with pytest.raises(InvalidRecipeError, match=message):  # callers pick the error class
        read_jsonl(path, error=InvalidRecipeError)


def test_jsonl_missing_or_binary_file_is_a_clear_error(tmp_path):
    with pytest.raises(EvalsuiteError, match=r"cannot read .*nope\.jsonl"):
        read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "b.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(EvalsuiteError, match="not UTF-8"):
        read_jsonl(tmp_path / "b.jsonl")


def test_atomic_folder_replaces_only_when_complete(tmp_path: Path) -> None:
    from evalsuite.io import atomic_folder

    target = tmp_path / "ckpt"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("export failed")
    assert (target / "a.txt").read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with atomic_folder(target) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


def test_atomic_folder_gets_the_mode_mkdir_would_give(tmp_path, umask):
    from evalsuite.io import atomic_folder

    umask(0o022)
    with atomic_folder(tmp_path / "ckpt") as folder:
        (folder / "config.json").write_text("{}")
    assert (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755
    assert _only(tmp_path) == ["ckpt"]
