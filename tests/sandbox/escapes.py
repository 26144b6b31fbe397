"""The sandbox escapes reported in issue 12, as hostile programs with a containment check each.

Used by test_sandbox_escapes.py in the test process (root in CI) and, as a script run by an unprivileged
user (``python3 escapes.py REPO SHARED_DIR``, prints JSON), by the same module's unprivileged test.
Stdlib only: the unprivileged run uses the system interpreter.

Every attack is judged from the host side (is the victim process alive and not stopped, did a byte
reach the listening sockets, does a file exist in the shared dir, is the daemon still running), never by
trusting what the sandboxed program says about itself. Level "none" runs the same program without any
sandbox: the control that shows each check can fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET = "evalsuite-secret-" + secrets.token_hex(8)
DISK_LIMIT_MB = 64
MEMORY_LIMIT_MB = 256


@dataclass
class Ran:
    status: str
    stdout: str
    stderr: str
    isolation: tuple[str, ...]


def execute(code: str, level: str, **kw: Any) -> Ran:
    """Run ``code`` in the sandbox at ``level`` (kernel layers only: no audit hook unless asked), or
    plainly in a fresh temp dir for level "none"."""
    if level == "none":
        # Files, not pipes: a daemon the program leaves behind would keep a pipe open.
        with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=err, timeout=30)
            out.seek(0)
            err.seek(0)
            return Ran("passed" if p.returncode == 0 else "failed", out.read().decode(), err.read().decode(), ())
    from evalsuite.sandbox import run_untrusted

    kw.setdefault("audit_hook", False)
    kw.setdefault("timeout_s", 5.0)
    r = run_untrusted(code, level=level, **kw)
    return Ran(r.status, r.stdout, r.stderr, r.isolation)


def _spawn_victim() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(120)"],
                            env={"EVALSUITE_API_TOKEN": SECRET}, start_new_session=True)


@dataclass
class Context:
    """What the attacks aim at: a victim process holding a secret, two listening sockets, a shared dir."""

    victim: subprocess.Popen[bytes]
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    shared: Path
    arrived: list[str]


@contextmanager
def context(shared: Path) -> Iterator[Context]:
    victim = _spawn_victim()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.settimeout(0.1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.1)
    # a host daemon's UNIX socket (docker.sock, the D-Bus system bus, ...), open to every uid
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(shared / "daemon.sock"))
    os.chmod(shared / "daemon.sock", 0o777)
    unix.listen(8)
    unix.settimeout(0.1)
    arrived: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                conn, _ = tcp.accept()
                arrived.append("tcp")
                conn.close()
            except OSError:
                pass
            try:
                udp.recvfrom(100)
                arrived.append("udp")
            except OSError:
                pass
            try:
                conn, _ = unix.accept()
                arrived.append("unix")
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    try:
        yield Context(victim, tcp, udp, unix, shared, arrived)
    finally:
        stop.set()
        t.join(timeout=2)
        tcp.close()
        udp.close()
        unix.close()
        victim.kill()
        victim.wait()


def _victim_ok(ctx: Context) -> tuple[bool, str]:
    time.sleep(0.05)
    if ctx.victim.poll() is not None:
        ctx.victim = _spawn_victim()  # for the next attack
        return False, "victim process was killed"
    state = Path(f"/proc/{ctx.victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    if state in {"t", "T"}:
        os.kill(ctx.victim.pid, signal.SIGCONT)
        return False, "victim process was stopped (traced)"
    return True, "victim alive"


def attack_signals(ctx: Context, level: str) -> tuple[bool, str]:
    pid = ctx.victim.pid
    code = (
        "import os, signal\n"
        "out = []\n"
        f"for f in (lambda: signal.pidfd_send_signal(os.pidfd_open({pid}), signal.SIGKILL),\n"
        f"          lambda: os.kill({pid}, signal.SIGKILL), lambda: os.killpg({pid}, signal.SIGKILL)):\n"
        "    try:\n"
        "        f(); out.append('sent')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "print(out)\n"
    )
    r = execute(code, level)
    ok, why = _victim_ok(ctx)
    return ok, f"{why}; {r.stdout.strip()}"


def attack_environ(ctx: Context, level: str) -> tuple[bool, str]:
    code = (
        "found = []\n"
        f"for p in ('/proc/{ctx.victim.pid}/environ', '/proc/{ctx.victim.pid}/mem'):\n"
        "    try:\n"
        "        found.append(open(p, 'rb').read(100000).decode('latin-1'))\n"
        "    except OSError as e:\n"
        "        found.append(type(e).__name__)\n"
        "print(found)\n"
    )
    r = execute(code, level)
    leaked = SECRET in r.stdout + r.stderr
    return not leaked, "secret read from /proc/<pid>/environ" if leaked else r.stdout.strip()[-200:]


def attack_ptrace(ctx: Context, level: str) -> tuple[bool, str]:
    code = (
        "import ctypes, time\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"rc = libc.ptrace(16, {ctx.victim.pid}, 0, 0)\n"  # PTRACE_ATTACH: stops the victim
        "print(rc, ctypes.get_errno(), flush=True)\n"
        "time.sleep(0.3)\n"
    )
    r = execute(code, level)
    attached = r.stdout.strip().startswith("0 ")
    ok, why = _victim_ok(ctx)
    return ok and not attached, f"{why}; ptrace -> {r.stdout.strip()}"


def attack_network(ctx: Context, level: str) -> tuple[bool, str]:
    tcp_port, udp_port = ctx.tcp.getsockname()[1], ctx.udp.getsockname()[1]
    code = (
        "import socket\n"
        "out = []\n"
        "def tcp():\n"
        f"    socket.create_connection(('127.0.0.1', {tcp_port}), timeout=1).sendall(b'leak')\n"
        "def udp():\n"
        f"    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'leak', ('127.0.0.1', {udp_port}))\n"
        "def unix():\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        f"    s.connect({str(ctx.shared / 'daemon.sock')!r})\n"
        "    s.sendall(b'leak')\n"
        "for f in (tcp, udp, unix):\n"
        "    try:\n"
        "        f(); out.append('sent')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "print(out)\n"
    )
    before = len(ctx.arrived)
    r = execute(code, level)
    time.sleep(0.3)
    got = ctx.arrived[before:]
    return not got, f"arrived {got}; {r.stdout.strip()}"


def attack_dir_fd_write(ctx: Context, level: str) -> tuple[bool, str]:
    target = ctx.shared / f"pwned-{secrets.token_hex(4)}"
    code = (
        "import os\n"
        "out = []\n"
        "def via_dir_fd():\n"
        f"    d = os.open({str(ctx.shared)!r}, os.O_RDONLY | os.O_DIRECTORY)\n"
        f"    os.write(os.open({target.name!r}, os.O_WRONLY | os.O_CREAT, 0o666, dir_fd=d), b'x')\n"
        "def via_path():\n"
        f"    open({str(target) + '.2'!r}, 'w').write('x')\n"
        "for f in (via_dir_fd, via_path):\n"
        "    try:\n"
        "        f(); out.append('written')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "print(out)\n"
    )
    r = execute(code, level)
    made = [p.name for p in ctx.shared.iterdir() if p.name.startswith(target.name)]
    for p in made:
        (ctx.shared / p).unlink()
    return not made, f"created {made}; {r.stdout.strip()}"


def attack_daemon(ctx: Context, level: str) -> tuple[bool, str]:
    mark = f"77.{secrets.randbelow(10**9):09d}"
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', {mark!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
    )
    execute(code, level)
    time.sleep(0.1)
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if mark.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(int(pid))
        except OSError:
            continue
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return not alive, f"left running: {alive}"


def attack_disk(ctx: Context, level: str) -> tuple[bool, str]:
    """Write 180 MB past a 64 MB limit: new files, and growing the program's own file."""
    code = (
        "import os\n"
        "written = 0\n"
        "for name in [f'f{i}' for i in range(61)] + ['solution.py']:\n"
        "    try:\n"
        "        with open(name, 'ab') as f:\n"
        "            for _ in range(61):\n"
        "                f.write(b'x' * (4 << 20)); f.flush(); written += 4 << 20\n"
        "    except OSError:\n"
        "        pass\n"
        "    if written >= (244 << 20):\n"
        "        break\n"
        "print(written >> 20)\n"
    )
    r = execute(code, level, max_disk_mb=DISK_LIMIT_MB, max_file_mb=16, memory_mb=MEMORY_LIMIT_MB, timeout_s=20)
    try:
        mb = int(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"no report: {r.status} {r.stderr[-300:]}"
    return mb <= DISK_LIMIT_MB, f"wrote {mb} MB (limit {DISK_LIMIT_MB} MB)"


def attack_audit_bypass(ctx: Context, level: str) -> tuple[bool, str]:
    """Two lines restore an unhooked fork_exec (issue 12); with the audit hook on, either the hook or
    the kernel layers must stop the program it starts from writing outside."""
    target = ctx.shared / f"bypass-{secrets.token_hex(4)}"
    code = (
        "import os, sys\n"
        "sys.modules.pop('_posixsubprocess', None)\n"
        "try:\n"
        "    import _posixsubprocess\n"
        f"    argv = [b'/bin/sh', b'-c', b'echo pwned > {target}']\n"
        "    pid = _posixsubprocess.fork_exec(argv, [argv[0]], True, (), None, None, -1, -1, -1, -1, -1, -1,\n"
        "                                     *os.pipe(), False, False, -1, None, None, -1, -1, None, False)\n"
        "    print('spawned', os.waitpid(pid, 0))\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    r = execute(code, level, audit_hook=level != "none")
    made = target.exists()
    if made:
        target.unlink()
    return not made, f"{'file written' if made else 'no file'}; {r.stdout.strip()[:200]}"


def attack_memory(ctx: Context, level: str) -> tuple[bool, str]:
    """12 forked children allocating 180 MB each under a 256 MB limit (2.5 GB in the old fallback).
    Each child that got its memory in time reports at the same moment, still holding it: the count x
    180 MB is what the run held at once."""
    code = (
        "import os, time\n"
        f"at = time.monotonic() + {8.0 if level == 'none' else 3.0}\n"  # the control must overlap even under load
        "for _ in range(12):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        try:\n"
        "            b = b'x' * (180 << 20)\n"
        "            if time.monotonic() < at:\n"  # a child that got its memory late might not overlap
        "                time.sleep(at - time.monotonic())\n"
        "                os.write(1, b'held ')\n"
        "        finally:\n"
        "            os._exit(0)\n"
        "try:\n"
        "    while True:\n"
        "        os.wait()\n"
        "except ChildProcessError:\n"
        "    pass\n"
    )
    r = execute(code, level, memory_mb=MEMORY_LIMIT_MB, max_processes=32, timeout_s=7)
    held = r.stdout.count("held") * 180
    bound = MEMORY_LIMIT_MB
    for layer in r.isolation:
        if layer.startswith("memory-bound:"):
            n, mb = layer.split(":")[1].removesuffix("MB").split("x")
            bound = int(n) * int(mb)
    return held <= bound, f"children held {held} MB at once (bound {bound} MB, {r.status})"


ATTACKS: dict[str, Callable[[Context, str], tuple[bool, str]]] = {
    "signals": attack_signals, "environ": attack_environ, "ptrace": attack_ptrace,
    "network": attack_network, "dir_fd_write": attack_dir_fd_write, "daemon": attack_daemon,
    "disk": attack_disk, "audit_bypass": attack_audit_bypass, "memory": attack_memory,
}


def run_all(levels: list[str], shared: Path) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    with context(shared) as ctx:
        for level in levels:
            out[level] = {name: list(attack(ctx, level)) for name, attack in ATTACKS.items()}
    return out


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    from evalsuite.sandbox import LEVELS

    shared_dir = Path(tempfile.mkdtemp(prefix="evalsuite-escape-", dir=sys.argv[2]))
    try:
        print(json.dumps(run_all([lv for lv in LEVELS if lv != "strong"], shared_dir)))
    finally:
        shutil.rmtree(shared_dir, ignore_errors=True)
