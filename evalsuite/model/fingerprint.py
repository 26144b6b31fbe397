"""Fingerprint a checkpoint from its files, in parallel, with an on-disk cache.

Why files and not a loaded model: the fingerprint keys every stored baseline, and a gate of a compressed
checkpoint needs the *base* model's fingerprint to find them. Hashing a loaded model forced the base into
memory next to the checkpoint under test (two models at once); hashing files needs none, runs one thread
per shard (hashlib releases the GIL on large buffers) and is cached, so an unchanged checkpoint is not
re-read.

What is hashed, and why (everything that changes what the gate measures, nothing that does not):

- ``config.json``, parsed and without the keys that only say how the file was written
  (``_name_or_path``, ``transformers_version``, ``torch_dtype``/``dtype``): the architecture.
- every ``*.safetensors`` file, its exact bytes: the weights (re-sharding or re-saving with other metadata
  therefore changes the fingerprint; baselines are re-recorded rather than trusted wrongly).
- the tokenizer files (``tokenizer*``, vocab/merges, special/added tokens, chat templates), exact bytes:
  a new chat template or vocabulary changes every prompt the model sees.
- ``generation_config.json`` without ``transformers_version``: its end-of-sequence ids stop generation.

Not hashed: the safetensors index (it only says where tensors are), model cards, training logs,
evalsuite's own compression record, processors of other modalities (the gate feeds text only).

Cache: one JSON file (``$EVALSUITE_CACHE_DIR`` or ``$XDG_CACHE_HOME/evalsuite`` or ``~/.cache/evalsuite``)
mapping (resolved path, size, mtime_ns, inode) of a file to its digest. A rewritten file changes its
mtime/size/inode, so a stale entry is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from evalsuite.errors import StorageError
from evalsuite.io import atomic_write
from evalsuite.progress import progress

__all__ = ["fingerprint_checkpoint", "fingerprinted_files", "cache_path"]

_VOLATILE_KEYS = frozenset({"_name_or_path", "transformers_version", "torch_dtype", "dtype"})
_JSON_CANONICAL = {"config.json", "generation_config.json"}
_TOKENIZER_NAMES = frozenset(
    {
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
    }
)
_CHUNK = 16 << 20
_MAX_CACHE_ENTRIES = 4096
_SHOW_PROGRESS_BYTES = 1 << 30  # small checkpoints hash in well under a second: no progress lines


def fingerprinted_files(folder: Path) -> list[Path]:
    """The files of a checkpoint folder that the fingerprint covers (see the module docstring)."""
    out = []
    for path in sorted(Path(folder).iterdir()):
        name = path.name
        if not path.is_file():
            continue
        if (
            name in _JSON_CANONICAL
            or name in _TOKENIZER_NAMES
            or name.endswith(".safetensors")
            or name.startswith("tokenizer")
            or name.endswith(".tiktoken")
        ):
            out.append(path)
    return out


def cache_path() -> Path:
    """Where file digests are cached (the folder is created on first write)."""
    root = os.environ.get("EVALSUITE_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "evalsuite")
    return Path(root) / "fingerprints.json"


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def _digest(path: Path) -> str:
    """sha256 of a file (canonical JSON for config files, so a re-save with a newer library is no change)."""
    if path.name in _JSON_CANONICAL:
        data = json.loads(path.read_text(encoding="utf-8"))
        stable = {k: v for k, v in data.items() if k not in _VOLATILE_KEYS}
        return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])  # releases the GIL: shards hash on all cores
    return digest.hexdigest()


def _load_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, entries: dict[str, str]) -> None:
    """Atomic: a concurrent reader sees the old or the new cache, never half of one."""
    with suppress(StorageError):  # a read-only home only costs speed: the digest is recomputed next time
        atomic_write(path, json.dumps(dict(list(entries.items())[-_MAX_CACHE_ENTRIES:])))


def fingerprint_checkpoint(folder: str | Path, *, workers: int | None = None, use_cache: bool = True) -> str:
    """sha256 fingerprint of a checkpoint folder (64 hex), computed from its files; see module docstring."""
    folder = Path(folder)
    files = fingerprinted_files(folder)
    cache_file = cache_path()
    cache = _load_cache(cache_file) if use_cache else {}
    keys = {f: _file_key(f) for f in files}
    todo = [f for f in files if keys[f] not in cache]
    if todo:
        largest_first = sorted(todo, key=lambda f: -f.stat().st_size)
        n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        with ThreadPoolExecutor(max_workers=n) as pool:
            digests = pool.map(_digest, largest_first)
            if sum(f.stat().st_size for f in todo) > _SHOW_PROGRESS_BYTES:
                digests = progress(digests, f"fingerprinting {folder.name}", total=len(todo), unit="file")
            for f, d in zip(largest_first, digests, strict=True):
                cache[keys[f]] = d
        if use_cache:
            _save_cache(cache_file, cache)
    combined = hashlib.sha256()
    for f in files:
        combined.update(f"{f.name}\0{cache[keys[f]]}\n".encode())
    return combined.hexdigest()
