"""compress() on a tiny random Qwen3-MoE: every method runs, variants restore exactly, masked == physical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("evalsuite.model.moe")
pytest.importorskip("evalsuite.model.routing")

from evalsuite.compression import (  # noqa: E402
    StatsCache,
    available_methods,
    calibration_batches,
    compress,
    dead_curve_model,
    parse_recipe,
    profile_model,
)
from evalsuite.errors import InvalidRecipeError  # noqa: E402
from evalsuite.model.loading import load_model  # noqa: E402


@pytest.fixture(scope="module")
def loaded(tiny_moe_path: Path):
    return load_model(tiny_moe_path)


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calib") / "calib.jsonl"
    texts = [f"the quick brown fox {i} jumps over the lazy dog; el perro {i * 7} duerme." for i in range(24)]
    path.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n")
    return path


@pytest.fixture(scope="module")
def calib(loaded, calib_file: Path):
    return calibration_batches(str(calib_file), loaded.tokenizer, token_budget=600, seq_len=64)


@pytest.fixture(scope="module")
def probe(loaded) -> torch.Tensor:
    return loaded.tokenizer(["hello world, the fox. привет 我"], return_tensors="pt")["input_ids"]


@torch.no_grad()
def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits.clone()


@pytest.mark.parametrize("method", available_methods())
def test_every_method_runs_records_and_restores_exactly(loaded, calib, probe, method: str) -> None:
    model = loaded.model
    before = _logits(model, probe)
    ptrs = [p.data_ptr() for p in model.parameters()]
    amount = "0.25" if not method.startswith("merge-") else "5"
    recipe = parse_recipe(f"{method}:{amount}")
    with compress(model, loaded.tokenizer, recipe, calibration=calib) as result:
        assert result.model is model  # in place: no copy
        assert [p.data_ptr() for p in model.parameters()] == ptrs
        during = _logits(model, probe)
        record = json.loads(json.dumps(result.record))
        assert record["recipe"] == recipe.short and record["hash"] == recipe.hash
        assert [len(r["removed"]) for r in record["layers"]] == [2, 2] if amount == "0.25" else [3, 3]
        if recipe.kind == "merge":
            for row in record["layers"]:
                assert sorted(e for g in row["groups"] for e in g) == list(range(8))
                assert all(abs(sum(w) - 1) < 1e-6 for w in row["weights"])
    assert not torch.equal(before, during)
    assert torch.equal(_logits(model, probe), before)


@pytest.mark.parametrize(
    "text",
    [
        "reap:0.25",
        "frequency:0.5",
        "merge-cka-uniform:5",
        "merge-weights-freq:4,grouping=hc",
        "merge-cosine-uniform:6,router=keep",
        "merge-surrogate-max:5,grouping=spectral",
    ],
)
def test_masked_equals_physical(loaded, calib, probe, text: str) -> None:
    model = loaded.model
    cache = StatsCache()
    with compress(model, loaded.tokenizer, text, calibration=calib, cache=cache) as masked:
        masked_logits = _logits(model, probe)
        removed = masked.removed
    physical_recipe = parse_recipe(text).with_options(apply="remove")
    result = compress(model, loaded.tokenizer, physical_recipe, calibration=calib, cache=cache)
    assert result.model is not model and result.removed == removed
    torch.testing.assert_close(_logits(result.model, probe), masked_logits, atol=2e-5, rtol=1e-4)
    assert cache.misses == 1 and cache.hits == 1  # one statistics pass for both recipes
    result.restore()
    assert result.model is model


def test_masked_variant_costs_under_5_percent(loaded, calib) -> None:
    model = loaded.model
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    with compress(model, loaded.tokenizer, "reap:0.5", calibration=calib) as result:
        assert result.overhead_bytes < 0.05 * size
    with compress(model, loaded.tokenizer, "merge-cka-uniform:6", calibration=calib) as merged:
        # a merge keeps the old rows of the survivors it overwrote: 2 groups x 2 layers here
        assert merged.overhead_bytes < 0.25 * size


@pytest.mark.parametrize("mode", ["soft", "zero"])
def test_soft_and_zero_modes(loaded, calib, probe, mode: str) -> None:
    model = loaded.model
    before = _logits(model, probe)
    with compress(model, loaded.tokenizer, f"gate-sum:0.25,apply={mode}", calibration=calib):
        assert not torch.equal(_logits(model, probe), before)
    assert torch.equal(_logits(model, probe), before)


def test_global_and_iterative_selection(loaded, calib) -> None:
    model = loaded.model
    with compress(model, loaded.tokenizer, "ean:0.25,scope=global", calibration=calib) as result:
        removed = [len(r["removed"]) for r in result.record["layers"]]
        assert sum(removed) == 4 and all(8 - n >= 2 for n in removed)
    with compress(model, loaded.tokenizer, "reap:0.5,schedule=iterative,rounds=2", calibration=calib) as result:
        rounds = result.record["rounds"]
        assert len(rounds) == 2 and all(len(rounds[0][k]) == 2 for k in rounds[0])
        assert [len(r["removed"]) for r in result.record["layers"]] == [4, 4]


def test_invalid_on_this_model(loaded, calib) -> None:
    with pytest.raises(InvalidRecipeError, match="fewer than top_k=2"):
        compress(loaded.model, loaded.tokenizer, "reap:1", calibration=calib)
    with pytest.raises(InvalidRecipeError, match="not below"):
        compress(loaded.model, loaded.tokenizer, "reap:8", calibration=calib)
    with pytest.raises(InvalidRecipeError, match="fewer than top_k"):
        compress(loaded.model, loaded.tokenizer, "merge-cka-uniform:0.9", calibration=calib)


def test_export_round_trips(loaded, calib, probe, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = loaded.model
    with compress(model, loaded.tokenizer, "merge-cka-freq:6", calibration=calib) as result:
        expected = _logits(model, probe)
        folder = result.save(tmp_path / "merged")
        assert torch.equal(_logits(model, probe), expected)  # saving leaves the live variant as it was
    reloaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert reloaded.config.num_experts == 6
    torch.testing.assert_close(_logits(reloaded, probe), expected, atol=2e-5, rtol=1e-4)
    with compress(model, loaded.tokenizer, "reap:0.25,apply=soft,factor=0.2", calibration=calib) as result:
        expected = _logits(model, probe)
        folder = result.save(tmp_path / "soft")
    soft = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert soft.config.num_experts == 8
    torch.testing.assert_close(_logits(soft, probe), expected, atol=1e-6, rtol=1e-6)
    with compress(model, loaded.tokenizer, "reap:0.25,scope=global", calibration=calib) as result:
        if len({len(r["removed"]) for r in result.record["layers"]}) > 1:
            with pytest.raises(InvalidRecipeError, match="one expert count"):
                result.save(tmp_path / "global")


def test_profile_and_dead_curve(loaded, calib_file: Path) -> None:
    prof = profile_model(loaded.model, loaded.tokenizer, str(calib_file), token_budget=400)
    assert len(prof.layers) == 2 and 0 <= prof.summary()["gini"] <= 1
    curve = dead_curve_model(
        loaded.model,
        loaded.tokenizer,
        str(calib_file),
        prompt_counts=(1, 5, 20),
        dead_threshold=0.0,
        tokens_per_prompt=16,
    )
    dead = [row["dead"] for row in curve]
    assert dead == sorted(dead, reverse=True)  # more prompts never reveal more dead experts


def test_stats_cache_reuses_one_pass_and_notices_changes(loaded, calib) -> None:
    model = loaded.model
    cache = StatsCache()
    with compress(model, loaded.tokenizer, "reap:0.25", calibration=calib, cache=cache) as result:
        assert result.stats.expert_outputs == []  # lean: pruning criteria never keep expert outputs
    with compress(model, loaded.tokenizer, "merge-cka-uniform:6,samples=64", calibration=calib, cache=cache) as result:
        assert result.stats.expert_outputs[0].shape[1] == 64  # a pass with outputs, bounded by the recipe
    for text in ("ean:0.5", "soft-count:0.25,apply=soft", "merge-cka-uniform:6,samples=64"):
        with compress(model, loaded.tokenizer, text, calibration=calib, cache=cache):
            pass
    assert (cache.misses, cache.hits) == (2, 3)  # the pass with outputs serves the criteria that need none
    # statistics of a masked model are not those of the original: the nested recipe needs its own pass
    with (
        compress(model, loaded.tokenizer, "reap:0.25", calibration=calib, cache=cache),
        compress(model, loaded.tokenizer, "ean:0.25", calibration=calib, cache=cache),
    ):
        pass
    assert cache.misses == 3
    router = next(p for n, p in model.named_parameters() if n.endswith("gate.weight"))
    old = router[0, 0].item()
    with torch.no_grad():
        router[0, 0] = old + 1.0
    try:
        with compress(model, loaded.tokenizer, "reap:0.25", calibration=calib, cache=cache):
            pass
        assert cache.misses == 4  # weights changed in place: a new pass
    finally:
        with torch.no_grad():
            router[0, 0] = old


def test_group_limited_router_deepseek_v3(deepseek_v3: torch.nn.Module) -> None:
    """Bias-selected, group-limited routing: selection drops evenly per expert group, masked == physical."""
    from evalsuite.compression.calibration import CalibrationSet

    model = deepseek_v3
    generator = torch.Generator().manual_seed(0)
    calib = CalibrationSet("random", [torch.randint(0, 64, (32,), generator=generator).tolist() for _ in range(8)], 0)
    ids = torch.randint(0, 64, (1, 20), generator=generator)
    before = _logits(model, ids)
    for text in ["reap:0.5", "merge-cka-uniform:4"]:
        with compress(model, None, text, calibration=calib) as result:
            masked = _logits(model, ids)
            for row in result.record["layers"]:  # two expert groups of 4: two experts leave each
                assert sum(e < 4 for e in row["removed"]) == 2
        physical = compress(model, None, parse_recipe(text).with_options(apply="remove"), calibration=calib)
        assert not torch.equal(masked, before)
        torch.testing.assert_close(_logits(physical.model, ids), masked, atol=2e-5, rtol=1e-4)
        assert torch.equal(_logits(model, ids), before)
    with pytest.raises(InvalidRecipeError, match="layer 1: the router selects among 2 expert groups"):
        compress(model, None, "reap:0.375", calibration=calib)


def test_state_key_sums_in_chunks_and_rereads_only_edited_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsuite.compression import apply

    monkeypatch.setattr(apply, "_CHECKSUM_CHUNK", 7)  # many chunks: the sum must still be the whole tensor's
    weight = torch.nn.Parameter(torch.randn(10, 10, dtype=torch.bfloat16))
    first = apply._checksum(weight)
    assert first == pytest.approx(float(weight.detach().double().sum()), rel=1e-12)
    weight.data[0, 0] += 1  # `.data` bypasses the version counter: the memoised sum is served (not re-read)
    assert apply._checksum(weight) == first
    with torch.no_grad():
        weight[1, 1] += 1  # a tracked in-place edit is noticed
    assert apply._checksum(weight) == pytest.approx(float(weight.detach().double().sum()), rel=1e-12) != first


def test_recipe_calibrated_on_a_datasets_folder_and_a_parquet_file(loaded, tmp_path: Path, write_all_formats) -> None:
    """End to end: the same texts as JSONL, Parquet and a save_to_disk folder give the same plan."""
    rows = [{"text": f"the quick brown fox {i} jumps over the lazy dog; el perro {i * 7} duerme."} for i in range(24)]
    paths = write_all_formats(tmp_path, rows)
    records = {}
    for fmt in ("jsonl", "parquet", "saved"):
        with compress(loaded.model, loaded.tokenizer, f"reap:0.25@{paths[fmt]},tokens=600") as result:
            records[fmt] = result.record
    assert records["saved"]["calibration"]["name"] == str(paths["saved"])
    assert records["saved"]["calibration"]["tokens"] == 600
    fingerprints = {r["calibration"]["fingerprint"] for r in records.values()}
    removed = {json.dumps([r["removed"] for r in rec["layers"]]) for rec in records.values()}
    assert len(fingerprints) == 1 and len(removed) == 1


def test_profile_names_moe_layers_by_decoder_layer(deepseek_v3: torch.nn.Module) -> None:
    from evalsuite.model.routing import collect_routing_stats

    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    stats = collect_routing_stats(deepseek_v3, [(ids, None)])
    profile = profile_model(deepseek_v3, None, stats=stats)
    assert [lp.layer for lp in profile.layers] == [1, 2]  # layer 0 is dense: rows are not layer numbers
    assert "layer  1:" in profile.format() and "layer  0:" not in profile.format()
