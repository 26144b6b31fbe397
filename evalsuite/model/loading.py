"""Load a local Hugging Face checkpoint safely and fingerprint it.

The fingerprint keys every stored baseline: a baseline recorded for other weights, config or tokenizer
must never be trusted silently. It is computed from the checkpoint's files (`evalsuite.model.fingerprint`),
so finding a model's baselines never needs the model in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# Nothing is ever fetched from a hub: set before transformers is imported anywhere through us.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from evalsuite.errors import ModelLoadError  # noqa: E402
from evalsuite.model.fingerprint import fingerprint_checkpoint  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A model, its tokenizer, where it came from and the fingerprint that keys its baselines."""

    model: torch.nn.Module
    tokenizer: Any
    path: Path
    fingerprint: str = field(default="")

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:16]


def default_model_path() -> Path:
    """The embedded default model that ships inside the package."""
    return Path(str(resources.files("evalsuite") / "default_model"))


def configure_torch(threads: int = 1) -> None:
    """One thread: on 2 loaded cores torch's default made tiny matmuls up to ~700x slower (BRIEF.md)."""
    torch.set_num_threads(threads)


def _check_checkpoint_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is not a directory; pass a local checkpoint folder")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; it is not a Hugging Face checkpoint folder")
    if not any(path.glob("*.safetensors")):
        others = sorted(p.name for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"})
        hint = f" (found {', '.join(others)}; convert them to safetensors)" if others else ""
        raise ModelLoadError(f"{path} holds no *.safetensors weights{hint}; evalsuite loads safetensors only")


def load_model(
    path: str | Path | None = None,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    trust_remote_code: bool = False,
    device_map: str | dict[str, Any] | None = None,
    max_memory: dict[Any, str | int] | None = None,
    offload_folder: str | Path | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a local folder (None = the embedded default model).

    ``dtype="auto"`` keeps the checkpoint's own dtype (float32 for the embedded model, whose stored
    baselines are fp32). ``device_map`` ("auto" or {module: device}), ``max_memory`` and
    ``offload_folder`` hand placement to accelerate: layers that fit nowhere else run from disk, so a
    model larger than any one device still loads; without a device_map the model goes to ``device``.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per load clutters every gate log
    folder = Path(path) if path is not None else default_model_path()
    _check_checkpoint_dir(folder)
    dtype = resolved_dtype(folder, dtype)
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not supported; choose auto or one of {sorted(DTYPES)}")
    placement: dict[str, Any] = {}
    if device_map is not None:
        placement = {"device_map": device_map, "max_memory": max_memory, "offload_folder": offload_folder}
        placement = {k: v for k, v in placement.items() if v is not None}
    elif max_memory is not None or offload_folder is not None:
        raise ModelLoadError("max_memory / offload_folder need a device_map (e.g. device_map = \"auto\")")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            dtype=DTYPES[dtype],
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            local_files_only=True,
            **placement,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"could not load the checkpoint in {folder}: {exc}") from exc
    tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    if not placement:
        model.to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, path=folder, fingerprint=fingerprint_checkpoint(folder))


def load_tokenizer(folder: Path, *, trust_remote_code: bool = False) -> Any:
    """The checkpoint's tokenizer, padding on the left (every prompt ends where generation starts).

    Alone (without the weights) for a model a server runs: the gate still encodes the prompts itself."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"could not load the tokenizer in {folder}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def resolved_dtype(folder: Path, dtype: str) -> str:
    """What ``dtype`` means for a checkpoint: itself, or for "auto" the dtype its config.json declares
    (float32 for the embedded model, whose committed baselines are fp32)."""
    if dtype != "auto":
        return dtype
    if folder.resolve() == default_model_path().resolve():
        return "float32"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    value = str(config.get("dtype") or config.get("torch_dtype") or "float32").removeprefix("torch.")
    return value if value in DTYPES else "float32"

