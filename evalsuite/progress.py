"""Progress of long passes: a tqdm bar on a terminal, one start and one end line per phase otherwise.

Why both: generation, scoring, the statistics pass and an export take hours on real models, and a user
must see that they advance; a CI log, though, is read later, and a redrawn bar writes thousands of
carriage-return frames into it. `EVALSUITE_PROGRESS=0` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress"]

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "batch") -> Iterator[T]:
    """Yield ``items`` while showing progress on stderr (see the module docstring)."""
    if os.environ.get("EVALSUITE_PROGRESS", "1") == "0":
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=f"evalsuite: {desc}", total=total, unit=unit, leave=False, file=sys.stderr)
        return
    size = f" ({total} {unit}{'es' if unit.endswith('h') else 's'})" if total is not None else ""
    print(f"evalsuite: {desc}{size} ...", file=sys.stderr, flush=True)
    start, count = time.perf_counter(), 0
    for item in items:
        count += 1
        yield item
    print(f"evalsuite: {desc}: {count} {unit}{'' if count == 1 else 'es' if unit.endswith('h') else 's'} "
          f"in {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)  # fmt: skip
