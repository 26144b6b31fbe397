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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError

__all__ = [
    "DEFAULT_TOLERANCES",
    "GENERATIVE_CHECKS",
    "DISCRIMINATIVE_CHECKS",
    "GateSettings",
    "load_pyproject_table",
    "merge_tolerance",
]

#: Default tolerance of every check. Keys inside a check are the names a case may override; most are
#: the keyword arguments of the metric function in evalsuite/metrics/ that the check calls.
#: Every generative check is relative to the baseline response: what the original model already did
#: (a loop, a foreign word, a denial) is never held against the compressed one.
DEFAULT_TOLERANCES: dict[str, dict[str, Any]] = {
    # collapse (metrics.collapse): fails when the new response is degenerate and the baseline's is not
    "collapse": {"min_chars": 10, "max_degenerate_fraction": 0.2, "max_char_run": 25},
    # language (metrics.language): findings (foreign-script runs, sentences in another language) may
    # exceed the baseline's by at most max_new_findings
    "language": {"min_confidence": 0.9, "min_letters": 20, "max_new_findings": 0},
    # length_ratio (metrics.length): len(new) / len(baseline) in characters must lie in [min, max]
    "length_ratio": {"min_ratio": 0.5, "max_ratio": 3.0},
    # content (metrics.drift): share of the baseline's top_n key terms kept >= min_retention, no new
    # denial/refusal, and every case keyword the baseline contains is still there
    "content": {"min_retention": 0.5, "top_n": 12},
    # diversity (metrics.diversity): distinct-n (n = 1, 2, 3) of the response >= min_ratio x the baseline's
    "diversity": {"min_ratio": 0.8},
    # divergence (metrics.divergence): mean per-token KL(baseline || new) in nats, teacher-forced on the
    # baseline response, over the baseline's stored top-k tokens plus one tail bucket
    "divergence": {"max_mean_kl": 0.25},
    # chrf (metrics.translation): chrF against the case's reference may fall by at most max_drop points
    "chrf": {"max_drop": 10.0},
    # answer: the case's `answer` must still appear in the response when it appeared in the baseline's
    "answer": {},
    # code (sandbox + metrics.passk): greedy pass@1 of the case's tests may fall by at most max_drop
    "code": {"max_drop": 0.0, "timeout_s": 10.0, "memory_mb": 1024},
    # perplexity (lm-eval rolling log-likelihood, metrics.perplexity): token perplexity new / baseline
    "perplexity": {"max_ratio": 1.2},
    # mc (lm-eval multiple_choice, metrics.significance): fails when the exact one-sided McNemar test
    # says the new model is worse (p < alpha) or accuracy fell by more than max_accuracy_drop
    "mc": {"alpha": 0.05, "max_accuracy_drop": 0.1},
}

GENERATIVE_CHECKS = (
    "collapse",
    "language",
    "length_ratio",
    "content",
    "diversity",
    "divergence",
    "chrf",
    "answer",
    "code",
)
DISCRIMINATIVE_CHECKS = ("perplexity", "mc")


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
    dtype: str = "float32"
    device: str = "cpu"
    trust_remote_code: bool = False
    max_new_tokens: int = 64
    batch_size: int = 8
    threads: int = 1  # torch threads: 1 is fastest for small models on shared cores (BRIEF.md)
    top_k_logprobs: int = 8
    tolerances: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_TOLERANCES))
    rootdir: Path = field(default_factory=Path.cwd)

    def resolve(self, value: str) -> Path:
        """A configured path, relative to the project root (where pyproject.toml lives)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.rootdir / path

    def generation_key(self) -> dict[str, Any]:
        """Settings that change the baseline's tokens or stored log-probs (batch size does not)."""
        return {
            "decoding": "greedy",
            "dtype": self.dtype,
            "top_k_logprobs": self.top_k_logprobs,
        }

    def generation_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.generation_key(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_table(cls, table: dict[str, Any], rootdir: Path, source: str = "[tool.evalsuite]") -> GateSettings:
        """Build settings from a `[tool.evalsuite]` table, naming the bad key when one is wrong."""
        settings = cls(rootdir=rootdir)
        known = {f for f in cls.__dataclass_fields__ if f not in {"tolerances", "rootdir"}}
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
                expected = type(getattr(settings, name))
                if name in {"compressed", "recipes", "suites"} and isinstance(value, str):
                    value = [value]
                if getattr(settings, name) is not None and not isinstance(value, expected):
                    raise EvalsuiteError(
                        f"{source}.{key} must be {expected.__name__}, got {type(value).__name__} {value!r}"
                    )
                setattr(settings, name, value or None if name in {"model", "html"} else value)
            else:
                raise EvalsuiteError(
                    f"{source} has unknown key {key!r}; known keys: {', '.join(sorted(known | {'tolerances'}))}"
                )
        return settings


def merge_tolerance(
    base: dict[str, dict[str, Any]], check: str, overrides: Any, *, where: str
) -> dict[str, Any]:
    """The tolerance of ``check`` with ``overrides`` applied; unknown checks/keys are errors."""
    if check not in base:
        raise EvalsuiteError(f"{where}: unknown check {check!r}; known checks: {', '.join(sorted(base))}")
    merged = dict(base[check])
    if overrides is None or overrides is True:
        return merged
    if not isinstance(overrides, dict):
        raise EvalsuiteError(f"{where} must be a mapping of tolerance settings, true or false, got {overrides!r}")
    for key, value in overrides.items():
        if key not in merged:
            allowed = ", ".join(sorted(merged)) or "none"
            raise EvalsuiteError(f"{where}: unknown setting {key!r} for check {check!r} (allowed: {allowed})")
        if not _same_kind(merged[key], value):
            raise EvalsuiteError(f"{where}.{key} must be {type(merged[key]).__name__}, got {value!r}")
        merged[key] = value
    return merged


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
