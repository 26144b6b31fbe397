"""Run untrusted (model-generated) code in an isolated, resource-limited subprocess.

API:
    run_untrusted(code, *, level="strong", timeout_s=5.0, memory_mb=512, max_processes=32, max_file_mb=16,
                  max_disk_mb=64, max_open_files=64, max_output_bytes=1_000_000, stdin=None, files=None,
                  audit_hook=True, python=None) -> SandboxResult
    run_tests(completion, prompt, tests, entry_point, *, include_prompt=True, **run_kwargs)
        -> SandboxResult        HumanEval-style: prompt + completion + tests (+ check(entry_point))
    build_program(completion, prompt, tests, entry_point, *, include_prompt=True) -> str
    count_passing(completions, prompt, tests, entry_point, **run_kwargs) -> (n, c, results)
        n samples, c of them passed: the input of metrics.passk.pass_at_k(n, c, k)
    isolation_report() -> dict          which levels and kernel layers this machine provides
    SandboxResult(status, stdout, stderr, returncode, duration, reason, isolation, level)
        status: "passed" | "failed" | "timeout" | "killed" | "error"; .passed -> bool
        "error" = the sandbox itself could not run the code (e.g. the level is unavailable: refused).

Isolation levels (see _levels.py): "strong" (default: namespaces, else bubblewrap, else refused),
"namespaces", "bwrap", and "weak" (no namespaces; explicit opt-in). `isolation` lists every layer that
was active, starting with "level:<name>". Whatever the level, a run passes only when the program exited
0 *and* the harness reported, with a per-run nonce the code never sees, that it ran to its end.
Why: generated code is hostile by default (loops, fork/memory bombs, deleting files, network, reading
secrets, killing or tracing the test process, daemons); none of it may touch the test process or host.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from evalsuite.sandbox import _confine, _levels
from evalsuite.sandbox._cgroup import RunCgroup

_HERE = Path(__file__).resolve().parent
_SETUP_FAILED = 125


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run; only status "passed" counts as a passing sample."""

    status: str
    stdout: str
    stderr: str
    returncode: int | None
    duration: float
    reason: str = ""
    isolation: tuple[str, ...] = ()
    level: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"


@functools.lru_cache(maxsize=1)
def _sources() -> dict[str, str]:
    return {name: (_HERE / f"_{name}.py").read_text(encoding="utf-8") for name in ("init", "guard", "confine")}


def _world_usable(path: str) -> bool:
    """True when an unprivileged uid can execute ``path`` and read its stdlib (every dir o+x)."""
    p = Path(os.path.realpath(path))
    try:
        if not p.is_file() or not (p.stat().st_mode & stat.S_IXOTH):
            return False
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents)
    except OSError:
        return False


def _work_base(drop_uid: bool) -> str | None:
    """Where work dirs go: the usual temp dir, unless the throw-away uid could not reach it."""
    base = tempfile.gettempdir()
    if not drop_uid:
        return base
    for cand in (base, "/tmp", "/var/tmp", "/dev/shm"):
        p = Path(cand)
        with contextlib.suppress(OSError):
            if p.is_dir() and all(d.stat().st_mode & stat.S_IXOTH for d in [p, *p.parents]):
                return cand
    return base


@functools.lru_cache(maxsize=4)
def _pick_python(drop_uid: bool) -> str:
    """The interpreter for untrusted code: ours if the sandbox uid can run it, else a system one."""
    own = os.path.realpath(sys.executable)
    if not drop_uid:
        return own
    base = Path(sys.base_prefix)
    if _world_usable(own) and all(d.stat().st_mode & stat.S_IXOTH for d in [base, *base.parents]):
        return own
    for cand in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if os.path.exists(cand) and _world_usable(cand):
            return os.path.realpath(cand)
    return own


def _available_mb() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 4096


FALLBACK_PROCESSES = 4


