"""`compress(model, tokenizer, recipe)`: score or group experts, apply the result, record exactly what.

Application modes (recipe option `apply`):
- mask (default): in place and reversible. Pruned experts are masked in the router (`MoEModel.mask`,
  which handles bias-selected routers). Merges write the merged weights into each group's survivor and
  mask the other members; this computes the same function as physical merging. Cost: the mask state plus
  a copy of the survivors' old rows - never a copy of the model.
- soft: the pruned experts' router weight rows are multiplied by `factor` (`MoEModel.scale_router_rows`):
  their logits shrink toward 0, so they lose the tokens they won by a margin but stay selectable; a
  soft, reversible alternative to masking (factor=0 gives logit 0, not a mask).
- zero: the pruned experts output zero but still take router slots (seed 001's "zeroed out" experts).
- remove: physical removal / merging on a *deep copy* of the model; the model you passed is never
  touched, `result.model` is the smaller copy and `restore()` just releases it.

Every result carries `record`: the recipe's short form and hash, the calibration set (name, tokens,
fingerprint) and, per layer, the experts removed (and for merges the groups and coefficients), so a
regression can be traced to the experts behind it.
"""

from __future__ import annotations

import copy
import json
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evalsuite.compression import criteria, selection
from evalsuite.compression.calibration import CalibrationSet, calibration_batches
from evalsuite.compression.grouping import group_experts
from evalsuite.compression.merging import InPlaceMerge, merge_targets, plan_merge
from evalsuite.compression.recipe import Recipe, parse_recipe
from evalsuite.compression.similarity import similarity_matrix
from evalsuite.errors import InvalidRecipeError

# ----------------------------------------------------------------------------------------------------
# statistics cache
# ----------------------------------------------------------------------------------------------------
_CHECKSUM_CHUNK = 1 << 20  # elements summed at a time: an 8 MiB float64 temporary, whatever the tensor's size
_CHECKSUMS: dict[int, tuple[weakref.ref, int, float]] = {}  # id(tensor) -> (the tensor, its version, checksum)


def _checksum(tensor: torch.Tensor) -> float:
    """float64 sum of a tensor's values, summed in chunks (no full-size copy) and memoised per tensor until
    autograd's version counter says it changed in place, so an unchanged model is not re-read."""
    if not tensor.is_floating_point():
        return 0.0
    cached = _CHECKSUMS.get(id(tensor))
    if cached is not None and cached[0]() is tensor and cached[1] == tensor._version:
        return cached[2]
    flat = tensor.detach().reshape(-1)
    with torch.no_grad():
        value = sum(float(c.sum(dtype=torch.float64)) for c in flat.split(_CHECKSUM_CHUNK))
    key = id(tensor)
    _CHECKSUMS[key] = (weakref.ref(tensor, lambda _: _CHECKSUMS.pop(key, None)), tensor._version, value)
    return value


def _state_key(model: torch.nn.Module) -> tuple[Any, ...]:
    """Identity of a model's current function: which evalsuite variants are active on it, the storage of
    every tensor and a checksum of its values (an in-place edit elsewhere changes the sum; restoring a
    variant brings back the exact bytes, so the key returns to its old value and the cache hits).

    No weight is copied: checksums are chunked and re-computed only for tensors edited in place since
    (autograd's version counter; edits through ``.data`` bypass it, evalsuite's own are in the key)."""
    tensors = list(model.parameters()) + list(model.buffers())
    checksum = tuple(_checksum(t) for t in tensors)
    return (id(model), tuple(_ACTIVE.get(id(model), [])), tuple(t.data_ptr() for t in tensors), checksum)


# model id -> hashes of the in-place variants currently applied to it (outermost first)
_ACTIVE: dict[int, list[str]] = {}


def _activate(model: torch.nn.Module, recipe_hash: str) -> None:
    _ACTIVE.setdefault(id(model), []).append(recipe_hash)


def _deactivate(model: torch.nn.Module, recipe_hash: str) -> None:
    active = _ACTIVE.get(id(model), [])
    if recipe_hash in active:
        active.reverse()
        active.remove(recipe_hash)
        active.reverse()
    if not active:
        _ACTIVE.pop(id(model), None)


