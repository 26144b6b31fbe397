"""Stage 1 of the sandbox: the trusted supervisor ("init") that runs inside the new namespaces.

This file is not imported; runner.py passes its source to ``python -I -S -B -c`` with a JSON config as
argv[1]. It runs as (namespace) root, before any untrusted code:
  1. makes every mount read-only except the work dir, nosuid (mount namespace only);
  2. sets no_new_privs, forks the worker, which sets rlimits, drops to a throw-away uid, and execs
     stage 2 (_guard.py) with an empty environment;
  3. waits for the worker with its own deadline, reaps orphans, and writes a JSON status line to a pipe
     only the supervisor holds. When it exits as PID 1 of a PID namespace the kernel kills every
     process left in the namespace; without one it sweeps the throw-away uid with kill(-1).
Why a separate supervisor: the untrusted code must not be PID 1 (PID 1 ignores default-action
signals) and must never be able to forge its own status.
"""

import contextlib
import json
import os
import resource
import signal
import sys
import time

cfg = json.loads(sys.argv[1])
status_fd = cfg["status_fd"]
wd = cfg["workdir"]
layers = []


def _report(**kw):
    kw["layers"] = layers
    os.write(status_fd, (json.dumps(kw) + "\n").encode())


def _harden_mounts():
    """Inside the private mount namespace: hide the shared scratch dirs (/tmp, /var/tmp, /dev/shm,
    /run) behind empty tmpfs mounts, put the work dir on its own size-limited tmpfs at the same path,
    then make every mount read-only, nosuid, nodev except the work dir and a small private /dev/shm."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_nosuid, ms_nodev = 2, 4
    attr_rdonly, attr_nosuid, attr_nodev = 0x1, 0x2, 0x4
    at_fdcwd, at_recursive, sys_mount_setattr = -100, 0x8000, 442

    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    def setattr_(path, flags, set_, clr):
        a = MountAttr(set_, clr, 0, 0)
        rc = libc.syscall(sys_mount_setattr, at_fdcwd, path.encode(), flags, ctypes.byref(a), ctypes.sizeof(a))
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"mount_setattr {path}")

    def mount(src, target, fstype, flags, data):
        rc = libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                        flags, data.encode() if data else None)
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"mount {src} on {target}")

    # Copy the prepared files out before the host dir disappears behind the mounts.
    wd_fd = os.open(wd, os.O_RDONLY | os.O_DIRECTORY)
    files = {}
    for name in os.listdir(wd_fd):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=wd_fd)
        with os.fdopen(fd, "rb") as f:
            files[name] = f.read()
    os.close(wd_fd)
    hidden = []
    for d in ("/tmp", "/var/tmp", "/dev/shm", "/run"):
        if os.path.isdir(d) and not os.path.islink(d) and os.path.realpath(d) == d:
            mode = "1777" if d != "/run" else "755"
            size = cfg["shm_mb"] if d == "/dev/shm" else 1
            mount("tmpfs", d, "tmpfs", ms_nosuid | ms_nodev, f"size={size}m,mode={mode}")
            hidden.append(d)
    os.makedirs(wd, mode=0o700, exist_ok=True)
    # The work dir itself becomes a size-limited tmpfs: the code cannot fill the host's disk.
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    mount("tmpfs", wd, "tmpfs", ms_nosuid | ms_nodev, f"size={cfg['disk_mb']}m,mode=700{owner}")
    for name, data in files.items():
        path = os.path.join(wd, name)
        with open(path, "wb") as f:
            f.write(data)
        if uid is not None:
            os.chown(path, uid, uid)
    setattr_("/", at_recursive, attr_rdonly | attr_nosuid | attr_nodev, 0)
    setattr_(wd, 0, 0, attr_rdonly)
    if "/dev/shm" in hidden:
        setattr_("/dev/shm", 0, 0, attr_rdonly)
    layers.append("readonly-fs")
    layers.append("tmpfs-workdir")
    if hidden:
        layers.append("private-tmp")


def _no_new_privs():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) == 0:  # PR_SET_NO_NEW_PRIVS
        layers.append("no-new-privs")


def _drop_capabilities():
    """Namespace root without a second uid to switch to (unprivileged host user): empty the bounding
    set and lock "root gets capabilities on exec" off, so the code runs with no capabilities and
    cannot undo the mounts or touch the network namespace."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, pr_set_securebits = 24, 28
    for cap in range(64):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    # SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | ..._LOCKED
    if libc.prctl(pr_set_securebits, 0x1 | 0x2 | 0x4 | 0x8, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECUREBITS")


def _sweep(uid):
    """Kill every process of the throw-away uid: a helper with that uid sends kill(-1, SIGKILL)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(50):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
                except OSError:
                    break
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


uid = cfg.get("uid")
pidns = os.getpid() == 1
if pidns:
    layers.append("pid-namespace")
if cfg.get("readonly_fs"):
    try:
        _harden_mounts()
    except OSError as e:
        layers.append(f"readonly-fs-failed:{e}")
_no_new_privs()

limits = {getattr(resource, k): tuple(v) for k, v in cfg["rlimits"].items() if hasattr(resource, k)}
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
start = time.monotonic()
child = os.fork()
if child == 0:
    try:
        os.close(status_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.setpgid(0, 0)
        for res, lim in limits.items():
            resource.setrlimit(res, lim)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        elif os.geteuid() == 0:
            _drop_capabilities()
        os.chdir(wd)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": wd, "TMPDIR": wd}
        py = cfg["python"]
        extra = "/dev/shm" if "private-tmp" in layers else ""
        argv = [py, "-I", "-S", "-B", "-c", cfg["guard_src"], wd, "1" if cfg["audit"] else "0", extra]
        os.execve(py, argv, env)
    except BaseException as e:  # noqa: BLE001 - report any setup failure, never run the code unguarded
        os.write(2, f"evalsuite sandbox setup failed: {e!r}\n".encode())
    os._exit(125)

layers.append("rlimits")
if uid is not None:
    layers.append("uid-drop")
elif os.geteuid() == 0:
    layers.append("no-capabilities")
deadline = start + cfg["timeout_s"]
status = None
timed_out = False
while status is None:
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, st = child, 1 << 8  # cannot happen; never report it as a pass
        if pid == 0:
            break
        if pid == child:
            status = st
            break
    if status is not None:
        break
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        break
    signal.sigtimedwait({signal.SIGCHLD}, min(remaining, 0.25))

elapsed = time.monotonic() - start
if not pidns:
    with contextlib.suppress(OSError):
        os.killpg(child, signal.SIGKILL)
    if uid is not None:
        _sweep(uid)
code = os.waitstatus_to_exitcode(status)
_report(returncode=code, timed_out=timed_out, duration=elapsed)
os.close(status_fd)
os._exit(0)