def process_bound(memory_mb: int, max_processes: int) -> int:
    """Processes allowed when no cgroup can hold the run. Each gets RLIMIT_AS = memory_mb, so the run
    may use processes x memory_mb: at most FALLBACK_PROCESSES x memory_mb and never more than half of
    the memory available now (1024 MB x 32 processes would allow 32 GB on a 23 GB machine)."""
    fits = (_available_mb() // 2) // max(memory_mb, 1)
    return max(1, min(max_processes, FALLBACK_PROCESSES, fits))


def isolation_report() -> dict[str, Any]:
    """What this machine provides: each level ('' = usable, else why not), and the kernel layers."""
    root = os.geteuid() == 0
    levels = {}
    for level in _levels.LEVELS:
        try:
            levels[level] = "" if _levels.resolve(level) else "?"
        except _levels.SandboxUnavailable as e:
            levels[level] = str(e)
    return {"levels": levels, "uid_drop": root, "python": _pick_python(root), "root": root,
            "landlock_abi": _confine.landlock_abi(), "seccomp": _confine.seccomp_supported()}


def _reader(stream: IO[bytes], cap: int, out: list[bytes], flag: list[bool]) -> None:
    """Drain a pipe completely (so the writer never blocks) but keep only the first ``cap`` bytes."""
    kept = 0
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        if kept < cap:
            take = chunk[: cap - kept]
            out.append(take)
            kept += len(take)
            if len(take) < len(chunk):
                flag[0] = True
        else:
            flag[0] = True
    stream.close()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):
        pipe.write(data)
        pipe.close()


def _rmtree(path: str) -> None:
    """Remove the work dir even if the code left unreadable or unwritable entries behind."""

    def fix(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    shutil.rmtree(path, onerror=fix)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


def _kill_uid(uid: int) -> None:
    """Last resort when running without a PID namespace: SIGKILL every process owned by ``uid``."""
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found = True
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                continue
        if not found:
            return


_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGKILL: "killed (SIGKILL; CPU hard limit, memory or deadline)",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGSYS: "forbidden system call (seccomp)",
}


@dataclass(frozen=True)
class _Plan:
    """Everything decided before the run starts: level, uid, limits and the layers they give."""

    level: str
    uid: int | None
    rlimits: dict[str, list[int]]
    layers: tuple[str, ...]
    landlock: bool
    seccomp: bool


