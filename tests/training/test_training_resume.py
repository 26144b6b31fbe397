"""The trainer resumes exactly: an interrupted run (even by kill -9) ends with the weights of an
uninterrupted one, and its log holds each step once."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.io import atomic_write
from training import train
from training.checkpoint import CKPT, load_state, save_state, trim_log

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "evalsuite" / "default_model"  # any byte-level tokenizer works; this one ships


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stream of the mix, a few hundred tokens each."""
    folder = tmp_path_factory.mktemp("corpus")
    for i, name in enumerate(train.MIX):
        rows = [{"text": f"Document {j} of stream {name}: " + "lorem ipsum dolor " * (3 + i % 4)} for j in range(20)]
        (folder / f"train-{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "stats.json").write_text(json.dumps({name: {"docs": 20, "chars": 999} for name in train.MIX}))
    return folder


def _argv(corpus: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "--preset",
        "tiny",
        "--run",
        "r",
        "--runs",
        str(runs),
        "--corpus",
        str(corpus),
        "--tokenizer",
        str(TOKENIZER),
        "--batch",
        "2",
        "--ctx",
        "16",
        "--tokens",
        str(8 * 2 * 16),
        "--warmup",
        "2",
        "--log-every",
        "1",
        "--ckpt-every",
        "1",
        *extra,
    ]


def _weights(runs: Path) -> dict[str, torch.Tensor]:
    state = load_state(runs / "r")
    assert state is not None
    return state["model"]


def _log_steps(runs: Path) -> list[int]:
    rows = list(csv.reader((runs / "r" / "log.csv").read_text().splitlines()))
    return [int(r[0]) for r in rows[1:]]


def test_stop_and_resume_equals_uninterrupted(corpus: Path, tmp_path: Path) -> None:
    train.main(_argv(corpus, tmp_path / "a"))
    train.main(_argv(corpus, tmp_path / "b", "--stop-after-steps", "3"))
    assert load_state(tmp_path / "b" / "r")["step"] == 3
    train.main(_argv(corpus, tmp_path / "b"))
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log_steps(tmp_path / "b") == list(range(1, 9))
    # the check can fail: a resume that lost the data position (a fresh window sampler) ends elsewhere
    train.main(_argv(corpus, tmp_path / "c", "--stop-after-steps", "3"))
    state = load_state(tmp_path / "c" / "r")
    state["rng"] = np.random.default_rng(99).bit_generator.state
    save_state(tmp_path / "c" / "r", state)
    train.main(_argv(corpus, tmp_path / "c"))
    c = _weights(tmp_path / "c")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_kill_9_mid_run_resumes_cleanly(corpus: Path, tmp_path: Path) -> None:
    long = ("--tokens", "1e6")  # a schedule far longer than the test: the process is killed mid-run
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.train", *_argv(corpus, tmp_path / "b", *long)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt = tmp_path / "b" / "r" / CKPT
    deadline = time.time() + 120
    while not ckpt.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the trainer wrote no checkpoint within 120 s"
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # anywhere: mid-step, mid-log-write or mid-checkpoint-write
    proc.wait()
    killed_at = load_state(tmp_path / "b" / "r")["step"]
    end = str(killed_at + 3)
    train.main(_argv(corpus, tmp_path / "b", *long, "--stop-after-steps", end))
    train.main(_argv(corpus, tmp_path / "a", *long, "--stop-after-steps", end))
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log_steps(tmp_path / "b") == list(range(1, killed_at + 4))


def test_torn_checkpoint_write_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / CKPT
    atomic_write(target, b"old complete checkpoint")

    def crash(*_a: object) -> None:
        raise KeyboardInterrupt  # the process dies between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old complete checkpoint"


def test_trim_log_drops_rows_after_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("step,loss\n1,5.0\n2,4.0\n3,3.5\n")
    trim_log(tmp_path, 2)
    assert (tmp_path / "log.csv").read_text() == "step,loss\n1,5.0\n2,4.0\n"


def test_other_preset_in_the_run_folder_is_refused(corpus: Path, tmp_path: Path) -> None:
    train.main(_argv(corpus, tmp_path, "--stop-after-steps", "1"))
    with pytest.raises(SystemExit, match="holds a tiny run"):
        train.main(_argv(corpus, tmp_path, "--stop-after-steps", "1") + ["--preset", "v2-lite"])


def test_device_choice_never_requires_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train.pick_device("auto").type == "cpu"
    with pytest.raises(SystemExit, match="no CUDA device.*--device cpu"):
        train.pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert train.pick_device("auto").type == "cuda"


def test_missing_stream_is_named_with_the_fix(corpus: Path, tmp_path: Path) -> None:
    partial = tmp_path / "corpus"
    partial.mkdir()
    for f in corpus.glob("train-*.jsonl"):
        if f.name != "train-bible-es.jsonl":
            (partial / f.name).write_text(f.read_text())
    with pytest.raises(SystemExit, match="train-bible-es.jsonl is missing.*sword-text"):
        train.main(_argv(partial, tmp_path / "runs"))


def test_resume_on_changed_data_is_refused(corpus: Path, tmp_path: Path) -> None:
    train.main(_argv(corpus, tmp_path / "runs", "--stop-after-steps", "1"))
    cache = corpus / "tok" / "text-en.npy"
    original = cache.read_bytes()
    try:
        np.save(cache, np.load(cache)[::-1].copy())  # same size, other order: a rebuilt corpus
        with pytest.raises(SystemExit, match="token streams changed.*text-en"):
            train.main(_argv(corpus, tmp_path / "runs"))
    finally:
        cache.write_bytes(original)


def test_a_new_run_can_start_from_an_export(corpus: Path, tmp_path: Path) -> None:
    from training.export import export

    train.main(_argv(corpus, tmp_path / "runs", "--stop-after-steps", "2"))
    export(tmp_path / "runs" / "r", tmp_path / "model", TOKENIZER)
    argv = _argv(corpus, tmp_path / "other", "--stop-after-steps", "0", "--init-from", str(tmp_path / "model"))
    train.main(argv)
    exported, started = _weights(tmp_path / "runs"), _weights(tmp_path / "other")
    assert all(torch.equal(exported[k].to(torch.bfloat16).float(), started[k]) for k in exported)
    train.main(_argv(corpus, tmp_path / "other", "--stop-after-steps", "3", "--init-from", str(tmp_path / "model")))
    export(tmp_path / "other" / "r", tmp_path / "continued", TOKENIZER)
    state = json.loads((tmp_path / "continued" / "training_state.json").read_text())
    assert [(h["run"], h["tokens_seen"]) for h in state["history"]] == [("r", 2 * 32), ("r", 3 * 32)]  # summed
    # what the card reports travels with the weights: arguments, mix, stream sizes, the loss log
    assert state["args"]["init_from"] == str(tmp_path / "model") and state["mix"] == train.MIX
    assert state["streams"]["text-en"] == {"docs": 20, "chars": 999}
    log = (tmp_path / "continued" / "training_log.csv").read_text().splitlines()
    assert len(log) == 1 + 3  # header + one row per step (--log-every 1)


def test_weight_noise_shapes_the_gradient_but_never_stays_in_the_weights(corpus: Path, tmp_path: Path) -> None:
    train.main(_argv(corpus, tmp_path / "start", "--stop-after-steps", "0"))
    train.main(_argv(corpus, tmp_path / "frozen", "--lr", "0", "--weight-noise", "0.05"))
    start, frozen = _weights(tmp_path / "start"), _weights(tmp_path / "frozen")
    assert all(torch.equal(start[k], frozen[k]) for k in start)  # no update: the noise was taken back each step
    train.main(_argv(corpus, tmp_path / "clean"))
    train.main(_argv(corpus, tmp_path / "noisy", "--weight-noise", "0.05"))
    clean, noisy = _weights(tmp_path / "clean"), _weights(tmp_path / "noisy")
    assert not all(torch.equal(clean[k], noisy[k]) for k in clean)  # gradients taken at perturbed weights


def test_mix_override_steers_the_batches_and_binds_the_run(corpus: Path, tmp_path: Path) -> None:
    only_arith = {name: 0.0 for name in train.MIX} | {"arith": 1.0}
    assert train.mix_with([f"{n}={w}" for n, w in only_arith.items()]) == only_arith
    _, names = train.get_batch(
        {n: np.arange(64, dtype=np.uint16) for n in train.MIX}, np.random.default_rng(0), 8, 16, only_arith
    )
    assert set(names) == {"arith"}
    for bad in ("nosuch=1", "arith", "arith=lots", "arith=-1"):
        with pytest.raises(SystemExit, match="--mix"):
            train.mix_with([bad])
    train.main(_argv(corpus, tmp_path, "--mix", "text-ja=0.3", "--stop-after-steps", "2"))
    assert load_state(tmp_path / "r")["mix"]["text-ja"] == 0.3
    with pytest.raises(SystemExit, match="resume with the same --mix"):
        train.main(_argv(corpus, tmp_path))
