"""Benign perturbations of the base model: what the noise floor is measured under.

Why: a greedy answer of a small or fragile model can flip under changes that no one would call a
regression (numerics, a dtype round trip, weight noise that leaves perplexity and teacher-forced KL
untouched). Running the unmodified model under a few such perturbations, with fixed seeds, measures
how far each check moves for reasons unrelated to compression; the gate then judges a variant
against that spread (gate/noise.py).

The family (short forms, also the replicate ids stored in the floor):

    noise:SCALE:SEED   add Gaussian noise of SCALE x the tensor's own rms to every weight matrix
                       (parameters with >= 2 dimensions: attention, experts, router, embeddings,
                       head; norms and biases untouched), drawn from a generator seeded with SEED
    bf16 / fp16        round every floating parameter through bfloat16 / float16 and back
    resave             save the weights as safetensors and load them back (a no-op for a sound
                       checkpoint format; included so the benchmark proves it)

Every perturbation is applied in place and undone exactly: the touched tensors are copied first
(one extra copy of the model's weights while a replicate runs; the copy is released on restore).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evalsuite.errors import SettingError

__all__ = ["Perturbation", "PerturbHandle", "apply_perturbation", "parse_perturbation", "replicate_schedule"]

_NOISE = re.compile(r"noise:(?P<scale>[0-9.eE+-]+):(?P<seed>\d+)")
_ROUND_TRIPS = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class Perturbation:
    """One benign perturbation (see the module docstring for the family)."""

    kind: str  # "noise" | "bf16" | "fp16" | "resave"
    scale: float = 0.0
    seed: int = 0

    @property
    def id(self) -> str:
        return f"noise:{self.scale:g}:{self.seed}" if self.kind == "noise" else self.kind


def parse_perturbation(text: str) -> Perturbation:
    """``noise:0.01:3``, ``bf16``, ``fp16`` or ``resave``; SettingError naming the value otherwise."""
    text = text.strip()
    if text in _ROUND_TRIPS or text == "resave":
        return Perturbation(text)
    match = _NOISE.fullmatch(text)
    if match:
        try:
            scale = float(match["scale"])
        except ValueError:
            scale = -1.0
        if 0.0 < scale <= 0.1:
            return Perturbation("noise", scale, int(match["seed"]))
    raise SettingError(
        "perturbation", f"got {text!r}; use noise:SCALE:SEED (0 < SCALE <= 0.1, a multiple of each weight's "
        "rms), bf16, fp16 or resave"
    )


def replicate_schedule(count: int, scales: list[float]) -> list[Perturbation]:
    """The K replicates a floor is recorded with: weight noise cycling through ``scales``, seed = index."""
    if count and not scales:
        raise SettingError("noise_scales", "is empty; give at least one scale (e.g. [0.01, 0.03])")
    return [Perturbation("noise", float(scales[i % len(scales)]), i) for i in range(count)]


class PerturbHandle:
    """Undo of one in-place perturbation (also a context manager)."""

    def __init__(self, saved: dict[str, Any], params: dict[str, Any]) -> None:
        self._saved = saved
        self._params = params

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for name, original in self._saved.items():
                self._params[name].copy_(original)
        self._saved = {}

    def __enter__(self) -> PerturbHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


def _resave(model: Any, params: dict[str, Any]) -> None:
    import tempfile
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        save_file({n: p.detach().contiguous() for n, p in params.items()}, str(path))
        for name, tensor in load_file(str(path)).items():
            params[name].copy_(tensor)


def apply_perturbation(model: Any, p: Perturbation) -> PerturbHandle:
    """Perturb ``model``'s weights in place; the handle restores them exactly."""
    import torch

    params = {n: t for n, t in model.named_parameters() if t.is_floating_point() and t.device.type != "meta"}
    touched = {n: t for n, t in params.items() if t.dim() >= 2} if p.kind == "noise" else params
    saved = {n: t.detach().clone() for n, t in touched.items()}
    generator = torch.Generator().manual_seed(p.seed)
    with torch.no_grad():
        if p.kind == "resave":
            _resave(model, touched)
        for name in sorted(touched):
            tensor = touched[name]
            if p.kind == "noise":
                rms = tensor.float().pow(2).mean().sqrt()
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                tensor.add_((noise * rms * p.scale).to(tensor.device, tensor.dtype))
            elif p.kind in _ROUND_TRIPS:
                tensor.copy_(tensor.to(getattr(torch, _ROUND_TRIPS[p.kind])).to(tensor.dtype))
    return PerturbHandle(saved, touched)