def _plan(level: str, *, timeout_s: float, memory_mb: int, max_processes: int, max_file_mb: int,
          max_disk_mb: int, max_open_files: int, n_files: int, cgroup: RunCgroup | None,
          audit_hook: bool) -> _Plan:
    root = os.geteuid() == 0
    uid = secrets.randbelow(1_000_000_000) + 1_000_000 if root else None
    layers = [f"level:{level}"]
    if level == "namespaces":
        layers += ["pid-namespace", "net-namespace", "mount-namespace", "ipc-uts-namespaces", "readonly-fs",
                   "tmpfs-workdir", "private-tmp"]
    elif level == "bwrap":
        layers += ["bubblewrap", "pid-namespace", "net-namespace", "mount-namespace", "ipc-uts-namespaces",
                   "readonly-fs", "tmpfs-workdir", "private-tmp"]
    else:
        layers += ["subreaper", "no-new-files"]
    abi = _confine.landlock_abi()
    layers += _confine.landlock_layers(abi)
    use_seccomp = _confine.seccomp_supported()
    if use_seccomp:
        layers.append("seccomp")
    mem = max(memory_mb, 64)
    if cgroup is not None:
        nproc = max_processes
        layers.append(f"memory-cgroup-{cgroup.version}:{mem}MB")
    else:
        nproc = process_bound(mem, max_processes)
        layers.append(f"memory-bound:{nproc}x{mem}MB")
    # Without a sized tmpfs the disk is bounded by the files that exist (no new ones) x RLIMIT_FSIZE.
    mb = 1024 * 1024
    file_bytes = max_file_mb * mb if level != "weak" else max(1, min(max_file_mb * mb, max_disk_mb * mb // n_files))
    # CPU limit above the wall deadline: the deadline reports "timeout" for a busy loop; the
    # rlimit is the backstop should the supervisor be gone.
    cpu = max(1, math.ceil(timeout_s)) + 1
    rlimits = {
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_AS": [mem * mb] * 2,
        "RLIMIT_FSIZE": [file_bytes] * 2,
        "RLIMIT_NOFILE": [max_open_files] * 2,
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_NPROC": [nproc] * 2,
    }
    layers += ["uid-drop" if uid is not None else "no-capabilities", "rlimits", "no-new-privs", "empty-env",
               *(["audit-hook"] if audit_hook else []), "completion-nonce"]
    return _Plan(level, uid, rlimits, tuple(layers), abi > 0, use_seccomp)


def run_untrusted(
    code: str,
    *,
    level: str = "strong",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_processes: int = 32,
    max_file_mb: int = 16,
    max_disk_mb: int = 64,
    max_open_files: int = 64,
    max_output_bytes: int = 1_000_000,
    stdin: str | None = None,
    files: Mapping[str, str] | None = None,
    audit_hook: bool = True,
    python: str | None = None,
) -> SandboxResult:
    """Run ``code`` as a Python program in a fresh isolated process; never raises for what the code does.

    ``memory_mb`` bounds the whole run (every process, tmpfs page and pipe of it) where a memory cgroup
    is writable, else each process with the process count bounded so the product fits this machine.
    ``files``: extra text files written into the work dir first. A ``level`` that cannot be set up here
    gives status "error" with the reason; nothing is run.
    """
    try:
        concrete = _levels.resolve(level)
    except _levels.SandboxUnavailable as e:
        return SandboxResult("error", "", "", None, 0.0, str(e), (), level)
    all_files = {"solution.py": code, **(files or {})}
    for name in all_files:
        if not name or "/" in name or name in {".", ".."} or "\0" in name:
            raise ValueError(f"sandbox files must be plain names inside the work dir, got {name!r}")
    cgroup = RunCgroup.create(max(memory_mb, 64))
    plan = _plan(concrete, timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes,
                 max_file_mb=max_file_mb, max_disk_mb=max_disk_mb, max_open_files=max_open_files,
                 n_files=len(all_files), cgroup=cgroup, audit_hook=audit_hook)
    interp = python or _pick_python(plan.uid is not None)
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="evalsuite-sbx-", dir=_work_base(plan.uid is not None)))
    if plan.uid is not None and concrete == "weak":
        os.chmod(workdir, 0o700)
    nonce = secrets.token_hex(16)
    status_r, status_w = os.pipe()
    cfg_r, cfg_w = os.pipe()
    t0 = time.monotonic()
    try:
        scratch = ["/dev/shm"] if concrete != "weak" else []
        read_roots = sorted({*_confine.SYSTEM_ROOTS, str(Path(os.path.realpath(interp)).parent.parent),
                             os.path.realpath(sys.base_prefix)})
        src = _sources()
        cfg = {
            "status_fd": status_w, "workdir": workdir, "uid": plan.uid, "level": concrete,
            "rlimits": {k: v for k, v in plan.rlimits.items() if hasattr(resource, k)},
            "timeout_s": timeout_s, "python": interp, "guard_src": src["guard"], "confine_src": src["confine"],
            "audit": audit_hook, "shm_mb": max(1, max_file_mb), "disk_mb": max(1, max_disk_mb),
            "files": all_files, "nonce": nonce, "layers": list(plan.layers), "landlock": plan.landlock,
            "seccomp": plan.seccomp, "scratch": scratch, "read_roots": read_roots,
            "create_files": concrete != "weak",
        }
        boot = [os.path.realpath(sys.executable), "-I", "-S", "-B", "-c", src["init"], str(cfg_r)]
        if concrete == "namespaces":
            prefix = _levels.unshare_prefix()[0] or ()
        elif concrete == "bwrap":
            prefix = _levels.bwrap_prefix(_levels.bwrap_exe()[0] or "bwrap", workdir, max(1, max_disk_mb),
                                          max(1, max_file_mb))
        else:
            prefix = ()
        join = ("/bin/sh", "-c", 'echo 0 > "$1" && shift && exec "$@"', "sh", cgroup.procs) if cgroup else ()
        try:
            proc = subprocess.Popen(
                [*join, *prefix, *boot], cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w, cfg_r),
                start_new_session=True, close_fds=True,
            )
        except OSError as e:
            return SandboxResult("error", "", "", None, 0.0, f"could not start the sandbox: {e}", plan.layers,
                                 concrete)
        for fd in (status_w, cfg_r):
            os.close(fd)
        status_w = cfg_r = -1
        cfg_pipe = os.fdopen(cfg_w, "wb")
        cfg_w = -1
        outs: dict[str, list[bytes]] = {"out": [], "err": [], "status": []}
        trunc = {"out": [False], "err": [False], "status": [False]}
        threads = [
            threading.Thread(target=_reader, args=(proc.stdout, max_output_bytes, outs["out"], trunc["out"])),
            threading.Thread(target=_reader, args=(proc.stderr, max_output_bytes, outs["err"], trunc["err"])),
            threading.Thread(target=_reader, args=(os.fdopen(status_r, "rb"), 65536, outs["status"],
                                                   trunc["status"])),
            threading.Thread(target=_feed, args=(cfg_pipe, json.dumps(cfg).encode())),
        ]
        status_r = -1
        if stdin is not None and proc.stdin is not None:
            # A thread, so code that never reads stdin cannot block us on a full pipe.
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin.encode())))
        for t in threads:
            t.daemon = True
            t.start()
        parent_timeout = False
        try:
            proc.wait(timeout=timeout_s + 10.0)  # the supervisor enforces timeout_s; this is a backstop
        except subprocess.TimeoutExpired:
            parent_timeout = True
        _kill_session(proc)
        oom = False
        if cgroup is not None:
            oom = cgroup.oom_killed()
            cgroup.remove()
            cgroup = None
        if plan.uid is not None and concrete == "weak":
            _kill_uid(plan.uid)
        for t in threads:
            t.join(timeout=5.0)
        wall = time.monotonic() - t0
        return _interpret(outs, trunc, parent_timeout, wall, proc.returncode, plan, nonce=nonce, oom=oom)
    finally:
        for fd in (status_r, status_w, cfg_r, cfg_w):
            if fd >= 0:
                os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        _rmtree(workdir)


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _interpret(
    outs: dict[str, list[bytes]], trunc: dict[str, list[bool]], parent_timeout: bool, wall: float,
    launcher_rc: int | None, plan: _Plan, *, nonce: str, oom: bool,
) -> SandboxResult:
    stdout = b"".join(outs["out"]).decode("utf-8", "replace")
    stderr = b"".join(outs["err"]).decode("utf-8", "replace")
    if trunc["out"][0]:
        stdout += "\n[evalsuite: output truncated]"
    if trunc["err"][0]:
        stderr += "\n[evalsuite: output truncated]"
    line = b"".join(outs["status"]).decode("utf-8", "replace").strip().splitlines()
    try:
        st: dict[str, Any] = json.loads(line[-1]) if line else {}
    except json.JSONDecodeError:
        st = {}
    isolation = plan.layers

    def result(status: str, rc: int | None, dur: float, reason: str) -> SandboxResult:
        return SandboxResult(status, stdout, stderr, rc, dur, reason, isolation, plan.level)

    if not st:
        if parent_timeout:
            return result("timeout", None, wall, "deadline exceeded")
        setup = [ln for ln in stderr.splitlines() if "evalsuite sandbox setup failed" in ln]
        why = setup[-1] if setup else f"sandbox supervisor ended without a status (exit {launcher_rc})"
        return result("error", launcher_rc, wall, why)
    rc = st.get("returncode")
    dur = float(st.get("duration", wall))
    if st.get("timed_out"):
        return result("timeout", rc, dur, "deadline exceeded")
    if rc == _SETUP_FAILED and "evalsuite sandbox setup failed" in stderr:
        return result("error", rc, dur, stderr.strip().splitlines()[-1])
    if oom:
        return result("killed", rc, dur, "memory limit of the run exceeded (cgroup)")
    if rc == 0 and secrets.compare_digest(str(st.get("done", "")), nonce):
        return result("passed", 0, dur, "")
    if rc == 0:
        return result("failed", 0, dur, "exited before the end of the program/tests (exit status 0 without the "
                                        "harness's completion report)")
    if rc is not None and rc < 0:
        sig = -rc
        reason = _SIGNAL_REASONS.get(sig, f"killed by signal {sig}")
        return result("killed", rc, dur, reason)
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    reason = "memory limit exceeded (MemoryError)" if "MemoryError" in last else last[:200]
    return result("failed", rc, dur, reason or f"exit status {rc}")


