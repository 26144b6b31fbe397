"""Issue 12's sandbox escapes, in every isolation level, as root and as an unprivileged user.

Each attack (tests/sandbox/escapes.py) runs with the audit hook off, so what contains it is the kernel
(namespaces, Landlock, seccomp, uid, rlimits, cgroup); the audit-hook bypass runs with the hook on.
The same attacks without any sandbox must succeed (the controls), or the checks would prove nothing.
A level that cannot be set up is refused with its reason, never replaced by a weaker one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsuite.sandbox import _levels, run_tests, run_untrusted

sys.path.insert(0, str(Path(__file__).parent))
import escapes  # noqa: E402 - a helper next to this file, also run as a script by the unprivileged test

LEVELS = ("namespaces", "bwrap", "weak")
SYSTEM_PY = "/usr/bin/python3"


@pytest.fixture(scope="module")
def ctx() -> Iterator[escapes.Context]:
    shared = Path(tempfile.mkdtemp(prefix="evalsuite-escape-"))
    os.chmod(shared, 0o777)  # only the sandbox, not file permissions, may stop the throw-away uid
    with escapes.context(shared) as c:
        yield c
    shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("attack", sorted(escapes.ATTACKS))
def test_escape_is_contained(ctx: escapes.Context, attack: str, level: str) -> None:
    contained, detail = escapes.ATTACKS[attack](ctx, level)
    assert contained, f"{attack} escaped the {level} sandbox: {detail}"


@pytest.mark.parametrize("attack", sorted(escapes.ATTACKS))
def test_escape_succeeds_without_sandbox(ctx: escapes.Context, attack: str) -> None:
    contained, detail = escapes.ATTACKS[attack](ctx, "none")
    assert not contained, f"the {attack} check cannot fail: the attack did nothing even unsandboxed ({detail})"


# -- as an unprivileged user (the usual CI situation) ------------------------------------------------
@pytest.fixture(scope="module")
def unprivileged_results(unprivileged_tree: Path) -> dict[str, dict[str, list[object]]]:
    """Every attack in every level, run by uid 65534 with its own victim, sockets and shared dir."""
    assert os.geteuid() == 0, "run the suite as root (CI does) so the unprivileged half runs too"
    assert shutil.which("setpriv") and os.path.exists(SYSTEM_PY), "needs setpriv and /usr/bin/python3"
    base = Path(tempfile.mkdtemp(prefix="evalsuite-escape-nobody-"))
    os.chmod(base, 0o777)
    try:
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PY,
             str(unprivileged_tree / "tests" / "sandbox" / "escapes.py"), str(unprivileged_tree), str(base)],
            capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
            cwd="/",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("level", LEVELS)
def test_escapes_contained_as_unprivileged_user(unprivileged_results: dict, level: str) -> None:
    results = unprivileged_results[level]
    assert sorted(results) == sorted(escapes.ATTACKS)
    escaped = {name: detail for name, (contained, detail) in results.items() if not contained}
    assert not escaped, f"escaped the {level} sandbox as uid 65534: {escaped}"


# -- a pass is reported by the harness, not by the exit status ------------------------------------
PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
EARLY_EXITS = {
    "os._exit": "    return a - b\nimport os\nos._exit(0)\n",
    "sys.exit": "    return a - b\nimport sys\nsys.exit(0)\n",
    "SystemExit": "    return a - b\nraise SystemExit\n",
    "exit-in-check": "    import os\n    os._exit(0)\n",
    "forge-on-every-fd": (
        "    return a - b\nimport os\n"
        "for fd in range(3, 64):\n"
        "    for token in (b'0' * 32, b'passed', b'{\"done\": true}'):\n"
        "        try:\n            os.write(fd, token)\n        except OSError:\n            pass\n"
        "os._exit(0)\n"
    ),
}

# Calling the harness's own completion reporter, then leaving before the asserts (found in review): every
# path to it goes through a frame or a module's globals.
_CALL_DONE_AND_EXIT = (
    "def _call(ns):\n"
    "    for name, value in list(ns.items()):\n"
    "        if callable(value) and 'done' in name:\n"
    "            value()\n"
    "            __import__('os')._exit(0)\n"
)
FORGERIES = {
    "caller-frames": "    return a - b\nimport sys, os\n" + _CALL_DONE_AND_EXIT
    + "f = sys._getframe()\nwhile f is not None:\n"
    "    _call(f.f_locals); _call(f.f_globals); f = f.f_back\nos._exit(0)\n",
    "traceback-frame": "    return a - b\nimport os\n" + _CALL_DONE_AND_EXIT
    + "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    f = e.__traceback__.tb_frame\n"
    "while f is not None:\n    _call(f.f_locals); f = f.f_back\nos._exit(0)\n",
    "generator-frame": "    return a - b\nimport os\n" + _CALL_DONE_AND_EXIT
    + "def g():\n    yield 1\nit = g(); f = it.gi_frame\nwhile f is not None:\n    _call(f.f_locals); f = f.f_back\n"
    "os._exit(0)\n",
    "trace-hook": "    return a - b\nimport sys, os\n" + _CALL_DONE_AND_EXIT
    + "def tracer(frame, event, arg):\n    while frame is not None:\n"
    "        _call(frame.f_locals); frame = frame.f_back\n"
    "sys.settrace(tracer)\ndef h():\n    pass\nh()\nos._exit(0)\n",
    "harness-globals": "    return a - b\nimport os, subprocess\n" + _CALL_DONE_AND_EXIT
    + "_call(subprocess._fork_exec.__globals__)\nos._exit(0)\n",
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("trick", sorted(FORGERIES))
def test_calling_the_harness_completion_report_is_not_a_pass(trick: str, level: str) -> None:
    r = run_tests(FORGERIES[trick], PROMPT, TESTS, "add", level=level, timeout_s=3.0)
    assert not r.passed, r

@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("trick", sorted(EARLY_EXITS))
def test_exit_zero_before_the_asserts_fails(trick: str, level: str) -> None:
    r = run_tests(EARLY_EXITS[trick], PROMPT, TESTS, "add", level=level, timeout_s=3.0)
    assert not r.passed
    assert r.status == "failed" and r.returncode == 0 and "completion report" in r.reason
    # the honest look-alikes: correct code passes, wrong code fails on its assert
    if trick == "os._exit":
        assert run_tests("    return a + b\n", PROMPT, TESTS, "add", level=level).passed
        assert "AssertionError" in run_tests("    return a - b\n", PROMPT, TESTS, "add", level=level).reason


# -- refused rather than degraded ---------------------------------------------------------------------
def test_strong_level_is_refused_when_no_namespaces_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_levels, "unshare_prefix", lambda: (None, "unshare: Operation not permitted"))
    monkeypatch.setattr(_levels, "bwrap_exe", lambda: (None, "bubblewrap is not installed"))
    for level in ("strong", "namespaces", "bwrap"):
        r = run_untrusted("print('ran')\n", level=level)
        assert r.status == "error" and r.stdout == "" and not r.isolation
        assert "unavailable" in r.reason and "weak" in r.reason
    assert "unshare: Operation not permitted" in run_untrusted("1", level="namespaces").reason
    # the explicit opt-in still runs, and says which level it was
    weak = run_untrusted("print('ran')\n", level="weak")
    assert weak.passed and weak.level == "weak" and weak.isolation[0] == "level:weak"


def test_strong_uses_bubblewrap_when_unshare_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_levels, "unshare_prefix", lambda: (None, "unshare: Operation not permitted"))
    r = run_untrusted("print('ran')\n")
    assert r.passed and r.level == "bwrap" and "bubblewrap" in r.isolation


def test_weak_level_is_refused_without_landlock_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_levels._confine, "landlock_abi", lambda: 5)
    r = run_untrusted("print('ran')\n", level="weak")
    assert r.status == "error" and "Landlock ABI 5" in r.reason and r.stdout == ""


def test_unknown_level_is_refused() -> None:
    r = run_untrusted("print('ran')\n", level="none")
    assert r.status == "error" and "choose one of" in r.reason