class StatsCache:
    """LRU cache of routing statistics keyed by (model state, calibration token fingerprint).

    Several recipes on the same model and calibration set therefore share one statistics pass. The
    model state key changes when weights change in place or a variant is applied through `compress`,
    so statistics of a compressed model are never served for the original (or vice versa)."""

    def __init__(self, max_entries: int = 4) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], tuple[weakref.ref, Any, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_collect(self, model: torch.nn.Module, calibration: CalibrationSet, output_samples: int = 0) -> Any:
        """Statistics with expert outputs on ``output_samples`` tokens (0: none, the lean default).

        An entry with outputs serves a request without them (every other statistic is the same)."""
        key = (_state_key(model), calibration.fingerprint)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is model and output_samples in (0, entry[2]):
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        stats = collect_stats(model, calibration, output_samples=output_samples)
        self._entries[key] = (weakref.ref(model), stats, output_samples)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return stats

    def clear(self) -> None:
        self._entries.clear()


default_stats_cache = StatsCache()


def collect_stats(model: torch.nn.Module, calibration: CalibrationSet, *, output_samples: int = 0) -> Any:
    """One statistics pass: counts, gates, norms for every criterion; expert outputs on ``output_samples``
    tokens only when asked (cka/cosine grouping), in the model's dtype."""
    from evalsuite.model.routing import collect_routing_stats

    with torch.no_grad():
        return collect_routing_stats(model, calibration.batches(), output_samples=output_samples)


def output_samples(recipe: Recipe) -> int:
    """Tokens of expert outputs the recipe needs: only data-centric grouping (cka, cosine) uses them."""
    return int(recipe.option("samples")) if recipe.similarity in ("cka", "cosine") else 0


# ----------------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------------
class CompressionResult:
    """A compressed variant. Use `.model`; undo with `.restore()` or a `with` block.

    For mask/soft/zero variants `.model` is the model you passed, modified in place; restore() puts it
    back exactly. For `apply=remove` `.model` is a compressed deep copy and restore() only drops it."""

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        original: torch.nn.Module,
        recipe: Recipe,
        record: dict[str, Any],
        tokenizer: Any = None,
        handles: list[Any] | None = None,
        stats: Any = None,
        in_place: bool,
    ) -> None:
        self.model = model
        self.original = original
        self.recipe = recipe
        self.record = record
        self.tokenizer = tokenizer
        self.stats = stats
        self.in_place = in_place
        self._handles = handles or []
        self.restored = False

    # -- lifecycle --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Undo the variant (in-place modes) or release the copy (remove). Safe to call twice."""
        if self.restored:
            return
        for handle in reversed(self._handles):
            handle.restore()
        self._handles.clear()
        if not self.in_place:
            self.model = self.original
        else:
            _deactivate(self.original, self.recipe.hash)
        self.restored = True

    def __enter__(self) -> CompressionResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    @property
    def overhead_bytes(self) -> int:
        """Bytes evalsuite holds to undo this variant (merge survivors' old rows; mask state if known)."""
        total = 0
        for handle in self._handles:
            if hasattr(handle, "nbytes"):
                total += int(handle.nbytes)
            else:  # the access layer's handles: saved weight slices (scale/zero) or small logit biases (mask)
                for item in getattr(handle, "_saved", []):
                    saved = item[-1]
                    total += saved.numel() * saved.element_size() if isinstance(saved, torch.Tensor) else 0
        return total

    @property
    def removed(self) -> dict[int, list[int]]:
        """Layer -> experts no longer reachable (pruned, or merged into a survivor)."""
        return {int(row["layer"]): list(row["removed"]) for row in self.record["layers"]}

    def to_json(self) -> str:
        return json.dumps(self.record, sort_keys=True)

    # -- export ------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, source: str | Path | None = None) -> Path:
        """Export as a standard checkpoint (loadable by `from_pretrained` without evalsuite).

        The record is applied to the checkpoint files the model was loaded from (`source`, default: the
        model's `name_or_path`), tensor by tensor (`evalsuite.compression.export`): no copy of the model,
        the files' own dtype, tokenizer and other files byte-identical. The live variant is untouched.
        Global (non-uniform) masks cannot be exported: a config holds one expert count."""
        from evalsuite.compression.export import export_checkpoint

        if self.restored:
            raise InvalidRecipeError(f"variant {self.recipe.short} was restored; compress again before saving")
        folder = Path(source) if source is not None else _source_folder(self.original)
        if folder is None:
            raise InvalidRecipeError(
                f"{self.recipe.short}: save() exports from the checkpoint files the model was loaded from, and this "
                "model was not loaded from a local folder; save the original with save_pretrained() and load it "
                "from there, or pass source=FOLDER"
            )
        return export_checkpoint(folder, self.record, path)


