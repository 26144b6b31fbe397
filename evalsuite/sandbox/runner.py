"""Run untrusted (model-generated) code in an isolated, resource-limited subprocess.

API:
    run_untrusted(code, *, timeout_s=5.0, memory_mb=512, max_processes=32, max_file_mb=16,
                  max_disk_mb=64, max_open_files=64, max_output_bytes=1_000_000, stdin=None, files=None,
                  audit_hook=True, namespaces=None, python=None) -> SandboxResult
    run_tests(completion, prompt, tests, entry_point, *, include_prompt=True, **run_kwargs)
        -> SandboxResult        HumanEval-style: prompt + completion + tests (+ check(entry_point))
    build_program(completion, prompt, tests, entry_point, *, include_prompt=True) -> str
    count_passing(completions, prompt, tests, entry_point, **run_kwargs) -> (n, c, results)
        n samples, c of them passed: the input of metrics.passk.pass_at_k(n, c, k)
    isolation_report() -> dict          which kernel layers this machine provides (for --help / reports)
    SandboxResult(status, stdout, stderr, returncode, duration, reason, isolation)
        status: "passed" | "failed" | "timeout" | "killed" | "error"; .passed -> bool

Layers, strongest first (each is used when the machine allows it; `isolation` lists what was active):
  * `unshare` network + PID + mount + IPC + UTS namespaces (plus a user namespace when not root):
    no network interface except a down loopback, no view of the parent's processes, and when the
    supervisor exits every process left in the namespace is killed by the kernel;
  * read-only, nosuid remount of the whole file system (mount namespace); the work dir is a private
    tmpfs of max_disk_mb at the same path, and /tmp, /var/tmp, /run, /dev/shm are empty private tmpfs;
  * a throw-away uid (when started as root), so file permissions, RLIMIT_NPROC (per uid) and signal
    permissions apply, and a kill(-1) sweep by that uid removes every straggler;
  * rlimits: CPU, address space, processes, file size, open files, no core dumps;
  * an empty environment, an empty temp dir as cwd, no_new_privs, ``python -I -S -B``;
  * a PEP 578 audit hook (see _guard.py), defence in depth only;
  * a wall-clock deadline enforced by the supervisor and again by this process (kill the session).
Why: generated code is hostile by default (loops, fork/memory bombs, deleting files, network,
reading secrets from the environment); none of it may take the test process down.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
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

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"


@functools.lru_cache(maxsize=1)
def _sources() -> tuple[str, str]:
    return (_HERE / "_init.py").read_text(encoding="utf-8"), (_HERE / "_guard.py").read_text(encoding="utf-8")


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


_NS_FLAGS = ["--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--ipc", "--uts"]


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...] | None:
    """The unshare command line that works here, probed once; None when namespaces are unavailable."""
    exe = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if exe is None:
        return None
    flags = list(_NS_FLAGS)
    if os.geteuid() != 0:
        flags += ["--user", "--map-root-user"]
    cmd = [exe, *flags, "--", sys.executable, "-I", "-S", "-c", "import os; assert os.getpid() == 1"]
    try:
        ok = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=20, env={}).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (exe, *flags, "--") if ok else None


def isolation_report() -> dict[str, Any]:
    """What this machine provides: namespaces via unshare, uid drop (root), the interpreter used."""
    root = os.geteuid() == 0
    return {"namespaces": _unshare_prefix() is not None, "uid_drop": root,
            "python": _pick_python(root), "root": root}


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
}


def run_untrusted(
    code: str,
    *,
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
    namespaces: bool | None = None,
    python: str | None = None,
) -> SandboxResult:
    """Run ``code`` as a Python program in a fresh isolated process; never raises for what the code does.

    ``namespaces``: None = use unshare when it works here, False = never, True = require it (status
    "error" if unavailable). ``files``: extra text files written into the work dir first.
    """
    prefix = _unshare_prefix() if namespaces is not False else None
    if namespaces and prefix is None:
        return SandboxResult("error", "", "", None, 0.0, "namespaces requested but unshare does not work here")
    root = os.geteuid() == 0
    uid = secrets.randbelow(1_000_000_000) + 1_000_000 if root else None
    interp = python or _pick_python(uid is not None)
    init_src, guard_src = _sources()

    workdir = tempfile.mkdtemp(prefix="evalsuite-sbx-", dir=_work_base(uid is not None))
    status_r, status_w = os.pipe()
    t0 = time.monotonic()
    try:
        Path(workdir, "solution.py").write_text(code, encoding="utf-8")
        for name, content in (files or {}).items():
            target = Path(workdir, name)
            if target.resolve().parent != Path(workdir).resolve():
                raise ValueError(f"sandbox files must be plain names inside the work dir, got {name!r}")
            target.write_text(content, encoding="utf-8")
        if uid is not None:
            for p in [workdir, *[os.path.join(workdir, f) for f in os.listdir(workdir)]]:
                os.chown(p, uid, uid)
        os.chmod(workdir, 0o700)

        mem = max(memory_mb, 64) * 1024 * 1024
        # CPU limit above the wall deadline: the deadline reports "timeout" for a busy loop; the
        # rlimit is the backstop should the supervisor be gone.
        cpu = max(1, math.ceil(timeout_s)) + 1
        rlimits = {
            "RLIMIT_CPU": [cpu, cpu + 1],
            "RLIMIT_AS": [mem, mem],
            "RLIMIT_FSIZE": [max_file_mb * 1024 * 1024] * 2,
            "RLIMIT_NOFILE": [max_open_files] * 2,
            "RLIMIT_CORE": [0, 0],
            "RLIMIT_NPROC": [max_processes] * 2,
        }
        cfg = {
            "status_fd": status_w, "workdir": os.path.realpath(workdir), "uid": uid,
            "rlimits": rlimits, "timeout_s": timeout_s, "python": interp, "guard_src": guard_src,
            "audit": audit_hook, "readonly_fs": prefix is not None, "shm_mb": max(1, max_file_mb),
            "disk_mb": max(1, max_disk_mb),
        }
        boot = [os.path.realpath(sys.executable), "-I", "-S", "-B", "-c", init_src, json.dumps(cfg)]
        cmd = [*(prefix or ()), *boot]
        try:
            proc = subprocess.Popen(
                cmd, cwd=workdir, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w,),
                start_new_session=True, close_fds=True,
            )
        except OSError as e:
            return SandboxResult("error", "", "", None, 0.0, f"could not start the sandbox: {e}")
        os.close(status_w)
        status_w = -1
        outs: dict[str, list[bytes]] = {"out": [], "err": [], "status": []}
        trunc = {"out": [False], "err": [False], "status": [False]}
        threads = [
            threading.Thread(target=_reader, args=(proc.stdout, max_output_bytes, outs["out"], trunc["out"])),
            threading.Thread(target=_reader, args=(proc.stderr, max_output_bytes, outs["err"], trunc["err"])),
            threading.Thread(target=_reader, args=(os.fdopen(status_r, "rb"), 65536, outs["status"],
                                                   trunc["status"])),
        ]
        status_r = -1
        for t in threads:
            t.daemon = True
            t.start()
        if stdin is not None and proc.stdin is not None:
            # A thread, so code that never reads stdin cannot block us on a full pipe.
            feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin.encode()), daemon=True)
            feeder.start()
        parent_timeout = False
        try:
            proc.wait(timeout=timeout_s + 10.0)  # the supervisor enforces timeout_s; this is a backstop
        except subprocess.TimeoutExpired:
            parent_timeout = True
        _kill_session(proc)
        if uid is not None and prefix is None:
            _kill_uid(uid)
        for t in threads:
            t.join(timeout=5.0)
        wall = time.monotonic() - t0
        return _interpret(outs, trunc, parent_timeout, wall, proc.returncode,
                          namespaces=prefix is not None, audit_hook=audit_hook)
    finally:
        for fd in (status_r, status_w):
            if fd >= 0:
                os.close(fd)
        _rmtree(workdir)


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _interpret(
    outs: dict[str, list[bytes]], trunc: dict[str, list[bool]], parent_timeout: bool, wall: float,
    launcher_rc: int | None, *, namespaces: bool, audit_hook: bool,
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
    layers = list(st.get("layers", []))
    if namespaces:
        layers = ["net-namespace", "mount-namespace", "ipc-uts-namespaces", *layers]
    if audit_hook:
        layers.append("audit-hook")
    isolation = (*layers, "empty-env", "temp-cwd")
    if not st:
        if parent_timeout:
            return SandboxResult("timeout", stdout, stderr, None, wall, "deadline exceeded", isolation)
        return SandboxResult("error", stdout, stderr, launcher_rc, wall,
                             f"sandbox supervisor ended without a status (exit {launcher_rc})", isolation)
    rc = st.get("returncode")
    dur = float(st.get("duration", wall))
    if st.get("timed_out"):
        return SandboxResult("timeout", stdout, stderr, rc, dur, "deadline exceeded", isolation)
    if rc == 0:
        return SandboxResult("passed", stdout, stderr, 0, dur, "", isolation)
    if rc == _SETUP_FAILED and "evalsuite sandbox setup failed" in stderr:
        return SandboxResult("error", stdout, stderr, rc, dur, stderr.strip().splitlines()[-1], isolation)
    if rc is not None and rc < 0:
        sig = -rc
        reason = _SIGNAL_REASONS.get(sig, f"killed by signal {sig}")
        return SandboxResult("killed", stdout, stderr, rc, dur, reason, isolation)
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    reason = "memory limit exceeded (MemoryError)" if "MemoryError" in last else last[:200]
    return SandboxResult("failed", stdout, stderr, rc, dur, reason or f"exit status {rc}", isolation)


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
