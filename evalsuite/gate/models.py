"""The models a gate session runs: the base, a recipe applied to it, or a checkpoint on disk.

Why a module of its own: loading (cached per process), applying a recipe in place and undoing it, and
holding compressed checkpoints are one job (which weights are live right now), separate from what is
asked of them (gate/plan.py) and how that is judged (gate/checks.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.config import GateSettings
from evalsuite.errors import EvalsuiteError, SetupError

__all__ = ["ActiveModel", "ModelSession", "Variant", "load_cached", "load_failure", "portable_path"]


@dataclass(frozen=True)
class Variant:
    """A model under test: the base itself, a recipe applied to it, or a checkpoint on disk."""

    label: str
    kind: str  # "base" | "recipe" | "checkpoint" | "perturbation" (a benign replicate, gate/perturb.py)
    spec: str | None = None
    recipe_obj: Any = field(default=None, compare=False, repr=False)  # the parsed recipe / perturbation

    @classmethod
    def base(cls) -> Variant:
        return cls("base", "base")

    @classmethod
    def recipe(cls, text: str) -> Variant:
        from evalsuite.compression.recipe import parse_recipe

        parsed = parse_recipe(text)
        return cls(parsed.short, "recipe", text, parsed)

    @classmethod
    def checkpoints(cls, paths: list[str]) -> list[Variant]:
        """One variant per distinct folder, labelled by the shortest path tail that tells them apart
        (`runs/a/final`, `runs/b/final` -> `ckpt:a/final`, `ckpt:b/final`): labels are test ids and report rows."""
        unique = list(dict.fromkeys(str(Path(p)) for p in paths))
        parts = [Path(p).parts for p in unique]
        depth = 1
        while depth < max((len(x) for x in parts), default=1) and len({x[-depth:] for x in parts}) < len(parts):
            depth += 1
        return [cls("ckpt:" + "/".join(x[-depth:]), "checkpoint", p) for p, x in zip(unique, parts, strict=True)]

    @classmethod
    def perturbation(cls, text: str) -> Variant:
        from evalsuite.gate.perturb import parse_perturbation

        parsed = parse_perturbation(text)
        return cls(f"benign:{parsed.id}", "perturbation", parsed.id, parsed)


@dataclass
class ActiveModel:
    """The model a variant's checks run on (the in-place compressed base, or a loaded checkpoint)."""

    model: Any
    tokenizer: Any
    variant: Variant
    key: str  # identifies the weights for the result cache
    record: Any = None  # the compression record, for recipes
    path: Path | None = None
    fingerprint: str = ""
    compression: Any = None  # the live CompressionResult of a recipe (exports it for a serving backend)


@dataclass
class Timing:
    generate_s: float = 0.0
    score_s: float = 0.0
    compress_s: float = 0.0
    load_s: float = 0.0
    prompts: int = 0
    extra: dict[str, float] = field(default_factory=dict)


_LOADED: dict[tuple, Any] = {}


def _load_options(s: GateSettings) -> dict[str, Any]:
    return {"dtype": s.dtype, "device": s.device, "trust_remote_code": s.trust_remote_code,
            "device_map": s.device_map, "max_memory": s.max_memory,
            "offload_folder": str(s.resolve(s.offload_folder)) if s.offload_folder else None}


def load_cached(path: Path | None, s: GateSettings):
    """load_model, memoised per process by (folder, file sizes and mtimes, load options).

    Why: repeated in-process gate sessions (pytester, the benchmark, a notebook) reuse the weights;
    every session restores in-place compressions when it ends, so the cached model is the original.
    """
    import json

    from evalsuite.model.loading import default_model_path, load_model

    folder = Path(path) if path is not None else default_model_path()
    try:
        stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        stamp = ()
    options = _load_options(s)
    key = (str(folder.resolve()), stamp, json.dumps(options, sort_keys=True, default=str))
    if key in _LOADED:
        _LOADED[key] = _LOADED.pop(key)  # most recently used last
    else:
        while len(_LOADED) >= 2:  # base + one checkpoint: never hold more weights than a session needs
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_model(path, **options)
    return _LOADED[key]


def _release_checkpoints(keep: Any) -> None:
    """Forget every memoised model but ``keep`` (the base, when loaded) before loading a checkpoint."""
    for key in [k for k, v in _LOADED.items() if v is not keep]:
        del _LOADED[key]


def load_failure(exc: BaseException, folder: Path | str, scope: str) -> SetupError:
    """Any failure to load a checkpoint as one SetupError: safetensors, torch and transformers raise their
    own types (a truncated shard gave a traceback per item and a reload per item)."""
    if isinstance(exc, SetupError):
        return exc
    if isinstance(exc, EvalsuiteError):
        return SetupError(str(exc), scope=scope)
    return SetupError(
        f"could not load the checkpoint in {folder}: {type(exc).__name__}: {exc}; a truncated or corrupt "
        "*.safetensors file cannot be read: copy the checkpoint again (and check `device`/`dtype`)",
        scope=scope,
    )


def portable_path(path: Path, root: Path) -> str:
    """A model path as stored in model.json: relative to the project or the package when inside."""
    from evalsuite.model.loading import default_model_path

    if path.resolve() == default_model_path().resolve():
        return "<embedded default model>"
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


