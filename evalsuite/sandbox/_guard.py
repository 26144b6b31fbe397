"""Stage 2 of the sandbox: runs as the sandbox uid, installs an audit hook, then runs the code.

Not imported; _init.py passes its source to ``python -I -S -B -c`` with argv = [workdir, audit flag,
scratch dirs, nonce fd, done fd]. It reads the run's one-time nonce from the nonce pipe and closes it
before any untrusted code runs; only when the program (the tests and their ``check(...)`` call included)
has run to its end does it write the nonce to the "done" pipe. A program that exits early -
``os._exit(0)``, ``sys.exit(0)``, a signal - never reaches that line, so its exit status 0 does not count
as a pass, and it cannot write the nonce itself without finding it in this process's memory first.

The audit hook is the in-process layer (PEP 578): it refuses writes/deletes outside the work dir, sockets
other than AF_UNIX, signals to other processes, exec/spawn, ctypes, re-importing the patched
``_posixsubprocess``, and every way to reach a frame of this harness (``sys._getframe``, a traceback's,
generator's or coroutine's frame, trace/profile hooks, gc introspection): the completion reporter lives
only in a frame's locals, never in a module's globals (reachable through any function's
``__globals__``), so code that cannot reach a frame cannot call it. It is defence in depth for the
filesystem, network and processes - the kernel layers (namespaces, uid, Landlock, seccomp, rlimits,
cgroup) contain what it misses - and, with it off (``audit_hook=False``), the completion report is only
as strong as the program's honesty.
"""

import os
import sys

_wd = os.path.realpath(sys.argv[1])
_audit = sys.argv[2] == "1"
_scratch = [os.path.realpath(p) for p in sys.argv[3].split(":") if p]  # private tmpfs scratch dirs
_tok_fd, _done_fd = int(sys.argv[4]), int(sys.argv[5])


def _install_hook(wd, scratch):
    import socket as _socket

    realpath, fsdecode, fspath, getpid = os.path.realpath, os.fsdecode, os.fspath, os.getpid
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    prefixes = tuple(p + os.sep for p in [wd, *scratch])
    allowed_devices = {"/dev/null", "/dev/stdout", "/dev/stderr"}
    af_unix = _socket.AF_UNIX
    path_events = {
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
        "os.truncate": (0,), "os.utime": (0,), "os.rename": (0, 1), "os.link": (0, 1),
        "os.symlink": (1,), "shutil.rmtree": (0,), "os.chflags": (0,), "os.lchflags": (0,),
        "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
    }
    dir_fd_args = {
        "os.remove": (1,), "os.rmdir": (1,), "os.mkdir": (2,), "os.chmod": (2,), "os.chown": (3,),
        "os.rename": (2, 3), "os.link": (2, 3), "os.symlink": (2,), "os.utime": (3,), "shutil.rmtree": (1,),
    }
    blocked = {
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.startfile",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.call_function",
        "os.killpg", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
        "os.chroot", "sys._current_frames", "os.setuid", "os.setgid", "pty.spawn",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    }
    # frames lead to the completion reporter; ValueError is what sys._getframe raises past the stack, so
    # the stdlib's callers (namedtuple, typing, enum) fall back as they do there
    frame_events = {"sys._getframe", "sys._getframemodulename"}
    frame_attributes = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}

    # _posixsubprocess.fork_exec starts programs without any audit event (they would run unhooked):
    # replace it before the code can import it (subprocess stays importable, Popen is refused).
    import _posixsubprocess

    def _no_fork_exec(*_args, **_kwargs):
        raise PermissionError("sandbox: starting programs is not allowed")

    _posixsubprocess.fork_exec = _no_fork_exec
    # Popping it from sys.modules and importing it again would load an unpatched copy: refuse that.
    blocked_modules = {"_ctypes", "_xxsubinterpreters", "_posixsubprocess"}

    def inside(p):
        if isinstance(p, int):
            return True  # an fd we already hold
        try:
            p = realpath(fsdecode(fspath(p)))
        except Exception:  # noqa: BLE001
            return False
        return p == wd or p.startswith(prefixes) or p in allowed_devices

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags
            )
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the work dir is not allowed: {path!r}")
            if (
                isinstance(path, str)
                and path.startswith("/proc/")
                and path.endswith(("environ", "cmdline"))
                and not path.startswith(("/proc/self/", f"/proc/{getpid()}/"))
            ):
                raise PermissionError(f"sandbox: reading {path!r} is not allowed")
        elif event in path_events:
            # Paths relative to a directory fd cannot be resolved here: refuse them.
            if any(i < len(args) and args[i] is not None for i in dir_fd_args.get(event, ())):
                raise PermissionError(f"sandbox: {event} with dir_fd is not allowed")
            for i in path_events[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError(f"sandbox: {event} outside the work dir is not allowed: {args[i]!r}")
        elif event in blocked:
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in frame_events:
            raise ValueError(f"sandbox: {event} is not allowed")
        elif event == "object.__getattr__" and len(args) > 1 and args[1] in frame_attributes:
            raise AttributeError(f"sandbox: reading {args[1]} is not allowed")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] not in (af_unix, -1):
                raise PermissionError("sandbox: network sockets are not allowed")
        elif event in {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}:
            addr = args[1] if len(args) > 1 else None
            if not isinstance(addr, (str, bytes)) or not inside(addr):
                raise PermissionError("sandbox: network access is not allowed")
        elif event == "import" and args and args[0] in blocked_modules:
            raise ImportError(f"sandbox: importing {args[0]} is not allowed")
        elif event == "os.kill" and args[0] != getpid():
            raise PermissionError("sandbox: signalling other processes is not allowed")

    sys.addaudithook(hook)


def _run(wd, done):
    import types

    path = os.path.join(wd, "solution.py")
    with open(path, encoding="utf-8") as f:
        src = f.read()
    main = types.ModuleType("__main__")
    main.__file__ = path
    sys.modules["__main__"] = main
    sys.argv = [path]
    sys.path[:] = [wd] + [p for p in sys.path if p and p != os.getcwd()]
    code = compile(src, path, "exec")
    exec(code, main.__dict__)
    done()


def _completion_reporter(tok_fd, done_fd):
    """Read the nonce now (the pipe is closed before the code runs) and return the one call that
    reports "ran to the end" with it."""
    nonce = os.read(tok_fd, 256)
    os.close(tok_fd)

    def done():
        os.write(done_fd, nonce)

    return done


def _main():
    done = _completion_reporter(_tok_fd, _done_fd)  # a local: no module global holds it
    if _audit:
        _install_hook(_wd, _scratch)
    _run(_wd, done)


_main()
