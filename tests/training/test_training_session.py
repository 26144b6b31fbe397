"""training/session.sh runs the stages in order and trains with the flags the probe printed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(runs: Path) -> str:
    env = {**os.environ, "DRY_RUN": "1", "FORCE": "1", "RUNS": str(runs), "PY": "python"}
    return subprocess.run(
        ["bash", str(ROOT / "training" / "session.sh")], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_session_trains_with_the_probe_flags(tmp_path: Path) -> None:
    (tmp_path / "probe-v2.txt").write_text(
        "...\ntrain with: --threads 2 --experts-impl grouped_mm --ctx 128 --batch 32\n"
    )
    out = _dry_run(tmp_path)
    assert "probe_throughput" not in out  # the probe ran already: not again
    lines = [line.split("] ", 1)[1] for line in out.splitlines() if "python -m" in line]
    assert lines[-3:] == [
        f"python -m training.train --runs {tmp_path} --run v2 --preset v2 --tokens 30e6 --device cpu "
        "--threads 2 --experts-impl grouped_mm --ctx 128 --batch 32",
        f"python -m training.export --runs {tmp_path} --run v2 --out evalsuite/default_model",
        "python -m training.evaluate",
    ]


def test_session_probes_first_when_no_probe_ran(tmp_path: Path) -> None:
    out = _dry_run(tmp_path)
    probe, train = out.index("training.probe_throughput"), out.index("training.train ")
    assert probe < train
    if "training.build_corpus" in out:  # only when this checkout has no corpus yet
        assert "training.build_corpus --keep-heldout" in out
