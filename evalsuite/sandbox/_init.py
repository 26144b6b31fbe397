"""Stage 1 of the sandbox: the trusted supervisor ("init") that runs inside the isolation level.

This file is not imported; runner.py passes its source to ``python -I -S -B -c`` with the number of a
pipe as argv[1] from which it reads its JSON config (kept off the command line, which every process
can read in /proc). It runs before any untrusted code:
  1. level "namespaces": makes every mount read-only, nosuid, nodev and puts the work dir and the
     scratch dirs on private sized tmpfs mounts (bubblewrap did this itself for level "bwrap");
  2. writes the program's files into the work dir, becomes a child subreaper, sets no_new_privs;
  3. forks the worker, which sets rlimits, drops to a throw-away uid (as root) or drops every
     capability, applies Landlock and seccomp (_confine.py), and execs stage 2 (_guard.py) with an
     empty environment, a one-time nonce on a pipe it reads and closes first, and a "done" pipe;
  4. waits for the worker with its own deadline, then kills every descendant still alive (orphans
     re-parent to this subreaper), reads what arrived on the "done" pipe and writes a JSON status
     line to a pipe only it holds.
Why a separate supervisor: the untrusted code must not be PID 1 (PID 1 ignores default-action signals)
and must never be able to forge its own status.
"""

import contextlib
import json
import os
import resource
import signal
import sys
import time

_cfg_fd = int(sys.argv[1])
with os.fdopen(_cfg_fd, "rb") as _f:
    cfg = json.loads(_f.read())
status_fd = cfg["status_fd"]
wd = cfg["workdir"]
uid = cfg.get("uid")
layers = []
confine = {}
exec(compile(cfg["confine_src"], "_confine.py", "exec"), confine)  # noqa: S102 - our own trusted source


def _report(**kw):
    kw["layers"] = layers
    os.write(status_fd, (json.dumps(kw) + "\n").encode())


def _harden_mounts():
    """Inside the private mount namespace: hide the shared scratch dirs (/tmp, /var/tmp, /dev/shm,
    /run) behind empty tmpfs mounts, put the work dir on its own size-limited tmpfs at the same path,
    then make every mount read-only, nosuid, nodev except the work dir and a small private /dev/shm."""
    libc = confine["_libc"]
    ctypes = confine["ctypes"]
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

    for d in ("/tmp", "/var/tmp", "/dev/shm", "/run"):
        if os.path.isdir(d) and not os.path.islink(d) and os.path.realpath(d) == d:
            mode = "1777" if d != "/run" else "755"
            size = cfg["shm_mb"] if d == "/dev/shm" else 1
            mount("tmpfs", d, "tmpfs", ms_nosuid | ms_nodev, f"size={size}m,mode={mode}")
    os.makedirs(wd, mode=0o700, exist_ok=True)
    mount("tmpfs", wd, "tmpfs", ms_nosuid | ms_nodev, f"size={cfg['disk_mb']}m,mode=700")
    setattr_("/", at_recursive, attr_rdonly | attr_nosuid | attr_nodev, 0)
    setattr_(wd, 0, 0, attr_rdonly)
    setattr_("/dev/shm", 0, 0, attr_rdonly)


def _write_files():
    """The program and its helper files, owned by the uid that will run them."""
    for name, text in cfg["files"].items():
        fd = os.open(os.path.join(wd, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    if uid is not None:
        for name in [".", *cfg["files"]]:
            os.chown(os.path.join(wd, name), uid, uid)
    os.chmod(wd, 0o700)


def _prctl(option, arg, what):
    if confine["_libc"].prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(confine["ctypes"].get_errno(), what)


def _drop_capabilities():
    """Root without a second uid to switch to (user namespace, or bubblewrap as non-root): empty the
    bounding set and lock "root gets capabilities on exec" off, so the code runs with no capabilities."""
    libc, ctypes = confine["_libc"], confine["ctypes"]
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP; EINVAL: no cap
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    # SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | ..._LOCKED
    _prctl(28, 0x1 | 0x2 | 0x4 | 0x8, "PR_SET_SECUREBITS")


def _children():
    """PIDs whose parent is this process (orphans of the code re-parent here: we are a subreaper)."""
    me, kids = str(os.getpid()), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[1].decode() == me:
                    kids.append(int(entry))
    return kids


def _kill_descendants():
    """SIGKILL and reap every descendant; a process killed mid-fork leaves its child to us, so repeat."""
    for _ in range(10000):
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return
        time.sleep(0.002)


def _sweep(uid):
    """Kill every process of the throw-away uid: a helper with that uid sends kill(-1, SIGKILL)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(50):
                os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _worker(tok_r, done_w):
    """The forked child: limits, uid, kernel confinement, then exec of stage 2. Never returns."""
    try:
        os.close(status_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.setpgid(0, 0)
        for name, lim in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, name), tuple(lim))
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        elif os.geteuid() == 0:
            _drop_capabilities()
        os.chdir(wd)
        if cfg["landlock"]:
            confine["apply_landlock"](wd, cfg["read_roots"], cfg["scratch"], create_files=cfg["create_files"],
                                      require_scopes=cfg["level"] == "weak")
        if cfg["seccomp"]:
            confine["apply_seccomp"]()
        for fd in (tok_r, done_w):
            os.set_inheritable(fd, True)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": wd, "TMPDIR": wd}
        py = cfg["python"]
        argv = [py, "-I", "-S", "-B", "-c", cfg["guard_src"], wd, "1" if cfg["audit"] else "0",
                ":".join(cfg["scratch"]), str(tok_r), str(done_w)]
        os.execve(py, argv, env)
    except BaseException as e:  # noqa: BLE001 - report any setup failure, never run the code unconfined
        os.write(2, f"evalsuite sandbox setup failed: {e!r}\n".encode())
    os._exit(125)


def _wait(child, deadline):
    """(wait status, timed out): the worker's end, or SIGKILL for its process group at the deadline."""
    while True:
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, st = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                if pid == child:
                    return st, False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            with contextlib.suppress(OSError):
                os.killpg(child, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
            return os.waitpid(child, 0)[1], True
        signal.sigtimedwait({signal.SIGCHLD}, min(remaining, 0.25))


def main():
    pidns = os.getpid() == 1
    if cfg["level"] == "namespaces":
        _harden_mounts()
    _write_files()
    _prctl(36, 1, "PR_SET_CHILD_SUBREAPER")
    _prctl(38, 1, "PR_SET_NO_NEW_PRIVS")
    tok_r, tok_w = os.pipe()
    done_r, done_w = os.pipe()
    os.write(tok_w, cfg["nonce"].encode())
    os.close(tok_w)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    start = time.monotonic()
    child = os.fork()
    if child == 0:
        os.close(done_r)
        _worker(tok_r, done_w)
    os.close(tok_r)
    os.close(done_w)
    layers.extend(cfg["layers"])
    status, timed_out = _wait(child, start + cfg["timeout_s"])
    elapsed = time.monotonic() - start
    with contextlib.suppress(OSError):
        os.killpg(child, signal.SIGKILL)
    if uid is not None and not pidns:
        _sweep(uid)
    _kill_descendants()
    os.set_blocking(done_r, False)
    try:
        done = os.read(done_r, 256).decode("ascii", "replace")
    except OSError:
        done = ""
    _report(returncode=os.waitstatus_to_exitcode(status), timed_out=timed_out, duration=elapsed, done=done)
    os.close(status_fd)
    os._exit(0)


try:
    main()
except OSError as exc:
    os.write(2, f"evalsuite sandbox setup failed: {exc!r}\n".encode())
    os._exit(125)
