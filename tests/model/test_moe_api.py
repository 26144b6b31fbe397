"""API behaviour of the MoE access layer beyond the per-architecture oracles (fast; two architectures)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_moe_conformance import E, K, _base_model, batch, fresh, logits  # noqa: E402

from evalsuite.errors import InvalidRecipeError  # noqa: E402
from evalsuite.model.moe import MoEModel, _bind_experts_args  # noqa: E402
from evalsuite.model.routing import capture_routing, collect_routing_stats  # noqa: E402


def test_selection_bias_is_pushed_down_not_just_the_logits() -> None:
    """DeepSeek-V3 routers pick top-k of sigmoid(logit) + bias: a masked logit alone leaves a large bias free
    to select the expert. The mask must push the bias down."""
    moe = fresh("deepseek_v3")
    with torch.no_grad():
        for b in moe.blocks:
            b.selection_bias.tensor[0] = 10.0  # expert 0 wins every token
    stats = collect_routing_stats(moe, [batch()], output_samples=0)
    assert (stats.counts[:, 0] == stats.tokens).all()
    with moe.mask({b.layer: [0] for b in moe.blocks}):
        stats = collect_routing_stats(moe, [batch()], output_samples=0)
        assert (stats.counts[:, 0] == 0).all()
    assert all(float(b.selection_bias.tensor[0]) == 10.0 for b in moe.blocks)


@pytest.mark.parametrize("arch", ["mixtral", "deepseek_v3"])
def test_bfloat16_masking_and_removal(arch: str) -> None:
    moe = MoEModel(copy.deepcopy(_base_model(arch)).to(torch.bfloat16))
    rule = moe.describe()[0]["routing_rule"]
    assert (
        rule
        == {
            "mixtral": "softmax, top-2, renormalised",
            "deepseek_v3": "sigmoid, top-2, renormalised, x2.5, selection bias e_score_correction_bias, "
            "2 expert groups, top-1 groups",
        }[arch]
    )
    keep = {b.layer: [0, 2, 3, 5, 6, 7] for b in moe.blocks}
    drop = {b.layer: [1, 4] for b in moe.blocks}
    with moe.mask(drop):
        stats = collect_routing_stats(moe, [batch()], output_samples=4)
        assert stats.counts[:, [1, 4]].sum() == 0
        assert stats.expert_outputs[0].dtype == torch.bfloat16  # samples stay in the model's dtype (half of fp32)
    moe.remove(keep)
    after = collect_routing_stats(moe, [batch()], output_samples=0)
    # the first MoE layer sees identical inputs, so it makes identical decisions; later layers see bf16
    # rounding differences (different expert counts, different summation order) and may flip near-ties
    assert torch.equal(after.counts[0, :6], stats.counts[0, keep[moe.blocks[0].layer]])
    assert torch.isfinite(logits(moe).float()).all()


def test_non_uniform_removal_works_in_memory_but_is_not_saveable(tmp_path: Path) -> None:
    moe = fresh("qwen3_moe")
    first, second = moe.blocks[0].layer, moe.blocks[1].layer
    moe.remove({first: [0, 1, 2], second: [0, 1, 2, 3, 4]})
    assert [b.num_experts for b in moe.blocks] == [3, 5]
    assert moe.model.config.num_experts == 5  # the config holds one count: the largest
    stats = collect_routing_stats(moe, [batch()], output_samples=0)
    assert stats.counts.shape == (2, 5) and stats.counts[0, 3:].sum() == 0
    with pytest.raises(InvalidRecipeError, match="different expert counts"):
        moe.save(tmp_path / "ckpt")
    assert not any(tmp_path.iterdir())


def test_save_replaces_an_existing_checkpoint_atomically(tmp_path: Path) -> None:
    moe = fresh("mixtral")
    target = tmp_path / "ckpt"
    moe.save(target)
    moe.remove({b.layer: list(range(6)) for b in moe.blocks})
    moe.save(target)
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(target).num_local_experts == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp folders left behind


def test_masks_are_visible_to_every_wrapper_and_survive_deepcopy() -> None:
    moe = fresh("mixtral")
    before = logits(moe)
    layer = moe.blocks[0].layer
    handle = moe.mask({layer: [0, 1]})
    masked = logits(moe)
    assert MoEModel(moe.model).masked() == {layer: [0, 1]}
    twin = MoEModel(copy.deepcopy(moe.model))
    assert twin.masked() == {layer: [0, 1]}
    assert torch.equal(logits(twin), masked)
    twin.clear_masks()
    assert twin.masked() == {} and torch.equal(logits(twin), before)
    handle.restore()
    handle.restore()  # idempotent
    assert torch.equal(logits(moe), before)


def test_live_soft_handles_block_structural_changes_until_committed() -> None:
    moe = fresh("olmoe")
    layer = moe.blocks[0].layer
    handle = moe.scale_router_rows(layer, [3], 0.5)
    with pytest.raises(InvalidRecipeError, match="handle"):
        moe.remove({layer: [0, 1, 2, 3]})
    handle.commit()
    moe.remove({layer: [0, 1, 2, 3]})
    assert moe.blocks[0].num_experts == 4


def test_merge_validation() -> None:
    moe = fresh("mixtral")
    layer = moe.blocks[0].layer
    with pytest.raises(InvalidRecipeError, match="duplicate"):
        moe.merge({layer: [[0, 1], [1, 2]]})
    with pytest.raises(InvalidRecipeError, match="weights"):
        moe.merge({layer: [[0, 1]]}, {layer: [[1.0]]})
    with pytest.raises(InvalidRecipeError, match="weights"):
        moe.merge({layer: [[0, 1]]}, {layer: [[-1.0, 0.5]]})
    with pytest.raises(InvalidRecipeError, match="top_k"):
        moe.merge({layer: [[0, 1, 2, 3, 4, 5, 6, 7]]})
    with pytest.raises(InvalidRecipeError, match="no MoE block"):
        moe.mask({99: [0]})
    assert [b.num_experts for b in moe.blocks] == [E, E]


def test_describe_is_json_friendly_and_accepts_loaded_models() -> None:
    class Loaded:  # what evalsuite.model.loading returns: a holder with .model
        model = _base_model("gpt_oss")

    moe = MoEModel(Loaded())
    rows = json.loads(json.dumps(moe.describe(), default=str))
    assert [r["layer"] for r in rows] == moe.layers
    assert rows[0]["experts"] == E and rows[0]["top_k"] == K
    assert "router logit bias" in rows[0]["routing_rule"]
    roles = {v["role"] for v in rows[0]["expert_tensors"].values()}
    assert roles == {"expert", "router"}


def test_expert_output_samples_are_uniform_deterministic_and_shared_across_layers() -> None:
    moe = MoEModel(_base_model("qwen3_moe"))
    batches = [batch(1), batch(2), batch(3)]
    a = collect_routing_stats(moe, batches, output_samples=10)
    b = collect_routing_stats(moe, batches, output_samples=10)
    assert all(torch.equal(x, y) for x, y in zip(a.expert_outputs, b.expert_outputs, strict=True))
    assert a.expert_outputs[0].shape == (E, 10, 32)
    everything = collect_routing_stats(moe, batches, output_samples=10_000)
    assert everything.expert_outputs[0].shape[1] == everything.tokens
    # the sampled rows of layer 0 are a subset of the full set (same tokens, same expert outputs)
    full = everything.expert_outputs[0][0]
    for row in a.expert_outputs[0][0]:
        assert (full - row).abs().amax(dim=-1).min() < 1e-6


def test_experts_arguments_are_read_by_name_too() -> None:
    block = MoEModel(_base_model("mixtral")).blocks[0]
    h, i, w = torch.zeros(2, 32), torch.zeros(2, K, dtype=torch.long), torch.ones(2, K)
    assert _bind_experts_args(block.experts, (h,), {"top_k_index": i, "top_k_weights": w}) == (h, i, w)
    out = block.experts(hidden_states=h, top_k_index=i, top_k_weights=w)
    with capture_routing(block) as cap:
        block.experts(hidden_states=h, top_k_index=i, top_k_weights=w)
    assert torch.equal(cap.calls[0][3], out)


def test_batches_may_be_tokenizer_mappings() -> None:
    moe = MoEModel(_base_model("mixtral"))
    ids, mask = batch(7)
    as_tuple = collect_routing_stats(moe, [(ids, mask)], output_samples=0)
    as_dict = collect_routing_stats(moe, [{"input_ids": ids, "attention_mask": mask}], output_samples=0)
    assert torch.equal(as_tuple.counts, as_dict.counts) and as_tuple.tokens == as_dict.tokens == int(mask.sum())
    assert torch.allclose(as_tuple.reap, as_tuple.reap_sum / as_tuple.counts.clamp_min(1))
