"""Hostile code must be contained, reported as a failed sample, and leave the test process alive.

Each attack runs in every isolation level the sandbox offers (namespaces, bwrap, weak), with the audit
hook (the default) and, for the kernel layers on their own, without it. The escapes reported in issue 12
(signals, /proc, ptrace, network, dir_fd writes, daemons, disk, memory, audit-hook bypass) are in
test_sandbox_escapes.py, as root and as an unprivileged user.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsuite.sandbox import run_untrusted

LEVELS = ("namespaces", "bwrap", "weak")
MODES: dict[str, dict[str, object]] = {f"{lv}": {"level": lv, "audit_hook": True} for lv in LEVELS}
MODES |= {f"{lv}-no-hook": {"level": lv, "audit_hook": False} for lv in LEVELS}
FAST = {"timeout_s": 3.0, "memory_mb": 256}


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> dict[str, object]:
    return MODES[request.param]


def test_infinite_loop_times_out(mode: dict[str, bool]) -> None:
    t0 = time.monotonic()
    r = run_untrusted("while True:\n    pass\n", timeout_s=1.0, **mode)
    assert r.status == "timeout" and not r.passed
    assert time.monotonic() - t0 < 8


def test_fork_bomb_contained(mode: dict[str, bool]) -> None:
    code = (
        "import os, sys\n"
        "print(os.getcwd(), flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    t0 = time.monotonic()
    r = run_untrusted(code, timeout_s=1.5, max_processes=16, **mode)
    assert not r.passed and r.status in {"timeout", "failed", "killed"}
    assert time.monotonic() - t0 < 10
    # Nothing of it is left: no process runs in that work dir any more.
    workdir = r.stdout.splitlines()[0].encode()
    assert b"evalsuite-sbx" in workdir
    time.sleep(0.2)
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if workdir in cmd:
            leftovers.append(pid)
    assert not leftovers


def test_memory_bomb_fails(mode: dict[str, bool]) -> None:
    r = run_untrusted("x = []\nwhile True:\n    x.append(bytearray(50_000_000))\n", **mode, **FAST)
    assert not r.passed and r.status in {"failed", "killed"}
    assert "memory" in r.reason.lower() or r.status == "killed"


@pytest.fixture(params=["private", "world-writable"])
def target_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """pytest's tmp_path (private to root), and a world-writable dir where only the sandbox itself,
    not file permissions, can stop the code."""
    if request.param == "private":
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="evalsuite-test-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_cannot_write_or_delete_outside(target_dir: Path, mode: dict[str, bool]) -> None:
    tmp_path = target_dir
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.chmod(victim, 0o666)
    new_file = tmp_path / "created.txt"
    code = (
        "import os, shutil\n"
        "errors = 0\n"
        f"for action in (lambda: open({str(victim)!r}, 'w').write('pwned'),\n"
        f"               lambda: os.remove({str(victim)!r}),\n"
        f"               lambda: open({str(new_file)!r}, 'x').write('new'),\n"
        f"               lambda: shutil.rmtree({str(tmp_path)!r})):\n"
        "    try:\n"
        "        action()\n"
        "    except OSError:\n"
        "        errors += 1\n"
        "open('solution.py', 'a').write('# fine')\n"
        "print(errors)\n"
        "assert errors == 0, 'some writes were refused'\n"
    )
    r = run_untrusted(code, **mode, **FAST)
    assert not r.passed
    assert r.stdout.strip() == "4"  # every attempt failed; writing inside the work dir worked
    assert victim.read_text() == "keep me"
    assert not new_file.exists()


def test_no_network(mode: dict[str, bool]) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    arrived: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            arrived.append(conn)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')\n"
        "print('connected')\n"
    )
    try:
        r = run_untrusted(code, **mode, **FAST)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(timeout=2)
        server.close()
    assert not r.passed and "connected" not in r.stdout
    assert arrived == []


def test_parent_environment_is_invisible(monkeypatch: pytest.MonkeyPatch, mode: dict[str, bool]) -> None:
    monkeypatch.setenv("EVALSUITE_SECRET_TOKEN", "s3cr3t")
    code = (
        "import os\n"
        f"ppid = {os.getpid()}\n"
        "found = 'EVALSUITE_SECRET_TOKEN' in os.environ\n"
        "for path in (f'/proc/{ppid}/environ', f'/proc/{os.getppid()}/environ'):\n"
        "    try:\n"
        "        found = found or b's3cr3t' in open(path, 'rb').read()\n"
        "    except OSError:\n"
        "        pass\n"
        "assert not found, 'secret visible'\n"
        "print(sorted(os.environ))\n"
    )
    r = run_untrusted(code, **mode, **FAST)
    assert r.passed, r.stderr
    assert "EVALSUITE_SECRET_TOKEN" not in r.stdout and "s3cr3t" not in r.stdout + r.stderr


def test_cannot_kill_parent(mode: dict[str, bool]) -> None:
    code = (
        "import os, signal\n"
        f"for pid in (os.getppid(), {os.getpid()}):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    os.killpg(0, signal.SIGKILL)\n"
        "except OSError:\n"
        "    pass\n"
        "raise SystemExit(3)\n"
    )
    r = run_untrusted(code, **mode, **FAST)
    # We are still here, and the sample is not a pass.
    assert not r.passed
    assert r.status in {"failed", "killed", "error"}


def test_output_flood_is_capped() -> None:
    r = run_untrusted("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout_s=1.0,
                      max_output_bytes=10_000)
    assert not r.passed
    assert len(r.stdout) < 20_000 and r.stdout.endswith("[evalsuite: output truncated]")


def test_cannot_escape_via_subprocess(tmp_path: Path, mode: dict[str, bool]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = f"import os\nos.system('rm -f {victim}')\nimport subprocess\nsubprocess.run(['rm', '-f', '{victim}'])\n"
    run_untrusted(code, **mode, **FAST)
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("level", LEVELS)
def test_disk_filling_is_bounded(level: str) -> None:
    code = (
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        open(f'f{n}', 'wb').write(b'x' * (4 << 20))\n"
        "        n += 1\n"
        "except OSError:\n"
        "    print(n)\n"
    )
    r = run_untrusted(code, max_disk_mb=16, max_file_mb=8, level=level, **FAST)
    assert r.passed, r.stderr
    assert int(r.stdout) < 5  # 16 MB of 4 MB files, then "no space left" (or no new files at all: weak)
    assert ("tmpfs-workdir" if level != "weak" else "no-new-files") in r.isolation


def test_hook_refuses_starting_programs_and_ctypes() -> None:
    code = (
        "import os, subprocess\n"
        "refused = []\n"
        "def attempt(name, fn):\n"
        "    try:\n"
        "        fn()\n"
        "    except (OSError, ImportError):\n"
        "        refused.append(name)\n"
        "attempt('run', lambda: subprocess.run(['true']))\n"
        "attempt('system', lambda: os.system('true'))\n"
        "attempt('execv', lambda: os.execv('/bin/true', ['true']))\n"
        "attempt('fork_exec', lambda: __import__('_posixsubprocess').fork_exec())\n"
        "attempt('ctypes', lambda: __import__('ctypes'))\n"
        "print(','.join(refused))\n"
    )
    r = run_untrusted(code, audit_hook=True, **FAST)
    assert r.passed, r.stderr
    assert r.stdout.strip() == "run,system,execv,fork_exec,ctypes"


@pytest.mark.parametrize("level", LEVELS)
def test_kernel_attack_surface_is_refused(level: str) -> None:
    """seccomp, with the audit hook off (ctypes allowed): new namespaces, mounts, bpf, io_uring, ptrace
    and any socket fail with EPERM; clone3 says ENOSYS so libc falls back to the filtered clone."""
    code = (
        "import ctypes, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "out = {}\n"
        "for name, nr, args in (('unshare', 272, (0x10000000,)), ('mount', 165, (b'none', b'/', b'tmpfs', 0, None)),\n"
        "                       ('bpf', 321, (0, 0, 0)), ('io_uring_setup', 425, (1, None)), ('ptrace', 101, (0, 0)),\n"
        "                       ('clone3', 435, (None, 0))):\n"
        "    rc = libc.syscall(nr, *args)\n"
        "    out[name] = (rc, ctypes.get_errno())\n"
        "try:\n"
        "    socket.socket(socket.AF_UNIX)\n"
        "    out['socket'] = 'ok'\n"
        "except OSError as e:\n"
        "    out['socket'] = e.errno\n"
        "a, b = socket.socketpair()\n"
        "a.send(b'x')\n"
        "out['socketpair'] = b.recv(1).decode()\n"
        "print(out)\n"
    )
    r = run_untrusted(code, level=level, audit_hook=False, **FAST)
    assert r.passed, r.stderr
    out = ast.literal_eval(r.stdout.strip())
    assert {k: v for k, v in out.items() if k not in {"clone3", "socket", "socketpair"}} == {
        k: (-1, 1) for k in ("unshare", "mount", "bpf", "io_uring_setup", "ptrace")}
    assert out["clone3"] == (-1, 38) and out["socket"] == 1 and out["socketpair"] == "x"
    assert "seccomp" in r.isolation
