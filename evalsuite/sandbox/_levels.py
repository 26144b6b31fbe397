"""Isolation levels of the sandbox, how each is launched, and why one is refused on this machine.

  * "namespaces": util-linux ``unshare`` (network, PID, mount, IPC, UTS namespaces; a user namespace
    when not root); the supervisor remounts everything read-only and puts the work dir on a sized tmpfs.
  * "bwrap": bubblewrap (Debian package ``bubblewrap``) builds the same namespaces and mounts; a second,
    well-audited implementation for hosts where plain ``unshare`` is not allowed but bwrap is.
  * "strong" (default): "namespaces" if it works here, else "bwrap"; refused when neither works.
  * "weak" (explicit opt-in only): no namespaces; Landlock (ABI >= 6) confines files, TCP, signals and
    ptrace, seccomp refuses other sockets and the dangerous system calls, the work dir may not grow
    new files (disk bound = files x RLIMIT_FSIZE), a subreaper supervisor kills every descendant.
Every level also gets rlimits, a per-run memory cgroup (or a process x memory bound), Landlock and
seccomp where the kernel has them, a throw-away uid as root, an empty environment and the audit hook.
A level that cannot be set up is never replaced silently by a weaker one: the run is refused.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

from evalsuite.errors import EvalsuiteError
from evalsuite.sandbox import _confine

LEVELS = ("strong", "namespaces", "bwrap", "weak")
_NS_FLAGS = ("--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--ipc", "--uts")


class SandboxUnavailable(EvalsuiteError):
    """The requested isolation level cannot be set up here; the code is not run at all."""


def _works(cmd: list[str]) -> str:
    """'' when ``cmd`` (a namespace launcher around a tiny PID-1 check) succeeds, else why not."""
    probe = [*cmd, os.path.realpath(sys.executable), "-I", "-S", "-c", "import os; assert os.getpid() == 1"]
    try:
        proc = subprocess.run(probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=20, env={}, cwd="/")
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return "" if proc.returncode == 0 else (err[-1] if err else f"exit status {proc.returncode}")


@functools.lru_cache(maxsize=1)
def unshare_prefix() -> tuple[tuple[str, ...] | None, str]:
    """(the unshare command prefix, '') when it works here, else (None, the reason)."""
    exe = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if exe is None:
        return None, "util-linux `unshare` is not installed"
    flags = [*_NS_FLAGS, *(["--user", "--map-root-user"] if os.geteuid() != 0 else [])]
    why = _works([exe, *flags, "--"])
    return ((exe, *flags, "--"), "") if not why else (None, f"`unshare {' '.join(flags)}` failed: {why}")


@functools.lru_cache(maxsize=1)
def bwrap_exe() -> tuple[str | None, str]:
    """(path of a working bwrap, '') or (None, the reason)."""
    exe = shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")
    if exe is None:
        return None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install -y bubblewrap)"
    why = _works([exe, *_bwrap_unshare(), "--as-pid-1", "--die-with-parent", "--ro-bind", "/", "/",
                  "--proc", "/proc", "--dev", "/dev"])
    return (exe, "") if not why else (None, f"bubblewrap cannot create its namespaces here: {why}")


def _bwrap_unshare() -> list[str]:
    """Every namespace; a user namespace only when not root (as root the supervisor needs real uids
    to drop to a throw-away one, which a root-only uid map would not contain)."""
    flags = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    return flags if os.geteuid() == 0 else ["--unshare-user", *flags]


def bwrap_prefix(exe: str, workdir: str, disk_mb: int, shm_mb: int) -> tuple[str, ...]:
    """bubblewrap arguments: fresh namespaces, read-only root, private sized tmpfs work dir and scratch."""
    mb = 1024 * 1024
    args = [exe, *_bwrap_unshare(), "--as-pid-1", "--die-with-parent",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
            "--size", str(shm_mb * mb), "--tmpfs", "/dev/shm"]
    for d in ("/tmp", "/var/tmp", "/run"):
        if os.path.isdir(d) and not os.path.islink(d) and d != workdir:
            args += ["--size", str(mb), "--tmpfs", d]
    args += ["--size", str(disk_mb * mb), "--perms", "0700", "--tmpfs", workdir, "--chdir", "/", "--"]
    return tuple(args)


def weak_unavailable() -> str:
    """'' when the "weak" level can contain every listed escape here, else why it cannot."""
    abi = _confine.landlock_abi()
    if abi < _confine.FULL_SCOPES_ABI:
        return (f"Landlock ABI {abi} (need >= {_confine.FULL_SCOPES_ABI}, Linux 6.12) to confine signals,"
                " ptrace and files without namespaces")
    if not _confine.seccomp_supported():
        return "no seccomp filter for this CPU architecture"
    return ""


def resolve(level: str) -> str:
    """The concrete level to use for ``level``, or SandboxUnavailable naming why and what to do."""
    if level not in LEVELS:
        raise SandboxUnavailable(f"unknown sandbox level {level!r}; choose one of {', '.join(LEVELS)}")
    if level == "weak":
        why = weak_unavailable()
        if why:
            raise SandboxUnavailable(f"sandbox level 'weak' is unavailable: {why}")
        return "weak"
    reasons = []
    if level in ("strong", "namespaces"):
        prefix, why = unshare_prefix()
        if prefix is not None:
            return "namespaces"
        reasons.append(why)
    if level in ("strong", "bwrap"):
        exe, why = bwrap_exe()
        if exe is not None:
            return "bwrap"
        reasons.append(why)
    raise SandboxUnavailable(
        f"sandbox level {level!r} is unavailable: {'; '.join(reasons)}. Code checks are refused rather than "
        "run with weaker isolation; install bubblewrap, allow (user) namespaces, or accept the weaker "
        "level explicitly with --evalsuite-sandbox=weak / `sandbox = \"weak\"` in [tool.evalsuite]"
    )
