"""A world-readable copy of what the unprivileged tests run (the sandbox package and the attacks), so
uid 65534 can run them wherever the checkout lives (a CI clone under /root is not readable to it)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import evalsuite

REPO = Path(evalsuite.__file__).resolve().parent.parent
_FILES = ["evalsuite/__init__.py", "evalsuite/errors.py", "tests/sandbox/escapes.py",
          *(str(p.relative_to(REPO)) for p in (REPO / "evalsuite" / "sandbox").glob("*.py"))]


@pytest.fixture(scope="session")
def unprivileged_tree() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="evalsuite-sandbox-tree-"))
    for rel in _FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    for d, _dirs, files in os.walk(root):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)