def _source_folder(model: torch.nn.Module) -> Path | None:
    """The local checkpoint folder `from_pretrained` read `model` from, if any."""
    name = str(getattr(model, "name_or_path", "") or "")
    folder = Path(name) if name else None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def _apply_physical(moe: Any, recipe: Recipe, record: Mapping[str, Any]) -> None:
    """Replay a record as physical removal / merging on `moe` (a copy)."""
    if recipe.kind == "prune":
        keep = {int(r["layer"]): [e for e in range(r["experts"]) if e not in r["removed"]] for r in record["layers"]}
        moe.remove(keep)
    else:
        groups = {int(r["layer"]): r["groups"] for r in record["layers"]}
        weights = {int(r["layer"]): r["weights"] for r in record["layers"]}
        moe.merge(groups, weights, merge_router=recipe.option("router") == "merge")


# ----------------------------------------------------------------------------------------------------
# compress
# ----------------------------------------------------------------------------------------------------
def _needs_stats(recipe: Recipe) -> bool:
    if recipe.kind == "prune":
        return recipe.method != "random"
    return recipe.similarity in ("cka", "cosine") or recipe.weighting != "uniform" or recipe.option("router") == "keep"


def _layout(moe: Any) -> tuple[list[int], list[int], list[int]]:
    layers = [int(b.layer) for b in moe.blocks]
    experts = [int(b.num_experts) for b in moe.blocks]
    top_k = [int(b.top_k) for b in moe.blocks]
    return layers, experts, top_k


def _check_amounts(recipe: Recipe, experts: list[int], top_k: list[int], layers: list[int]) -> list[int]:
    """Experts to remove per layer; raises when fewer than top-k would be left or nothing would change."""
    removals = []
    for layer, e, k in zip(layers, experts, top_k, strict=True):
        if recipe.target is not None and recipe.target >= e:
            raise InvalidRecipeError(
                f"{recipe.short}: target {recipe.target} experts is not below layer {layer}'s {e} experts; "
                f"use a count in {k}..{e - 1} or a ratio"
            )
        n = recipe.experts_to_remove(e)
        if e - n < k:
            raise InvalidRecipeError(
                f"{recipe.short}: layer {layer} would keep {e - n} of {e} experts, fewer than top_k={k}; "
                f"keep at least {k} (ratio <= {(e - k) / e:.3f})"
            )
        removals.append(n)
    total = sum(removals) if recipe.ratio is None else int(recipe.ratio * sum(experts) + 0.5)
    if (recipe.option("scope") == "layer" and not any(removals)) or total == 0:
        warnings.warn(
            f"{recipe.short} removes no expert from layers of {sorted(set(experts))} experts (ratio rounds to 0); "
            "the variant equals the original. Use a larger ratio or scope=global",
            stacklevel=3,
        )
    return removals


def _prune(
    model: torch.nn.Module, moe: Any, recipe: Recipe, stats: Any, calibration: CalibrationSet | None
) -> tuple[dict[int, list[int]], torch.Tensor | None, list[dict[str, list[int]]]]:
    """Rows (stats order) -> experts to drop, the last scores used, and per-round drops if iterative."""
    layers, experts, top_k = _layout(moe)
    removals = _check_amounts(recipe, experts, top_k, layers)
    seed = recipe.option("seed")
    scope = recipe.option("scope")
    rounds = recipe.option("rounds") if recipe.option("schedule") == "iterative" else 1
    total = sum(removals) if recipe.ratio is None else int(recipe.ratio * sum(experts) + 0.5)
    per_round_layer = [selection.round_schedule(n, rounds) for n in removals]
    per_round_total = selection.round_schedule(total, rounds)
    rounds = max(len(per_round_total), max(map(len, per_round_layer)))
    drop: dict[int, list[int]] = {row: [] for row in range(len(layers))}
    history: list[dict[str, list[int]]] = []
    scores = None
    for r in range(rounds):
        if r > 0:  # re-estimate on the model with the experts dropped so far masked
            if calibration is None or stats is None:
                pass  # random scores need no re-estimation
            else:
                handle = moe.mask({layers[row]: d for row, d in drop.items() if d})
                try:
                    stats = collect_stats(model, calibration)
                finally:
                    handle.restore()
        scores = (
            criteria.score(recipe.method, stats, seed=seed)
            if stats is not None
            else criteria.random_scores(_Shape(len(layers), max(experts)), seed=seed)
        )
        if scope == "global":
            n = per_round_total[r] if r < len(per_round_total) else 0
            new = selection.select_global(scores, n, min_keep=top_k, already=drop, num_experts=experts)
        else:
            counts = [p[r] if r < len(p) else 0 for p in per_round_layer]
            new = selection.select_layerwise(
                scores,
                counts,
                min_keep=top_k,
                already=drop,
                num_experts=experts,
                expert_groups=[int(getattr(b, "n_group", 1) or 1) for b in moe.blocks],
                labels=layers,
            )
        history.append({str(layers[row]): sorted(set(new[row]) - set(drop[row])) for row in new})
        drop = new
    return drop, scores, history if rounds > 1 else []


