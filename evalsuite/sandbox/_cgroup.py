"""A memory cgroup per sandbox run: one limit for the run's processes together, and a kill switch.

Why: rlimits are per process, so N forked children may each use the full RLIMIT_AS (12 children used
2.5 GB under a 256 MB limit). A cgroup charges every process, tmpfs page and pipe buffer of the run to
one budget. cgroup v2 is used where its memory controller is delegated and writable, else the v1 memory
hierarchy (hybrid hosts); neither -> None, and the runner falls back to a process-count x memory bound.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mount point, super options) of every cgroup mount."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in {"cgroup", "cgroup2"}:
                out.append((rfields[0], fields[4], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller name ('' for v2) -> this process's cgroup path."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                paths[c] = path
    return paths


def _candidates() -> list[tuple[str, Path]]:
    own, found = _own_paths(), []
    for fstype, point, opts in _mounts():
        if fstype == "cgroup2" and "" in own:
            found.append(("v2", Path(point + own[""].rstrip("/"))))
        elif fstype == "cgroup" and "memory" in opts and "memory" in own:
            found.append(("v1", Path(point + own["memory"].rstrip("/"))))
    return sorted(found, key=lambda c: c[0] != "v2")  # v2 first


class RunCgroup:
    """One run's memory cgroup. ``procs`` is the file a process writes "0" to in order to join."""

    def __init__(self, version: str, path: Path) -> None:
        self.version, self.path = version, path
        self.procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, memory_mb: int) -> RunCgroup | None:
        """A fresh cgroup limited to ``memory_mb``, or None when no writable memory cgroup exists."""
        limit = str(memory_mb * 1024 * 1024)
        for version, parent in _candidates():
            path = parent / f"evalsuite-sbx-{secrets.token_hex(6)}"
            try:
                path.mkdir()
            except OSError:
                continue
            cg = cls(version, path)
            try:
                if version == "v2":
                    (path / "memory.max").write_text(limit)
                    if (path / "memory.swap.max").exists():
                        (path / "memory.swap.max").write_text("0")
                else:
                    (path / "memory.limit_in_bytes").write_text(limit)
                    memsw = path / "memory.memsw.limit_in_bytes"
                    if memsw.exists():
                        with contextlib.suppress(OSError):
                            memsw.write_text(limit)
                return cg
            except OSError:
                cg.remove()
        return None

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(self.procs).read_text().split()]
        return []

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this run for exceeding the run's memory limit?"""
        with contextlib.suppress(OSError, ValueError):
            if self.version == "v2":
                events = dict(ln.split() for ln in (self.path / "memory.events").read_text().splitlines())
                return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0
            return int((self.path / "memory.failcnt").read_text()) > 0
        return False

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (daemons the code left behind included)."""
        kill_file = self.path / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the last killed processes are still being torn down
