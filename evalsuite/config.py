"""Gate settings: `[tool.evalsuite]` in pyproject.toml, overridden by pytest options.

Why one place: the same defaults are used by the pytest plugin, the CLI and the benchmark, and the
tolerances a case does not override must be visible (and diffable) in the project's pyproject.toml.
Precedence: command-line option > `[tool.evalsuite]` > the defaults below; a prompt case's `checks:`
entry overrides the tolerance of that one check for that one case.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError, SettingError
from evalsuite.gate.checks import REGISTRY, default_tolerances

__all__ = [
    "DEFAULT_TOLERANCES",
    "GENERATIVE_CHECKS",
    "DISCRIMINATIVE_CHECKS",
    "Bounds",
    "GateSettings",
    "MAX_NEW_TOKENS_LIMIT",
    "SETTING_BOUNDS",
    "TOLERANCE_BOUNDS",
    "check_device",
    "check_value",
    "load_pyproject_table",
    "merge_tolerance",
    "parse_option",
]

#: Default tolerance of every check, from the check registry (evalsuite/gate/checks.py, where each is
#: explained). Keys inside a check are the names a case may override.
DEFAULT_TOLERANCES: dict[str, dict[str, Any]] = default_tolerances()
GENERATIVE_CHECKS = tuple(name for name, spec in REGISTRY.items() if spec.kind == "generative")
DISCRIMINATIVE_CHECKS = tuple(name for name, spec in REGISTRY.items() if spec.kind == "discriminative")


@dataclass(frozen=True)
class Bounds:
    """The meaningful range of one number: ``low <= value <= high`` (or ``<`` where ``open_low``/``open_high``).

    Why ranges and not only types: a NaN tolerance makes every comparison false (the check can never
    fail), a negative retention or a zero timeout turns a check off without saying so. ``why`` says what
    goes wrong outside the range, for the error message.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    why: str = ""

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        return "a finite number " + " and ".join(parts) if parts else "a finite number"

    def accepts(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


_FRACTION = Bounds(0.0, 1.0, why="it is a fraction")
_COUNT = Bounds(0)
#: Range of every tolerance setting. A setting not listed here (a check added later) must still be
#: finite; list it to say more. Ratios against the baseline must let an unchanged response pass.
TOLERANCE_BOUNDS: dict[str, dict[str, Bounds]] = {
    "collapse": {"min_chars": _COUNT, "max_degenerate_fraction": _FRACTION, "max_char_run": Bounds(1)},
    "language": {"min_confidence": _FRACTION, "min_letters": _COUNT, "max_new_findings": _COUNT},
    "length_ratio": {
        "min_ratio": Bounds(0.0, 1.0, why="above 1 an unchanged response fails"),
        "max_ratio": Bounds(1.0, why="below 1 an unchanged response fails"),
    },
    "content": {"min_retention": _FRACTION, "top_n": Bounds(1)},
    "diversity": {"min_ratio": Bounds(0.0, 1.0, why="above 1 an unchanged response fails")},
    "divergence": {"max_mean_kl": Bounds(0.0, why="a KL divergence is never negative")},
    "chrf": {"max_drop": Bounds(0.0, 100.0, why="chrF is a score from 0 to 100")},
    "code": {
        "max_drop": _FRACTION,
        "timeout_s": Bounds(0.0, 3600.0, open_low=True, why="with no time the original's code fails too"),
        "memory_mb": Bounds(16, why="below 16 MB the Python interpreter itself cannot start"),
        "samples": Bounds(0, 1000, why="0 = greedy pass@1; n > 0 samples per problem for pass@k"),
        "temperature": Bounds(0.0, 5.0, open_low=True, why="sampling needs a positive temperature"),
        "seed": Bounds(0),
        "alpha": Bounds(0.0, 1.0, open_low=True, open_high=True, why="it is a significance level"),
    },
    "perplexity": {"max_ratio": Bounds(1.0, why="below 1 an unchanged model fails")},
    "mc": {
        "alpha": Bounds(0.0, 1.0, open_low=True, open_high=True, why="it is a significance level"),
        "max_accuracy_drop": _FRACTION,
    },
    "reasoning": {
        "min_ratio": Bounds(0.0, 1.0, why="above 1 an unchanged trace fails"),
        "max_degenerate_fraction": _FRACTION,
        "max_char_run": Bounds(1),
    },
}
TOLERANCE_BOUNDS["task"] = TOLERANCE_BOUNDS["mc"]

#: The largest decoding budget a case or the project may ask for: beyond it a run takes hours per
#: prompt on CPU and no stored baseline stays reviewable (the trial's `max_new_tokens: 1e9` ran past 240 s).
MAX_NEW_TOKENS_LIMIT = 32768
#: Range of the numeric settings of `[tool.evalsuite]`.
SETTING_BOUNDS: dict[str, Bounds] = {
    "max_new_tokens": Bounds(1, MAX_NEW_TOKENS_LIMIT, why="a response needs at least one token"),
    "batch_size": Bounds(1, 4096),
    "threads": Bounds(1, 1024, why="torch needs at least one thread"),
    "top_k_logprobs": Bounds(1, 1000, why="with no stored alternatives the divergence check always passes"),
    "tensor_parallel": Bounds(1, 4096),
    "pipeline_parallel": Bounds(1, 4096),
    "server_start_timeout": Bounds(1),
    "request_timeout": Bounds(1),
    "noise_replicates": Bounds(0, 1000),
    "noise_margin": Bounds(0.0, 100.0),
    "noise_max_kl": Bounds(0.0, open_low=True, why="a KL bound of 0 refuses every perturbation"),
    "verdict_alpha": Bounds(0.0, 1.0, open_low=True, open_high=True, why="it is a significance level"),
}
#: Model dtypes the loader supports (evalsuite.model.loading.DTYPES; a test keeps the two in step).
DTYPE_NAMES = ("float32", "bfloat16", "float16")


def check_value(value: Any, bounds: Bounds | None, *, where: str) -> None:
    """Raise SettingError naming ``where`` and ``value`` when a number is not finite or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    bounds = bounds or Bounds()
    if not bounds.accepts(value):
        why = f" ({bounds.why})" if bounds.why else ""
        raise SettingError(where, f"got {value!r}; must be {bounds.describe()}{why}")


def check_device(value: str, *, where: str) -> None:
    """A device string torch understands and this machine has; otherwise SettingError with the fix.

    Checked when the settings are read, so a bad device is one error before any model is loaded (not a
    traceback and a model reload per test item).
    """
    if value == "cpu":
        return
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise SettingError(where, f'{value!r} is not a device; use "cpu", "cuda", "cuda:N" or "mps"') from None
    if device.type == "cpu":
        return
    if device.type not in {"cuda", "mps", "xpu"}:
        raise SettingError(where, f'models cannot run on a {device.type!r} device; use "cpu" or "cuda"')
    backend = getattr(torch, device.type, None) if device.type != "mps" else torch.backends.mps
    if backend is None or not backend.is_available():
        raise SettingError(
            where,
            f"{value!r}, but this machine has no {device.type} device available to torch {torch.__version__}; "
            'use device = "cpu" (or run on a machine with that accelerator)',
        )
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if device.index is not None and device.index >= count:
        raise SettingError(where, f"{value!r}, but this machine has {count} {device.type} device(s) (0..{count - 1})")


@dataclass
class GateSettings:
    """Everything that decides what the gate runs and how strictly it judges."""

    model: str | None = None  # None = the embedded default model
    compressed: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)
    prompts: str = "prompts"
    # suite folders under `prompts` that `pytest -m generative` (no path given) runs; empty = all
    suites: list[str] = field(default_factory=list)
    baselines: str = "baselines"
    html: str | None = None
    update_baselines: bool = False
    # "auto": the checkpoint's own dtype (float32 for the embedded model, whose baselines are fp32)
    dtype: str = "auto"
    device: str = "cpu"
    trust_remote_code: bool = False
    # what runs the model: "hf" (transformers in-process), "vllm" (a vLLM server evalsuite starts, or
    # server_url), "openai" (any OpenAI-compatible completions server at server_url); docs/backends.md
    backend: str = "hf"
    device_map: str | dict | None = None  # hf: "auto" or {module: device}; accelerate dispatches the model
    max_memory: dict | None = None  # hf: {device: "20GiB", "cpu": "64GiB"} caps per device for device_map
    offload_folder: str | None = None  # hf: where weights that fit nowhere go (disk offload)
    server_url: str | None = None  # vllm/openai: an already running server (http://host:port)
    server_model: str | None = None  # the model name the server knows (default: the first it lists)
    vllm_command: list[str] = field(default_factory=list)  # default: <vllm python> -m vllm...api_server
    vllm_args: list[str] = field(default_factory=list)  # extra server arguments, e.g. ["--max-model-len", "4096"]
    tensor_parallel: int = 1  # vllm --tensor-parallel-size
    pipeline_parallel: int = 1  # vllm --pipeline-parallel-size
    server_start_timeout: int = 900  # seconds to wait for a started server to answer
    request_timeout: int = 600  # seconds per server request
    # cross-backend comparison: judge against baselines recorded by another backend / dtype (see
    # docs/backends.md for the measured tolerance); unset = the run's own backend and dtype
    baseline_backend: str | None = None
    baseline_dtype: str | None = None
    max_new_tokens: int = 64
    batch_size: int = 8
    threads: int = 1  # torch threads: 1 is fastest for small models on shared cores (BRIEF.md)
    top_k_logprobs: int = 8
    # isolation level of code checks (evalsuite.sandbox.LEVELS); "weak" only by explicit choice
    sandbox: str = "strong"
    # chat cases: template arguments for every chat case (a case's own win), e.g. {enable_thinking = false},
    # and the reasoning style of chat cases that set none (metrics.reasoning: none, think, harmony)
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    reasoning: str = "none"
    # noise floor (gate/noise.py): at record time, also run the base model under this many benign
    # replicates (weight noise of each scale x rms, cycling, seed = index) and store each check's spread;
    # 0 = no floor (absolute thresholds only). Cost: one full gate pass of the suite per replicate.
    noise_replicates: int = 0
    noise_scales: list[float] = field(default_factory=lambda: [0.01, 0.03])
    noise_margin: float = 0.25  # a failing check is excused inside (worst benign deviation) x (1 + margin)
    noise_max_kl: float = 0.05  # a replicate whose mean teacher-forced KL exceeds this is not benign: refused
    # what decides pass/fail (gate/verdict.py): "suite" = the per-family exact test against the floor,
    # "items" = any failing item (today's rule), "auto" = "suite" when a noise floor exists, else "items"
    verdict: str = "auto"
    verdict_alpha: float = 0.05  # suite-wide false-alarm rate, split over the check families (Bonferroni)
    # a stable case failing beyond the worst deviation benign noise produced on any case of the suite fails its
    # family alone (the exact test cannot, with few replicates); false = the exact test only (its stated rate)
    verdict_severity: bool = True
    # ratio sweep (gate/sweep.py): every method in `sweep` at every ratio in `sweep_ratios` becomes a recipe
    # variant; the summary reports per method the largest ratio whose suite verdict passes
    sweep: list[str] = field(default_factory=list)
    sweep_ratios: list[float] = field(default_factory=list)
    tolerances: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_TOLERANCES))
    rootdir: Path = field(default_factory=Path.cwd)

    def resolve(self, value: str) -> Path:
        """A configured path, relative to the project root (where pyproject.toml lives)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.rootdir / path

    def generation_key(self, *, dtype: str | None = None, backend: str | None = None) -> dict[str, Any]:
        """Settings that change the baseline's tokens or stored log-probs (batch size does not): decoding,
        dtype (the resolved one when given), log-prob count and, for engines other than transformers,
        the backend (so an hf baseline stays valid for hf runs, and a vLLM run never trusts it silently)."""
        backend = backend or self.backend
        key: dict[str, Any] = {"decoding": "greedy", "dtype": dtype or self.dtype,
                               "top_k_logprobs": self.top_k_logprobs}
        if backend != "hf":
            key["backend"] = backend
        return key

    def generation_hash(self, *, dtype: str | None = None, backend: str | None = None) -> str:
        return key_hash(self.generation_key(dtype=dtype, backend=backend))

    def check_backend(self, where: str = "[tool.evalsuite]") -> None:
        """Cross-setting rules: placement settings belong to the in-process backend."""
        if self.backend != "hf" and (self.device_map or self.max_memory or self.offload_folder):
            raise SettingError(f"{where}.backend", f"device_map / max_memory / offload_folder apply to backend "
                               f"'hf' only; the {self.backend} server places the model itself")

    @classmethod
    def from_table(cls, table: dict[str, Any], rootdir: Path, source: str = "[tool.evalsuite]") -> GateSettings:
        """Build settings from a `[tool.evalsuite]` table, naming the bad key when one is wrong."""
        return cls(rootdir=rootdir).update(table, source)

    def update(self, table: dict[str, Any], source: str) -> GateSettings:
        """Apply a table of settings (pyproject, or command-line options), validated key by key."""
        settings = self
        known = {f for f in type(self).__dataclass_fields__ if f not in {"tolerances", "rootdir"}}
        for key, value in table.items():
            name = key.replace("-", "_")
            if name == "tolerances":
                if not isinstance(value, dict):
                    raise EvalsuiteError(f"{source}.tolerances must be a table of check -> settings")
                for check, overrides in value.items():
                    settings.tolerances[check] = merge_tolerance(
                        settings.tolerances, check, overrides, where=f"{source}.tolerances.{check}"
                    )
            elif name in known:
                default = getattr(settings, name)
                if name in _LIST_SETTINGS and isinstance(value, str):
                    value = [value]
                if default is not None and not _same_kind(default, value):
                    raise SettingError(
                        f"{source}.{key}", f"must be {type(default).__name__}, got {type(value).__name__} {value!r}"
                    )
                _check_setting(name, value, where=f"{source}.{key}")
                setattr(settings, name, value or None if name in {"model", "html"} else value)
            else:
                raise EvalsuiteError(
                    f"{source} has unknown key {key!r}; known keys: {', '.join(sorted(known | {'tolerances'}))}"
                )
        settings.check_backend(source)
        return settings


_LIST_SETTINGS = {"compressed", "recipes", "suites", "sweep", "vllm_command", "vllm_args"}
_PLACEMENT_TYPES: dict[str, tuple[type, ...]] = {
    "device_map": (str, dict), "max_memory": (dict,), "offload_folder": (str,), "server_url": (str,),
    "server_model": (str,), "baseline_backend": (str,), "baseline_dtype": (str,),
}
VERDICT_MODES = ("auto", "suite", "items")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def key_hash(key: dict[str, Any]) -> str:
    """Short stable hash of a settings key (what a baseline's settings_hash is)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def parse_option(name: str, text: str) -> Any:
    """A setting's value from command-line text: numbers for numeric settings, JSON for tables
    (``--evalsuite-max-memory '{"0": "70GiB", "cpu": "200GiB"}'``), shell words for argument lists."""
    import shlex

    default = GateSettings.__dataclass_fields__[name].default
    option = f"--evalsuite-{name.replace('_', '-')}"
    if name in ("vllm_command", "vllm_args"):
        return shlex.split(text)
    if isinstance(default, bool):
        return text.lower() in {"1", "true", "yes"}
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise SettingError(option, f"must be a whole number, got {text!r}") from None
    if name in ("device_map", "max_memory") and text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SettingError(option, f"is not a JSON table: {exc}") from None
    return text


def _check_setting(name: str, value: Any, *, where: str) -> None:
    check_value(value, SETTING_BOUNDS.get(name), where=where)
    from evalsuite.backends.base import BACKENDS

    choices = {"dtype": ("auto", *DTYPE_NAMES), "baseline_dtype": DTYPE_NAMES, "backend": BACKENDS,
               "baseline_backend": BACKENDS}
    if name in choices and value not in choices[name]:
        raise SettingError(where, f"got {value!r}; choose one of {', '.join(choices[name])}")
    if name in _PLACEMENT_TYPES and not isinstance(value, _PLACEMENT_TYPES[name]):
        names = " or ".join(t.__name__ for t in _PLACEMENT_TYPES[name])
        raise SettingError(where, f"must be {names}, got {type(value).__name__} {value!r}")
    if name == "device_map" and isinstance(value, str) and value not in DEVICE_MAPS:
        raise SettingError(where, f"got {value!r}; use one of {', '.join(DEVICE_MAPS)} or a table "
                           "{module name = device}")
    if name == "device":
        check_device(value, where=where)
    if name == "sandbox":
        from evalsuite.sandbox import LEVELS

        if value not in LEVELS:
            raise SettingError(where, f"got {value!r}; choose one of {', '.join(LEVELS)}")
    if name == "reasoning":
        from evalsuite.metrics.reasoning import REASONING_STYLES

        if value not in REASONING_STYLES:
            raise SettingError(where, f"got {value!r}; choose one of {', '.join(REASONING_STYLES)}")
    if name == "verdict" and value not in VERDICT_MODES:
        raise SettingError(where, f"got {value!r}; choose one of {', '.join(VERDICT_MODES)}")
    if name == "noise_scales" and not (value and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 0.1 for v in value)):
        raise SettingError(where, f"got {value!r}; give a non-empty list of noise scales in (0, 0.1] (multiples "
                           "of each weight's rms; 0.01 and 0.03 left perplexity and KL unchanged when measured)")


def merge_tolerance(
    base: dict[str, dict[str, Any]], check: str, overrides: Any, *, where: str
) -> dict[str, Any]:
    """The tolerance of ``check`` with ``overrides`` applied; unknown checks/keys are errors."""
    if check not in base:
        raise SettingError(where, f"unknown check {check!r}; known checks: {', '.join(sorted(base))}")
    merged = dict(base[check])
    if overrides is None or overrides is True:
        return merged
    if not isinstance(overrides, dict):
        raise SettingError(where, f"must be a mapping of tolerance settings, true or false, got {overrides!r}")
    for key, value in overrides.items():
        if key not in merged:
            allowed = ", ".join(sorted(merged)) or "none"
            raise SettingError(where, f"unknown setting {key!r} for check {check!r} (allowed: {allowed})")
        if not _same_kind(merged[key], value):
            raise SettingError(f"{where}.{key}", f"must be {type(merged[key]).__name__}, got {value!r}")
        check_value(value, TOLERANCE_BOUNDS.get(check, {}).get(key), where=f"{where}.{key}")
        merged[key] = value
    _check_consistent(check, merged, where=where)
    return merged


def _check_consistent(check: str, tolerance: dict[str, Any], *, where: str) -> None:
    """Cross-field rules a per-number range cannot express."""
    if check == "code":
        n, ks = tolerance.get("samples", 0), tolerance.get("k", [1])
        if not (isinstance(ks, list) and ks and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                                                    for k in ks)):
            raise SettingError(f"{where}.k", f"got {ks!r}; give a list of integers >= 1, e.g. [1, 5]")
        if n and max(ks) > n:
            raise SettingError(f"{where}.k", f"pass@{max(ks)} needs at least {max(ks)} samples; samples is {n}")
    low, high = tolerance.get("min_ratio"), tolerance.get("max_ratio")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        raise SettingError(where, f"min_ratio {low!r} > max_ratio {high!r}; no response could pass {check}")


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def load_pyproject_table(rootdir: Path) -> tuple[dict[str, Any], Path | None]:
    """The `[tool.evalsuite]` table of ``rootdir/pyproject.toml`` (empty when there is none)."""
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return {}, None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise EvalsuiteError(f"{path} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("evalsuite", {})
    if not isinstance(table, dict):
        raise EvalsuiteError(f"{path}: [tool.evalsuite] must be a table")
    return table, path
