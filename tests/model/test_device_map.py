"""A model dispatched by accelerate (some layers on CPU, some offloaded to disk) behaves as a plain load:
the same greedy tokens, the same masked generation, the same routing statistics."""

from __future__ import annotations

import pytest
import torch

from evalsuite.model.generation import generate_greedy
from evalsuite.model.loading import load_model
from evalsuite.model.moe import MoEModel
from evalsuite.model.routing import collect_routing_stats
from evalsuite.model.tiny import build_tiny_moe

PROMPTS = ["the cat sat on", "a b c d e", "hello world, how"]


def _greedy(loaded) -> list[list[int]]:
    ids = [loaded.tokenizer(p)["input_ids"] for p in PROMPTS]
    return [g.token_ids for g in generate_greedy(loaded.model, loaded.tokenizer, ids, max_new_tokens=12)]


def _stats(loaded) -> torch.Tensor:
    batch = loaded.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    return collect_routing_stats(loaded.model, [(batch["input_ids"], batch["attention_mask"])]).frequency


@pytest.fixture(scope="module")
def plain_and_offloaded(tmp_path_factory: pytest.TempPathFactory):
    path = build_tiny_moe(tmp_path_factory.mktemp("six-layers"), layers=6)
    plain = load_model(path)
    size = sum(p.numel() * p.element_size() for p in plain.model.parameters())
    offload = tmp_path_factory.mktemp("offload")
    # room for 70% of the weights on "cpu" (accelerate keeps a layer's worth free for loading offloaded
    # ones): the first layers stay in memory, the last ones run from disk
    dispatched = load_model(path, device_map="auto", max_memory={"cpu": int(size * 0.7)}, offload_folder=offload)
    return plain, dispatched, offload


def test_layers_really_are_split_between_cpu_and_disk(plain_and_offloaded):
    _, dispatched, offload = plain_and_offloaded
    places = set(dispatched.model.hf_device_map.values())
    assert {"cpu", "disk"} <= places, dispatched.model.hf_device_map
    assert any(offload.iterdir())  # offloaded weights were written there


def test_same_greedy_tokens_masks_and_routing_statistics(plain_and_offloaded):
    plain, dispatched, _ = plain_and_offloaded
    assert _greedy(dispatched) == _greedy(plain)
    assert torch.equal(_stats(dispatched), _stats(plain))
    drop = {layer: [0, 1, 2] for layer in MoEModel(plain.model).layers}
    with MoEModel(plain.model).mask(drop), MoEModel(dispatched.model).mask(drop):
        masked_plain, masked_dispatched = _greedy(plain), _greedy(dispatched)
        stats_plain, stats_dispatched = _stats(plain), _stats(dispatched)
    assert masked_dispatched == masked_plain
    assert torch.equal(stats_dispatched, stats_plain)
    assert stats_plain[:, :3].sum() == 0 and stats_plain.sum() > 0  # the mask did act: no token routed there
    assert _greedy(dispatched) == _greedy(plain)  # and was undone on both
