"""The sandbox as an ordinary (non-root) user, the usual CI situation: checked by re-running it under
``setpriv`` as uid 65534 (from a world-readable copy of the sandbox package) when these tests run as root;
run as non-root, every other sandbox test already is this case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PY = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="as non-root the other sandbox tests cover this")


SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from evalsuite.sandbox import run_untrusted
victim = sys.argv[2]
code = '''
import os, socket
out = {}
try:
    open(%r, "w").write("pwned"); out["write"] = "ok"
except OSError as e:
    out["write"] = type(e).__name__
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1); out["net"] = "ok"
except OSError as e:
    out["net"] = type(e).__name__
out["env"] = sorted(os.environ)
out["caps"] = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
print(__import__("json").dumps(out))
''' % victim
r = run_untrusted(code, audit_hook=False, timeout_s=5)
bomb = run_untrusted("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n", timeout_s=1)
print(json.dumps({"status": r.status, "stdout": r.stdout, "stderr": r.stderr, "isolation": r.isolation,
                  "bomb": bomb.status}))
"""


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PY]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable dir outside pytest's private tmp tree (which uid 65534 could not even reach)."""
    d = Path(tempfile.mkdtemp(prefix="evalsuite-test-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unprivileged_user_is_contained(shared_dir: Path, unprivileged_tree: Path) -> None:
    assert shutil.which("setpriv") and os.path.exists(PY), "needs setpriv (util-linux) and /usr/bin/python3"
    victim = shared_dir / "victim.txt"
    victim.write_text("keep me")
    os.chmod(victim, 0o666)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    # Sanity: outside the sandbox this user can overwrite the victim.
    subprocess.run([*AS_NOBODY, "-c", f"open({str(victim)!r}, 'a').write('!')"], check=True, env=env)
    assert victim.read_text() == "keep me!"
    victim.write_text("keep me")
    proc = subprocess.run([*AS_NOBODY, "-c", SCRIPT, str(unprivileged_tree), str(victim)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["status"] == "passed", res
    out = json.loads(res["stdout"])
    assert out["write"] != "ok" and out["net"] != "ok"
    assert "HOME" in out["env"] and "SUDO_USER" not in out["env"]
    assert int(out["caps"], 16) == 0
    assert res["bomb"] in {"timeout", "failed", "killed"}
    assert victim.read_text() == "keep me"
