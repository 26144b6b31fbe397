"""Recipe parsing, canonical short form, hashing and validation messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalsuite.compression.recipe import (
    MERGING_METHODS,
    PRUNING_METHODS,
    Recipe,
    available_methods,
    parse_recipe,
)
from evalsuite.errors import InvalidRecipeError


def test_ratio_and_target_forms() -> None:
    r = parse_recipe("reap:0.25")
    assert (r.method, r.ratio, r.target, r.kind) == ("reap", 0.25, None, "prune")
    m = parse_recipe("merge-cka-uniform:6")
    assert (m.method, m.ratio, m.target, m.kind) == ("merge-cka-uniform", None, 6, "merge")
    assert (m.similarity, m.weighting) == ("cka", "uniform")
    assert r.experts_to_remove(8) == 2 and m.experts_to_remove(8) == 2


def test_short_form_is_canonical_and_round_trips() -> None:
    r = parse_recipe(" REAP:0.250@code, schedule=iterative ,scope=global,apply=mask")
    assert r.short == "reap:0.25@code,schedule=iterative,scope=global"
    assert parse_recipe(r.short) == r
    assert r.hash == parse_recipe(r.short).hash
    # Defaults spelled out or left out are the same recipe.
    assert parse_recipe("reap:0.25,apply=mask,scope=layer") == parse_recipe("reap:0.25")
    assert parse_recipe("reap:0.25,apply=mask").hash == parse_recipe("reap:0.25").hash


def test_aliases_resolve_to_canonical_names() -> None:
    assert parse_recipe("freq:0.5") == parse_recipe("frequency:0.5")
    assert parse_recipe("freq:0.5").short == "frequency:0.5"
    assert parse_recipe("soft_count:0.5").method == "soft-count"
    assert parse_recipe("Merge_CKA_Uniform:6").method == "merge-cka-uniform"


def test_hash_distinguishes_recipes() -> None:
    hashes = {
        parse_recipe(t).hash
        for t in [
            "reap:0.25",
            "reap:0.5",
            "reap:6",
            "ean:0.25",
            "reap:0.25@en",
            "reap:0.25,apply=remove",
            "merge-cka-uniform:6,grouping=hc",
        ]
    }
    assert len(hashes) == 7
    assert all(len(h) == 12 for h in hashes)


def test_from_mapping() -> None:
    r = Recipe.from_mapping({"method": "reap", "ratio": 0.5, "calibration": "code", "scope": "global"})
    assert r == parse_recipe("reap:0.5@code,scope=global")
    assert Recipe.from_mapping({"recipe": "reap:0.5", "apply": "soft"}) == parse_recipe("reap:0.5,apply=soft")
    assert Recipe.from_mapping({"method": "merge-weights-freq", "target": 4}).short == "merge-weights-freq:4"
    with pytest.raises(InvalidRecipeError, match="valid keys"):
        Recipe.from_mapping({"method": "reap", "ratio": 0.5, "ration": 1})
    with pytest.raises(InvalidRecipeError, match="exactly one"):
        Recipe.from_mapping({"method": "reap", "ratio": 0.5, "target": 4})


def test_available_methods() -> None:
    methods = available_methods()
    assert set(PRUNING_METHODS) <= set(methods) and set(MERGING_METHODS) <= set(methods)
    for needed in [
        "frequency",
        "soft-count",
        "gate-sum",
        "ean",
        "reap",
        "importance",
        "random",
        "merge-cka-uniform",
        "merge-cosine-freq",
        "merge-weights-max",
        "merge-surrogate-uniform",
    ]:
        assert needed in methods


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("reep:0.25", "valid methods: frequency"),
        ("reap:1.5", "outside (0, 1)"),
        ("reap:1.0", "outside (0, 1)"),
        ("reap:-0.1", "outside (0, 1)"),
        ("reap:0", "neither a ratio"),
        ("reap:abc", "not a number"),
        ("reap:nan", "not finite"),
        ("reap:inf", "not finite"),
        ("reap", "has no amount"),
        ("reap:0.25,scope=everywhere", "choose one of layer, global"),
        ("reap:0.25,grouping=hc", "does not apply to prune"),
        ("reap:0.25,colour=red", "valid options"),
        ("reap:0.25@nosuchset", "named sets: en"),
        ("reap:0.25@/no/such/file.jsonl", "does not exist"),
        ("reap:0.25,scope=global,apply=remove", "one expert count"),
        ("merge-cka-uniform:6,apply=soft", "merging recipes apply by"),
        ("reap:0.25,rounds=x", "must be int"),
        ("", "empty recipe"),
    ],
)
def test_invalid_recipes_name_the_valid_choices(text: str, needle: str) -> None:
    with pytest.raises(InvalidRecipeError) as info:
        parse_recipe(text)
    assert needle in str(info.value)


def test_recipe_values_built_directly_are_validated() -> None:
    with pytest.raises(InvalidRecipeError, match="valid methods"):
        parse_recipe(Recipe(method="bogus", ratio=0.5))
    assert parse_recipe(Recipe(method="reap", ratio=0.5, options={"apply": "mask"})) == parse_recipe("reap:0.5")


def test_local_calibration_file(tmp_path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text("hello world\n\nsecond paragraph")
    r = parse_recipe(f"ean:0.5@{path}")
    assert r.calibration == str(path)


@given(
    method=st.sampled_from(available_methods()),
    amount=st.one_of(st.integers(1, 64).map(str), st.floats(0.01, 0.99).map(lambda x: f"{x:.3f}")),
    options=st.dictionaries(st.sampled_from(["seed", "tokens"]), st.integers(1, 10_000), max_size=2),
)
def test_short_form_round_trip_property(method: str, amount: str, options: dict[str, int]) -> None:
    text = f"{method}:{amount}" + "".join(f",{k}={v}" for k, v in options.items())
    recipe = parse_recipe(text)
    again = parse_recipe(recipe.short)
    assert again == recipe and again.hash == recipe.hash and again.short == recipe.short