class _Shape:
    """Stand-in statistics for the random criterion (it only needs the [L, E] shape)."""

    def __init__(self, layers: int, experts: int) -> None:
        self.counts = torch.zeros(layers, experts, dtype=torch.float64)


def _merge_plan(
    moe: Any, recipe: Recipe, stats: Any
) -> tuple[dict[int, list[list[int]]], dict[int, list[list[float]]]]:
    """Rows (stats order) -> survivor-first groups and their coefficients."""
    layers, experts, top_k = _layout(moe)
    removals = _check_amounts(recipe, experts, top_k, layers)
    groups: dict[int, list[list[int]]] = {}
    weights: dict[int, list[list[float]]] = {}
    for row, block in enumerate(moe.blocks):
        outputs = None
        if recipe.similarity in ("cka", "cosine"):
            outputs = stats.expert_outputs[row]
        sim = similarity_matrix(
            str(recipe.similarity), outputs=outputs, experts=block.experts, num_experts=experts[row]
        )
        found = _group_within(
            sim, experts[row] - removals[row], int(getattr(block, "n_group", 1) or 1), recipe, block.layer
        )
        counts = stats.counts[row] if stats is not None else torch.zeros(experts[row])
        groups[row], weights[row] = plan_merge(found, counts, str(recipe.weighting))
    return groups, weights


