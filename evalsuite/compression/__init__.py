"""Expert compression for MoE models: calibration, pruning criteria, grouping/merging, recipes.

Public API (stable; extend, don't rename):

    parse_recipe(text) -> Recipe
        Short form ``METHOD:AMOUNT[@CALIBRATION][,KEY=VALUE...]``, e.g. ``reap:0.25``,
        ``merge-cka-uniform:6``, ``ean:0.5@code,scope=global,schedule=iterative``. AMOUNT is a ratio of
        experts to remove (0 < r < 1) or a count of experts to keep per layer. Invalid recipes raise
        evalsuite.errors.InvalidRecipeError listing the valid choices.
    Recipe.short / Recipe.hash / Recipe.from_mapping(dict) / Recipe.to_dict()
        Canonical short form (pytest ids, CLI), 12-hex stable hash, construction from a pyproject table.
    available_methods() -> list[str]; describe_methods() -> {name: description}
    calibration_batches(name_or_path, tokenizer, *, token_budget, seq_len, batch_size, num_prompts, ...)
        -> CalibrationSet (iterable of (input_ids, attention_mask) batches; .fingerprint, .tokens).
        Named sets: available_calibration_sets() (en, ..., code, arithmetic, translation, english,
        diverse); or any local .jsonl / .txt file.
    compress(model, tokenizer, recipe, *, stats=None, calibration=None, cache=None) -> CompressionResult
        .model (the variant), .record (JSON-ready: recipe, hash, calibration, per-layer removed experts
        and merge groups), .restore() (exact undo for mask/soft/zero; for apply=remove the variant is a
        copy and restore() releases it), usable as a context manager; .save(path) exports a standard
        checkpoint from the files the model was loaded from (streamed tensor by tensor, source dtype,
        every other file byte-identical; see compression/export.py). Statistics passes are cached per
        (model state, calibration tokens) in `default_stats_cache`, so a matrix of recipes costs one
        pass per calibration set.
    data_free(recipe) / plan_from_files(folder, recipe) -> record
        Random pruning is planned from the checkpoint's files alone (no model in memory);
        export.export_checkpoint(folder, record, out) applies any record to a checkpoint folder.
    profile_model(model, tokenizer, calibration) -> RoutingProfile (usage, Gini, entropy ratio,
        top-10 share, dead experts with threshold); dead_curve_model(...) -> dead experts vs #prompts.

Recipe options: scope=layer|global, schedule=oneshot|iterative, rounds=N, apply=mask|soft|zero|remove,
factor=F (soft), grouping=greedy|hc|spectral, router=merge|keep, seed=N, tokens=N (calibration budget),
samples=N (tokens of expert outputs kept for cka/cosine grouping; default 512).
"""

from evalsuite.compression.apply import (
    CompressionResult,
    StatsCache,
    collect_stats,
    compress,
    data_free,
    default_stats_cache,
    plan_from_files,
)
from evalsuite.compression.calibration import (
    CalibrationSet,
    available_calibration_sets,
    calibration_batches,
    heldout_split,
    is_calibration_record,
)
from evalsuite.compression.profile import RoutingProfile, dead_curve_model, profile_model, routing_profile
from evalsuite.compression.recipe import Recipe, available_methods, describe_methods, parse_recipe

__all__ = [
    "CalibrationSet",
    "CompressionResult",
    "Recipe",
    "RoutingProfile",
    "StatsCache",
    "available_calibration_sets",
    "available_methods",
    "calibration_batches",
    "collect_stats",
    "compress",
    "data_free",
    "dead_curve_model",
    "default_stats_cache",
    "describe_methods",
    "heldout_split",
    "is_calibration_record",
    "parse_recipe",
    "plan_from_files",
    "profile_model",
    "routing_profile",
]