def build_program(
    completion: str, prompt: str, tests: str, entry_point: str, *, include_prompt: bool = True
) -> str:
    """HumanEval-style program: prompt + completion, then the tests, then check(entry_point) when the
    tests define ``check`` (bare ``assert`` lines run as they are)."""
    body = (prompt + completion) if include_prompt else completion
    program = f"{body}\n\n{tests}\n"
    if "def check(" in tests:
        program += f"\ncheck({entry_point})\n"
    return program


def run_tests(
    completion: str,
    prompt: str,
    tests: str,
    entry_point: str,
    *,
    include_prompt: bool = True,
    **run_kwargs: Any,
) -> SandboxResult:
    """Run a completion against its tests in the sandbox; "passed" only if every assert held."""
    program = build_program(completion, prompt, tests, entry_point, include_prompt=include_prompt)
    return run_untrusted(program, **run_kwargs)


def count_passing(
    completions: Sequence[str], prompt: str, tests: str, entry_point: str, **run_kwargs: Any
) -> tuple[int, int, list[SandboxResult]]:
    """Run every sampled completion of one problem; (n, c) feed the unbiased pass@k estimator."""
    results = [run_tests(c, prompt, tests, entry_point, **run_kwargs) for c in completions]
    return len(results), sum(r.passed for r in results), results
