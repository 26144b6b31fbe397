"""Compression recipes: a small declarative value with a short string form and a stable hash.

A recipe names *what* to do (method, how much, which calibration data, options); `compress` decides
*how*. The short form (``reap:0.25``, ``merge-cka-uniform:6@code,grouping=hc``) is what users type on the
command line and what pytest shows as a test id, so it is canonical: defaults are left out and options are
sorted, which makes equal recipes print (and hash) the same.

Grammar::

    METHOD:AMOUNT[@CALIBRATION][,KEY=VALUE]...

AMOUNT is a ratio of experts to remove (a number strictly between 0 and 1) or an integer count of
experts to keep per layer (>= 1).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from evalsuite.errors import InvalidRecipeError

PRUNING_METHODS: dict[str, str] = {
    "frequency": "activation frequency: how many tokens route to the expert (top-k selections)",
    "soft-count": "soft count: summed router probability over all tokens",
    "gate-sum": "summed routing weight g_j(x) over the tokens routed to the expert",
    "ean": "expert activation norm: summed ||f_j(x)|| over routed tokens",
    "reap": "REAP: mean over routed tokens of g_j(x) * ||f_j(x)||",
    "reap-sum": "REAP total: summed g_j(x) * ||f_j(x)|| (= frequency x REAP, the expected error over all tokens)",
    "importance": "top-1 count x exp(mean top-1 confidence) (NLLB-200 importance)",
    "random": "seeded random scores (a control)",
}
SIMILARITIES: dict[str, str] = {
    "cka": "linear CKA of expert outputs on calibration tokens (data-centric)",
    "cosine": "mean per-token cosine of expert outputs on calibration tokens (data-centric)",
    "weights": "cosine of the vectorised expert weights (model-centric)",
    "surrogate": "cosine of the surrogate weight down @ (gate * up) (model-centric)",
}
MERGE_WEIGHTINGS: dict[str, str] = {
    "uniform": "average the group's experts with equal weights",
    "freq": "average weighted by how often each member was routed to",
    "max": "keep only the most-visited member of the group",
}
MERGING_METHODS: dict[str, str] = {
    f"merge-{s}-{w}": f"group by {SIMILARITIES[s]}; {MERGE_WEIGHTINGS[w]}"
    for s in SIMILARITIES
    for w in MERGE_WEIGHTINGS
}

# Other spellings users type; the canonical name is what short forms and hashes use.
ALIASES: dict[str, str] = {
    "freq": "frequency",
    "count": "frequency",
    "soft": "soft-count",
    "softcount": "soft-count",
    "alpha": "gate-sum",
    "gate": "gate-sum",
    "rand": "random",
}

DEFAULT_CALIBRATION = "diverse"
DEFAULT_TOKEN_BUDGET = 8192
DEFAULT_OUTPUT_SAMPLES = 512  # 256 made CKA groups sample-sensitive on the embedded model

# Option name -> (default, allowed values or a type, applies to "prune"/"merge"/"both").
OPTIONS: dict[str, tuple[Any, Any, str]] = {
    "scope": ("layer", ("layer", "global"), "prune"),
    "schedule": ("oneshot", ("oneshot", "iterative"), "prune"),
    "rounds": (2, int, "prune"),
    "apply": ("mask", ("mask", "soft", "zero", "remove"), "both"),
    "factor": (0.5, float, "prune"),
    "grouping": ("greedy", ("greedy", "hc", "spectral"), "merge"),
    "router": ("merge", ("merge", "keep"), "merge"),
    "seed": (0, int, "both"),
    "tokens": (DEFAULT_TOKEN_BUDGET, int, "both"),
    # tokens on which every expert's output is kept for cka/cosine grouping (memory: layers x E x N x H)
    "samples": (DEFAULT_OUTPUT_SAMPLES, int, "merge"),
}
_MERGE_APPLY = ("mask", "remove")


def available_methods() -> list[str]:
    """Every method name a recipe accepts, pruning methods first."""
    return list(PRUNING_METHODS) + list(MERGING_METHODS)


def describe_methods() -> dict[str, str]:
    """Method name -> one-line description (for `--help` texts and error messages)."""
    return {**PRUNING_METHODS, **MERGING_METHODS}


def canonical_method(method: str) -> str:
    """Lower-case, underscores as hyphens, aliases resolved (e.g. 'freq' -> 'frequency')."""
    name = str(method).strip().lower().replace("_", "-")
    return ALIASES.get(name, name)


def _fail_method(method: str) -> InvalidRecipeError:
    return InvalidRecipeError(f"unknown compression method {method!r}; valid methods: {', '.join(available_methods())}")


def _format_amount(amount: float | int) -> str:
    if isinstance(amount, int):
        return str(amount)
    text = f"{amount:.6f}".rstrip("0").rstrip(".")
    return text


@dataclass(frozen=True)
class Recipe:
    """One compression recipe. Build it with `parse_recipe` or `Recipe.from_mapping`; both validate."""

    method: str
    ratio: float | None = None
    target: int | None = None
    calibration: str = DEFAULT_CALIBRATION
    options: Mapping[str, Any] = field(default_factory=dict)

    # -- derived views -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """ "prune" or "merge"."""
        return "merge" if self.method.startswith("merge-") else "prune"

    @property
    def similarity(self) -> str | None:
        return self.method.split("-")[1] if self.kind == "merge" else None

    @property
    def weighting(self) -> str | None:
        return self.method.split("-")[2] if self.kind == "merge" else None

    def option(self, name: str) -> Any:
        """The option's value, or its default."""
        return self.options.get(name, OPTIONS[name][0])

    @property
    def amount(self) -> float | int:
        return self.ratio if self.ratio is not None else self.target  # type: ignore[return-value]

    @property
    def short(self) -> str:
        """Canonical short form: defaults omitted, options sorted (used for CLI and pytest ids)."""
        text = f"{self.method}:{_format_amount(self.amount)}"
        if self.calibration != DEFAULT_CALIBRATION:
            text += f"@{self.calibration}"
        for key in sorted(self.options):
            value = self.options[key]
            if value != OPTIONS[key][0]:
                text += f",{key}={_format_amount(value) if isinstance(value, float) else value}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Every field with defaults filled in: what the hash covers."""
        relevant = {k for k, (_, _, scope) in OPTIONS.items() if scope in ("both", self.kind)}
        return {
            "method": self.method,
            "ratio": self.ratio,
            "target": self.target,
            "calibration": self.calibration,
            "options": {k: self.option(k) for k in sorted(relevant)},
        }

    @property
    def hash(self) -> str:
        """12 hex chars of sha256 over the canonical JSON of `to_dict()` (defaults included)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return self.short

    def __hash__(self) -> int:
        return hash(self.short)

    def with_options(self, **options: Any) -> Recipe:
        """A copy with some options changed (validated)."""
        return _validated(replace(self, options={**dict(self.options), **options}))

    # -- amounts on a concrete model -----------------------------------------------------------
    def experts_to_remove(self, num_experts: int) -> int:
        """How many experts one layer of `num_experts` loses (ratio is rounded to nearest)."""
        if self.ratio is not None:
            return int(math.floor(self.ratio * num_experts + 0.5))
        assert self.target is not None
        return num_experts - self.target

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Recipe:
        """Build from a dict (a pyproject/YAML table). Accepts `recipe = "reap:0.25"` as a shortcut,
        or `method` plus one of `ratio` / `target` / `amount`, `calibration`, and option keys."""
        data = dict(data)
        if "recipe" in data:
            base = parse_recipe(str(data.pop("recipe")))
            if not data:
                return base
            merged = base.to_dict()
            merged.update({"ratio": base.ratio, "target": base.target})
            opts = dict(base.options)
            for key in list(data):
                if key in OPTIONS:
                    opts[key] = data.pop(key)
            return cls.from_mapping({**merged, **data, "options": opts})
        valid = {"method", "ratio", "target", "amount", "calibration", "options", *OPTIONS}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise InvalidRecipeError(
                f"unknown recipe key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(sorted(valid))}"
            )
        if "method" not in data:
            raise InvalidRecipeError(f"recipe table {dict(data)!r} has no 'method'; valid: {available_methods()}")
        amounts = [k for k in ("ratio", "target", "amount") if data.get(k) is not None]
        if len(amounts) != 1:
            raise InvalidRecipeError(
                f"recipe for {data['method']!r} needs exactly one of 'ratio' (fraction of experts to remove, "
                f"0 < r < 1), 'target' (experts to keep per layer) or 'amount'; got {amounts or 'none'}"
            )
        raw = data[amounts[0]]
        ratio, target = _split_amount(str(raw), kind=amounts[0])
        options = dict(data.get("options") or {})
        for key in OPTIONS:
            if key in data:
                options[key] = data[key]
        options = {k: _coerce_option(k, v) for k, v in options.items()}
        return _validated(
            cls(
                method=canonical_method(data["method"]),
                ratio=ratio,
                target=target,
                calibration=str(data.get("calibration") or DEFAULT_CALIBRATION),
                options=options,
            )
        )


def _split_amount(text: str, *, kind: str = "amount") -> tuple[float | None, int | None]:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidRecipeError(
            f"recipe amount {text!r} is not a number; use a ratio of experts to remove (0 < r < 1, e.g. "
            f"'reap:0.25') or a count of experts to keep per layer (e.g. 'reap:6')"
        ) from None
    if not math.isfinite(value):
        raise InvalidRecipeError(f"recipe amount {text!r} is not finite; use a ratio in (0, 1) or a count >= 1")
    if kind == "ratio" or (kind == "amount" and ("." in text or "e" in text.lower() or value < 0)):
        if not 0.0 < value < 1.0:
            raise InvalidRecipeError(
                f"recipe ratio {text} is outside (0, 1); it is the fraction of experts to remove, e.g. 0.25"
            )
        return value, None
    if value != int(value) or value < 1:
        raise InvalidRecipeError(
            f"recipe amount {text} is neither a ratio in (0, 1) nor a whole number of experts to keep (>= 1)"
        )
    return None, int(value)


def _coerce_option(key: str, value: Any) -> Any:
    if key not in OPTIONS:
        raise InvalidRecipeError(f"unknown recipe option {key!r}; valid options: {', '.join(sorted(OPTIONS))}")
    default, allowed, _ = OPTIONS[key]
    if isinstance(allowed, tuple):
        text = str(value).strip().lower()
        if text not in allowed:
            raise InvalidRecipeError(f"recipe option {key}={value!r} is not valid; choose one of {', '.join(allowed)}")
        return text
    try:
        coerced = allowed(value)
        if allowed is int and float(value) != coerced:
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidRecipeError(
            f"recipe option {key}={value!r} must be {allowed.__name__} (default {default})"
        ) from None
    return coerced


def _validated(recipe: Recipe) -> Recipe:
    """Check everything that needs no model; drop options equal to their default (canonical value)."""
    if recipe.method not in PRUNING_METHODS and recipe.method not in MERGING_METHODS:
        raise _fail_method(recipe.method)
    for key in recipe.options:
        _coerce_option(key, recipe.options[key])
        scope = OPTIONS[key][2]
        if scope not in ("both", recipe.kind):
            valid = sorted(k for k, (_, _, s) in OPTIONS.items() if s in ("both", recipe.kind))
            raise InvalidRecipeError(
                f"option {key!r} does not apply to {recipe.kind} method {recipe.method!r}; "
                f"valid options: {', '.join(valid)}"
            )
    if recipe.kind == "merge" and recipe.option("apply") not in _MERGE_APPLY:
        raise InvalidRecipeError(
            f"merging recipes apply by {' or '.join(_MERGE_APPLY)}, not {recipe.option('apply')!r}"
        )
    if recipe.option("scope") == "global" and recipe.option("apply") == "remove":
        raise InvalidRecipeError(
            "scope=global gives a different expert count per layer, but a checkpoint config holds one "
            "expert count, so it cannot be removed physically; use apply=mask (the default), soft or zero"
        )
    if min(recipe.option("rounds"), recipe.option("tokens"), recipe.option("samples")) < 1:
        raise InvalidRecipeError("recipe options rounds, tokens and samples must be >= 1")
    if recipe.option("factor") < 0:
        raise InvalidRecipeError(f"recipe option factor={recipe.option('factor')} must be >= 0")
    from evalsuite.compression.calibration import check_calibration_name

    check_calibration_name(recipe.calibration)
    canonical = {k: v for k, v in sorted(recipe.options.items()) if v != OPTIONS[k][0]}
    return replace(recipe, options=canonical)


def parse_recipe(text: str | Recipe) -> Recipe:
    """Parse the short form (see module docstring). Raises InvalidRecipeError listing valid choices."""
    if isinstance(text, Recipe):
        return _validated(text)
    raw = str(text).strip()
    if not raw:
        raise InvalidRecipeError(f"empty recipe; write METHOD:AMOUNT, e.g. 'reap:0.25'. Methods: {available_methods()}")
    head, *option_parts = raw.split(",")
    calibration = DEFAULT_CALIBRATION
    if "@" in head:
        head, calibration = head.split("@", 1)
        calibration = calibration.strip()
        if not calibration:
            raise InvalidRecipeError(f"recipe {raw!r} has an empty calibration set after '@'")
    if ":" not in head:
        method = canonical_method(head)
        if method not in PRUNING_METHODS and method not in MERGING_METHODS:
            raise _fail_method(method)
        raise InvalidRecipeError(
            f"recipe {raw!r} has no amount; write {method}:RATIO (fraction to remove, e.g. {method}:0.25) "
            f"or {method}:COUNT (experts to keep per layer)"
        )
    method, amount = head.split(":", 1)
    method = canonical_method(method)
    if method not in PRUNING_METHODS and method not in MERGING_METHODS:
        raise _fail_method(method)
    ratio, target = _split_amount(amount)
    options: dict[str, Any] = {}
    for part in option_parts:
        if not part.strip():
            continue
        if "=" not in part:
            raise InvalidRecipeError(
                f"recipe option {part!r} in {raw!r} is not KEY=VALUE; valid keys: {sorted(OPTIONS)}"
            )
        key, value = (s.strip() for s in part.split("=", 1))
        options[key.lower()] = _coerce_option(key.lower(), value)
    return _validated(Recipe(method=method, ratio=ratio, target=target, calibration=calibration, options=options))