def _group_within(sim: torch.Tensor, n_groups: int, expert_groups: int, recipe: Recipe, layer: int) -> list[list[int]]:
    """Group experts; for group-limited routers (n_group > 1) only within each expert group, the same
    number of merged experts per group, so the router's group structure survives."""
    algorithm, seed = recipe.option("grouping"), recipe.option("seed")
    if expert_groups <= 1:
        return group_experts(sim, n_groups, algorithm=algorithm, seed=seed)
    experts = sim.shape[0]
    if n_groups % expert_groups or experts % expert_groups:
        raise InvalidRecipeError(
            f"layer {layer}: the router selects among {expert_groups} expert groups, so the {n_groups} experts "
            f"left after merging must split evenly across groups; use a multiple of {expert_groups}"
        )
    size = experts // expert_groups
    out: list[list[int]] = []
    for g in range(expert_groups):
        members = list(range(g * size, (g + 1) * size))
        sub = sim[g * size : (g + 1) * size, g * size : (g + 1) * size]
        for cluster in group_experts(sub, n_groups // expert_groups, algorithm=algorithm, seed=seed):
            out.append([members[i] for i in cluster])
    return sorted(out, key=lambda c: c[0])


def _make_record(
    model: torch.nn.Module | None, moe: Any, recipe: Recipe, stats: Any, calibration: CalibrationSet | None
) -> dict[str, Any]:
    """The plan: per layer the experts removed and kept (and merge groups with coefficients)."""
    layers, experts, _ = _layout(moe)
    rows: list[dict[str, Any]] = []
    if recipe.kind == "prune":
        drop_rows, scores, history = _prune(model, moe, recipe, stats, calibration)
        for row, layer in enumerate(layers):
            rows.append(
                {
                    "layer": layer,
                    "experts": experts[row],
                    "removed": sorted(drop_rows[row]),
                    "kept": [e for e in range(experts[row]) if e not in drop_rows[row]],
                    "scores": [round(float(x), 6) for x in scores[row][: experts[row]]]
                    if scores is not None
                    else None,
                }
            )
    else:
        history = []
        g_rows, w_rows = _merge_plan(moe, recipe, stats)
        for row, layer in enumerate(layers):
            survivors = [g[0] for g in g_rows[row]]
            rows.append(
                {
                    "layer": layer,
                    "experts": experts[row],
                    "removed": sorted(e for g in g_rows[row] for e in g[1:]),
                    "kept": sorted(survivors),
                    "groups": g_rows[row],
                    "weights": [[float(a) for a in w] for w in w_rows[row]],
                }
            )
    record = {
        "recipe": recipe.short,
        "hash": recipe.hash,
        "method": recipe.method,
        "kind": recipe.kind,
        "amount": recipe.amount,
        "options": recipe.to_dict()["options"],
        "calibration": calibration.describe() if calibration is not None else None,
        "tokens": int(getattr(stats, "tokens", 0) or 0) if stats is not None else 0,
        "layers": rows,
    }
    if history:
        record["rounds"] = history
    return record


@dataclass
class _FileBlock:
    layer: int
    num_experts: int
    top_k: int
    n_group: int


class _FileLayout:
    """The MoE layout read from a checkpoint's files and config (what a data-free plan needs)."""

    def __init__(self, folder: Path) -> None:
        from evalsuite.compression.export import checkpoint_layout, config_top_k, text_config

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        top_k = config_top_k(config)
        n_group = int(text_config(config).get("n_group") or 1)
        self.blocks = [_FileBlock(layer, fb.experts, top_k, n_group) for layer, fb in checkpoint_layout(folder).items()]
        self.blocks.sort(key=lambda b: b.layer)


def data_free(recipe: Recipe | str) -> bool:
    """Whether `plan_from_files` can plan the recipe (it needs neither statistics nor expert weights)."""
    recipe = parse_recipe(recipe)
    return recipe.kind == "prune" and not _needs_stats(recipe)


def plan_from_files(folder: str | Path, recipe: Recipe | str) -> dict[str, Any]:
    """The record of a data-free recipe (random pruning) from the checkpoint's files: no model in memory."""
    recipe = parse_recipe(recipe)
    if not data_free(recipe):
        raise InvalidRecipeError(
            f"{recipe.short} needs the model itself (routing statistics or expert weights); only random pruning "
            "is planned from the files alone"
        )
    return _make_record(None, _FileLayout(Path(folder)), recipe, None, None)


def compress(
    model: torch.nn.Module,
    tokenizer: Any,
    recipe: Recipe | str,
    *,
    stats: Any = None,
    calibration: CalibrationSet | None = None,
    cache: StatsCache | None = None,
) -> CompressionResult:
    """Apply `recipe` to `model` and return the variant with its record.

    `stats` (a RoutingStats) skips the statistics pass; otherwise the calibration set named by the recipe
    is tokenised (or `calibration` is used) and statistics come from `cache` (default: a module-level
    LRU cache shared by all recipes). Raises InvalidRecipeError for recipes this model cannot take."""
    from evalsuite.model.moe import MoEModel

    recipe = parse_recipe(recipe)  # validates Recipe values built directly, too
    moe = MoEModel(model)
    mode = recipe.option("apply")

    needs = _needs_stats(recipe)
    iterative = needs and recipe.option("schedule") == "iterative"
    if needs and (stats is None or iterative) and calibration is None:
        # iterative schedules re-estimate on the partly pruned model, so they need the data itself
        if tokenizer is None:
            raise InvalidRecipeError(f"{recipe.short} needs calibration data, so pass a tokenizer")
        calibration = calibration_batches(recipe.calibration, tokenizer, token_budget=recipe.option("tokens"))
    if needs and stats is None:
        stats = (cache or default_stats_cache).get_or_collect(model, calibration, output_samples(recipe))
    record = _make_record(model, moe, recipe, stats, calibration)
    rows = record["layers"]
    drops = {r["layer"]: r["removed"] for r in rows}
    plan_groups = {r["layer"]: r.get("groups") for r in rows}
    plan_weights = {r["layer"]: r.get("weights") for r in rows}

    handles: list[Any] = []
    active = {layer: d for layer, d in drops.items() if d}
    try:
        if mode == "remove":
            if _ACTIVE.get(id(model)):
                raise InvalidRecipeError(
                    f"{recipe.short}: apply=remove copies the model, but in-place variant(s) are active on it "
                    "(their hooks would not carry over); restore them first"
                )
            target = copy.deepcopy(model)
            _apply_physical(MoEModel(target), recipe, record)
            result_model, in_place = target, False
        else:
            result_model, in_place = model, True
            if recipe.kind == "merge":
                merger = InPlaceMerge()
                handles.append(merger)
                for block in moe.blocks:
                    layer = int(block.layer)
                    weights = [[float(a) for a in w] for w in plan_weights[layer]]
                    targets = merge_targets(block, merge_router=recipe.option("router") == "merge")
                    merger.apply(targets, plan_groups[layer], weights)
            if active:
                if mode in ("mask",):
                    handles.append(moe.mask(active))
                elif mode == "soft":
                    for layer, d in active.items():
                        handles.append(moe.scale_router_rows(layer, d, recipe.option("factor")))
                elif mode == "zero":
                    for layer, d in active.items():
                        handles.append(moe.zero_experts(layer, d))
    except BaseException:
        for handle in reversed(handles):
            handle.restore()
        raise
    if in_place:
        _activate(model, recipe.hash)
    return CompressionResult(
        model=result_model,
        original=model,
        recipe=recipe,
        record=record,
        tokenizer=tokenizer,
        handles=handles,
        stats=stats,
        in_place=in_place,
    )
