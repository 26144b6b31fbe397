"""Files a later run trusts: atomic writes and JSON-lines reading, in one place.

Why one module: baselines, reports, compression records and data files were each written by their own
near-copy (one with a fixed temp name and no fsync, one creating files 0600). Every writer now goes
through `atomic_write`: a uniquely named temp file in the target's folder (so two writers never share
one), fsync, `os.replace`, then an fsync of the folder; readers see the old file or the new one, never
half of one, and a failed write leaves no temp file behind. The new file gets the mode a plain `open()`
would give (0666 minus the umask, so 0644 under the usual 022): other CI users can read baselines.
An OS failure (read-only folder, disk full, a folder where a file should be) becomes one `StorageError`
naming the path and the fix instead of a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from itertools import islice
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError, StorageError

__all__ = [
    "TEMP_SUFFIX",
    "atomic_folder",
    "atomic_write",
    "atomic_write_text",
    "iter_jsonl",
    "read_jsonl",
    "write_jsonl",
]

#: Suffix of in-flight temp files (`.<name>.<random>.tmp`); `.gitignore` ignores `.*.tmp`.
TEMP_SUFFIX = ".tmp"


def _storage_error(path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        fix = "it is a folder; give a file path (e.g. a name ending in the file's extension)"
    elif exc.errno in {28, 122}:  # ENOSPC, EDQUOT
        fix = "free disk space (or raise the quota) and run again; the previous file is unchanged"
    elif isinstance(exc, PermissionError) or exc.errno == 30:  # EROFS
        fix = f"make {path.parent} writable for this user, or point the setting at a writable folder"
    else:
        fix = "check the path and the file system; the previous file is unchanged"
    return StorageError(f"cannot write {path}: {reason}; {fix}")


def atomic_write(path: str | os.PathLike[str], data: str | bytes | Iterable[str]) -> Path:
    """Write ``data`` (text, bytes or text chunks streamed in order) to ``path`` atomically.

    Creates missing parent folders. Raises `StorageError` (never a bare OSError) on failure, with the
    previous content of ``path`` untouched and no temp file left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise _storage_error(target, IsADirectoryError(21, "Is a directory"))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never follow or reuse someone else's file; mode 0o666 lets the umask decide, as open() does
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            chunks: Iterable[str | bytes] = [data] if isinstance(data, str | bytes) else data
            for chunk in chunks:
                handle.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _storage_error(target, exc) from None
        raise
    with suppress(OSError):  # make the rename itself durable where the platform allows it
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder (a checkpoint) in a temp folder next to ``path``; it replaces ``path`` only when complete.

    Every file is fsynced before the rename; an existing folder is moved aside first and deleted after the
    new one is in place, so a reader never sees a half-written checkpoint. On an error the temp folder is
    removed and ``path`` is untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # not mkdtemp (always 0700, so other CI users could not read the checkpoint): mode 0o777 lets the
    # umask decide, as for files; the random name keeps two writers apart
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    tmp.mkdir(mode=0o777)
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """`atomic_write` for one string (UTF-8)."""
    return atomic_write(path, text)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any], *, ensure_ascii: bool = True) -> Path:
    """One JSON value per line, written atomically.

    ASCII by default: U+2028, U+0085 and friends then cannot be mistaken for line breaks by any reader.
    """
    return atomic_write(path, (json.dumps(row, ensure_ascii=ensure_ascii) + "\n" for row in rows))


def iter_jsonl(
    path: str | os.PathLike[str], *, error: type[EvalsuiteError] = EvalsuiteError
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, lazily; blank lines are skipped.

    A line that is not JSON, or JSON that is not an object, raises ``error`` naming ``file:line``.
    """
    source = Path(path)
    try:
        handle = source.open(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {source}: {exc.strerror or exc}") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise error(f"{source}:{number}: not valid JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise error(f"{source}:{number}: each line must be a JSON object, got {type(row).__name__}")
                yield row
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 text ({exc})") from None


def read_jsonl(
    path: str | os.PathLike[str], *, limit: int | None = None, error: type[EvalsuiteError] = EvalsuiteError
) -> list[dict[str, Any]]:
    """The first ``limit`` (default: all) objects of a JSON-lines file; see `iter_jsonl`."""
    return list(islice(iter_jsonl(path, error=error), limit))