class ModelSession:
    """Which weights are live: the base loaded once, one in-place compression at a time, checkpoints."""

    def __init__(self, settings: GateSettings, timing: Timing, on_record: Callable[[str, Any], None]) -> None:
        self.settings = settings
        self.timing = timing
        self._on_record = on_record
        self._base = None
        self._base_error: SetupError | None = None
        self._active: ActiveModel | None = None
        self._compression = None
        self._checkpoints: dict[str, Any] = {}
        self._failed: dict[str, SetupError] = {}

    def base_path(self) -> Path:
        from evalsuite.model.loading import default_model_path

        s = self.settings
        return s.resolve(s.model) if s.model else default_model_path()

    @property
    def loaded_base(self):
        """The base model if it was loaded (None before), without loading it."""
        return self._base

    def base(self):
        """The base (original) model, loaded once per session."""
        if self._base_error is not None:  # a failed load is attempted once and reported once
            raise self._base_error
        if self._base is None:
            from evalsuite.model.loading import configure_torch

            start = time.perf_counter()
            s = self.settings
            configure_torch(s.threads)
            try:
                self._base = load_cached(s.resolve(s.model) if s.model else None, s)
            except Exception as exc:
                self._base_error = load_failure(exc, self.base_path(), "run")
                raise self._base_error from None
            self.timing.load_s += time.perf_counter() - start
        return self._base

    def _restore(self) -> None:
        if self._compression is not None:
            self._compression.restore()
            self._compression = None

    def activate(self, variant: Variant) -> ActiveModel:
        """Make ``variant`` the model under test (undoing the previous in-place compression)."""
        if self._active is not None and self._active.variant == variant:
            return self._active
        if variant.label in self._failed:  # do not redo an expensive failing compression per item
            raise self._failed[variant.label]
        if self.settings.backend != "hf" and variant.kind != "recipe":
            self._restore()
            self._active = self._served(variant)
            return self._active
        base = self.base() if variant.kind != "checkpoint" else None  # a checkpoint alone: one model in memory
        self._restore()
        self._active = None
        try:
            self._active = self._activate(variant, base)
        except EvalsuiteError as exc:
            failure = exc if isinstance(exc, SetupError) else SetupError(str(exc), scope=f"variant {variant.label}")
            self._failed[variant.label] = failure
            raise failure from None
        return self._active

    def _served(self, variant: Variant) -> ActiveModel:
        """A model only a server runs: its folder, tokenizer and file fingerprint, no weights in this process
        (a 400B checkpoint is never loaded here just to be served)."""
        from evalsuite.model.fingerprint import fingerprint_checkpoint
        from evalsuite.model.loading import load_tokenizer

        path = self.base_path() if variant.kind == "base" else self.settings.resolve(variant.spec or "")
        fingerprint = fingerprint_checkpoint(path)
        tokenizer = load_tokenizer(path, trust_remote_code=self.settings.trust_remote_code)
        return ActiveModel(None, tokenizer, variant, f"{variant.kind}:{fingerprint}", path=path,
                           fingerprint=fingerprint)

    def _activate(self, variant: Variant, base) -> ActiveModel:
        if variant.kind == "base":
            return ActiveModel(base.model, base.tokenizer, variant, f"base:{base.fingerprint}",
                               path=base.path, fingerprint=base.fingerprint)
        if variant.kind == "perturbation":
            from evalsuite.gate.perturb import apply_perturbation

            self._compression = apply_perturbation(base.model, variant.recipe_obj)  # restored like a recipe
            return ActiveModel(base.model, base.tokenizer, variant, f"{base.fingerprint}~{variant.spec}",
                               path=base.path, fingerprint=f"{base.fingerprint[:16]}~{variant.spec}")
        if variant.kind == "recipe":
            from evalsuite.compression import compress

            recipe = variant.recipe_obj
            start = time.perf_counter()
            self._compression = compress(base.model, base.tokenizer, recipe)
            self.timing.compress_s += time.perf_counter() - start
            record = getattr(self._compression, "record", None)
            self._on_record(variant.label, record)
            model = getattr(self._compression, "model", None) or base.model  # apply=remove works on a copy
            return ActiveModel(model, base.tokenizer, variant, f"{base.fingerprint}+{recipe.hash}",
                               record=record, path=base.path,
                               fingerprint=f"{base.fingerprint[:16]}+{recipe.hash}", compression=self._compression)
        loaded = self._checkpoints.get(variant.spec or "")
        if loaded is None:
            start = time.perf_counter()
            self._checkpoints.clear()  # variants run one after another: hold one checkpoint at a time
            _release_checkpoints(keep=self._base)
            folder = self.settings.resolve(variant.spec or "")
            try:
                loaded = load_cached(folder, self.settings)
            except Exception as exc:
                raise load_failure(exc, folder, f"variant {variant.label}") from None
            self.timing.load_s += time.perf_counter() - start
            self._checkpoints[variant.spec or ""] = loaded
        return ActiveModel(loaded.model, loaded.tokenizer, variant, f"ckpt:{loaded.fingerprint}",
                           path=loaded.path, fingerprint=loaded.fingerprint)

    def close(self) -> None:
        """Undo any in-place compression (the base model is left as loaded)."""
        self._restore()
        self._active = None
