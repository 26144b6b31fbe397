"""Architecture conformance of the MoE access layer.

For a tiny random config of every MoE architecture the layer supports, check the oracles that make the
layer trustworthy (hypothesis draws the keep-sets, masks and merge groups):

- masked experts receive no tokens, and restoring a mask is bit-exact and copies no weights;
- masked == masked with the masked experts' weights zeroed;
- physically removed == masked (fp32, ~1e-5);
- save -> from_pretrained round-trips exactly (no evalsuite code involved in loading);
- merging identical experts == removing the duplicate;
- summed routing counts == unpadded tokens x top_k, and stats match the observed decisions;
- the per-expert outputs f_j(x) reconstruct the experts' output.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import warnings
from pathlib import Path

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evalsuite.errors import InvalidRecipeError, UnsupportedModelError  # noqa: E402
from evalsuite.model.moe import MoEModel  # noqa: E402
from evalsuite.model.routing import capture_routing, collect_routing_stats  # noqa: E402

E = 8
K = 2
TINY = dict(
    hidden_size=32,
    intermediate_size=48,
    moe_intermediate_size=24,
    expert_ffn_hidden_size=24,
    shared_expert_intermediate_size=24,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=8,
    vocab_size=96,
    max_position_embeddings=64,
    num_local_experts=E,
    num_experts=E,
    n_routed_experts=E,
    moe_num_experts=E,
    num_experts_per_tok=K,
    moe_k=K,
    moe_topk=K,
    n_shared_experts=1,
    moe_num_shared_experts=1,
    first_k_dense_replace=0,
    decoder_sparse_step=1,
    moe_layer_start_index=0,
    n_group=1,
    topk_group=1,
    kv_lora_rank=16,
    q_lora_rank=16,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=8,
    initializer_range=0.2,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)

# Architectures the access layer supports, with the config tweaks their tiny versions need.
# Grouped routers get 2 groups so keep-sets must respect groups.
ARCHS: dict[str, dict] = {
    "mixtral": {},
    "qwen2_moe": {"norm_topk_prob": False},
    "qwen3_moe": {"norm_topk_prob": True},
    "olmoe": {},
    "deepseek_v2": {"topk_method": "group_limited_greedy", "n_group": 2, "topk_group": 1},
    "deepseek_v3": {"n_group": 2, "topk_group": 1},
    "gpt_oss": {},
    "granitemoe": {},
    "phimoe": {},
    "glm4_moe": {"n_group": 2, "topk_group": 1},
    "ernie4_5_moe": {},
}
MUST = list(ARCHS)

# Every other installed architecture the layer supports: one compact conformance pass each (below).
EXTRA: dict[str, dict] = {
    "afmoe": {},
    "aria_text": {},
    "axk1": {},
    "axk2": {},
    "bailing_hybrid": {},
    "cohere2_moe": {},
    "deepseek_v32": {"n_group": 2, "topk_group": 1},
    "dots1": {},
    "exaone_moe": {},
    "flex_olmo": {},
    "dots3_note_text": {},
    "flint": {"mlp_only_layers": []},
    "gemma4_text": {
        "enable_moe_block": True,
        "top_k_experts": K,
        "num_global_key_value_heads": 4,
        "global_head_dim": 8,
        "vocab_size_per_layer_input": 96,
        "hidden_size_per_layer_input": 8,
    },
    "glm4_moe_lite": {},
    "glm4v_moe_text": {
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.5,
            "mrope_section": [1, 1, 0],
        }
    },
    "glm_moe_dsa": {"n_group": 2, "topk_group": 1},
    "granitemoe_swa": {},
    "granitemoehybrid": {
        "mamba_n_heads": 4,
        "mamba_d_head": 16,
        "mamba_d_state": 16,
        "layer_types": ["mamba", "attention"],
    },
    "granitemoeshared": {},
    "hunyuan_v1_moe": {},
    "hy_v3": {},
    "hy_v4": {},
    "inkling2_text": {},
    "jamba": {},
    "kolibri1": {},
    "laguna": {},
    "lfm2_moe": {"num_dense_layers": 0, "layer_types": ["full_attention", "full_attention"]},
    "mellum": {},
    "minimax": {},
    "minimax_m2": {},
    "minimax_m3_vl_text": {},
    "mistral4": {"head_dim": 16},
    "mistral_large4_text": {},
    "muse_spark_text": {},
    "openai_privacy_filter": {},
    "qwen3_omni_moe_text": {},
    "qwen3_vl_moe_text": {},
    "solar_open": {},
    "unlimited_ocr_text": {},
}
# Same checks, but their tiny models are slow on CPU (linear-attention / mamba fallbacks, big imports):
# run with EVALSUITE_SLOW_ARCHS=1.
SLOW: dict[str, dict] = {
    "beam": {"mlp_layer_types": ["sparse", "sparse"], "layer_types": ["sliding_attention", "full_attention"]},
    "kimi_linear": {},
    "nemotron_h": {},
    "diffusion_gemma_text": {
        "enable_moe_block": True,
        "top_k_experts": K,
        "global_head_dim": 8,
        "vocab_size_per_layer_input": 96,
        "hidden_size_per_layer_input": 8,
    },
    "qwen3_5_moe_text": {},
    "qwen3_next": {},
    "qwen4_exp_text": {},
}


def _overrides(arch: str) -> dict:
    return ARCHS.get(arch, EXTRA.get(arch, SLOW.get(arch, {})))


def _is_grouped(arch: str) -> bool:
    return _overrides(arch).get("n_group", 1) > 1


def _has(config, key: str) -> bool:
    try:
        return hasattr(config, key)
    except Exception:  # noqa: BLE001 - per-layer attributes raise on global access; they exist
        return True


def _text_model_class(config) -> type:
    import importlib
    import inspect

    from transformers import PreTrainedModel

    module = importlib.import_module(type(config).__module__.replace(".configuration_", ".modeling_"))
    found = [
        c
        for c in vars(module).values()
        if inspect.isclass(c) and issubclass(c, PreTrainedModel) and getattr(c, "config_class", None) is type(config)
    ]
    found.sort(key=lambda c: ("ForCausalLM" not in c.__name__, "PreTrained" in c.__name__, c.__name__))
    return found[0]


@functools.cache
def _base_model(arch: str) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    base = AutoConfig.for_model(arch)
    kwargs = {k: v for k, v in TINY.items() if _has(base, k)}
    kwargs.update(_overrides(arch))
    config = AutoConfig.for_model(arch, **kwargs)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = AutoModelForCausalLM.from_config(config).eval()
        except ValueError:  # no causal-LM head registered (e.g. mistral4): the base model has the MoE blocks
            try:
                model = AutoModel.from_config(config).eval()
            except ValueError:  # a multimodal model's language model that no Auto class maps
                model = _text_model_class(config)(config).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for block in MoEModel(model).blocks:
            for et in block.tensors:
                if et.role == "selection_bias" or (et.role == "router" and et.tensor.dim() == 1):
                    # biases start at zero; random values make the selection-bias / logit-bias paths matter
                    et.tensor.copy_(0.1 * torch.randn(et.tensor.shape, generator=gen))
    return model


def fresh(arch: str) -> MoEModel:
    """A private copy, for tests that change the model for good (remove / merge / save)."""
    return MoEModel(copy.deepcopy(_base_model(arch)))


@functools.cache
def shared(arch: str) -> MoEModel:
    """The cached model itself, for tests whose operations are reversible (they must leave it unchanged)."""
    return MoEModel(_base_model(arch))


def batch(seed: int = 0, pad: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 96, (3, 9), generator=gen)
    mask = torch.ones_like(ids)
    lengths = [9, 5, 7]
    for row, n in enumerate(lengths):
        if pad == "left":
            mask[row, : 9 - n] = 0
            ids[row, : 9 - n] = 0
        else:
            mask[row, n:] = 0
            ids[row, n:] = 0
    return ids, mask


def logits(moe: MoEModel, data: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    ids, mask = data or batch()
    with torch.no_grad():
        out = moe.model(input_ids=ids, attention_mask=mask, use_cache=False)
    out = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
    return out[mask.bool()]


def assert_close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max()))
    diff = float((a - b).abs().max())
    assert diff <= tol * scale, f"max abs diff {diff:.3g} > {tol * scale:.3g}"


@st.composite
def keep_sets(draw, moe: MoEModel, *, uniform: bool = False, must_remove: bool = True) -> dict[int, list[int]]:
    """Per MoE layer, a keep-set the layer must accept: >= top_k experts, equal counts per expert group."""
    keep: dict[int, list[int]] = {}
    fixed = None
    for block in moe.blocks:
        e, k = block.num_experts, block.top_k
        if block.n_group > 1:
            size = e // block.n_group
            lo = max(2, -(-k // block.topk_group))
            hi = size - 1 if must_remove and size - 1 >= lo else size
            per = fixed if fixed is not None else draw(st.integers(lo, hi))
            chosen = []
            for g in range(block.n_group):
                members = draw(st.permutations(list(range(g * size, (g + 1) * size))))
                chosen += members[:per]
        else:
            hi = e - 1 if must_remove else e
            per = fixed if fixed is not None else draw(st.integers(k, hi))
            chosen = draw(st.permutations(list(range(e))))[:per]
        if uniform:
            fixed = per
        keep[block.layer] = sorted(chosen)
    return keep


def complement(moe: MoEModel, keep: dict[int, list[int]]) -> dict[int, list[int]]:
    return {b.layer: [e for e in range(b.num_experts) if e not in keep[b.layer]] for b in moe.blocks}


SETTINGS = settings(
    max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)
arch_param = pytest.mark.parametrize("arch", MUST)


# ------------------------------------------------------------------------------------------- discovery
@arch_param
def test_describe_reports_every_moe_layer(arch: str) -> None:
    moe = shared(arch)
    info = moe.describe()
    assert len(info) == len(moe.blocks) >= 1
    for row in info:
        assert row["experts"] == E
        assert row["top_k"] == K
        assert row["routing_rule"]
        assert any(v["role"] == "expert" for v in row["expert_tensors"].values())
        assert any(v["role"] == "router" for v in row["expert_tensors"].values())
    if arch in ("deepseek_v3", "glm4_moe"):
        assert "sigmoid" in info[0]["routing_rule"] and "selection bias" in info[0]["routing_rule"]
        assert info[0]["groups"] == {"n_group": 2, "topk_group": 1}
    if arch == "mixtral":
        assert info[0]["routing_rule"].startswith("softmax, top-2, renormalised")
    if arch == "ernie4_5_moe":
        assert "selection bias" in info[0]["routing_rule"]


# ------------------------------------------------------------------------------------------- masking
@arch_param
@SETTINGS
@given(data=st.data())
def test_masked_experts_receive_no_tokens_and_restore_is_exact(arch: str, data: st.DataObject) -> None:
    moe = shared(arch)
    before = logits(moe)
    ptrs = {n: p.data_ptr() for n, p in moe.model.named_parameters()}
    drop = complement(moe, data.draw(keep_sets(moe)))
    with moe.mask(drop):
        stats = collect_routing_stats(moe, [batch()], output_samples=0)
        for row, layer in enumerate(stats.layers):
            assert stats.counts[row, drop[layer]].sum() == 0, f"layer {layer}: masked experts got tokens"
            assert stats.counts[row].sum() == stats.tokens * stats.top_k[row]
        assert moe.masked() == {k: sorted(v) for k, v in drop.items() if v}
        # no weight was copied or replaced
        assert {n: p.data_ptr() for n, p in moe.model.named_parameters()} == ptrs
    assert moe.masked() == {}
    assert torch.equal(logits(moe), before)


@arch_param
@SETTINGS
@given(data=st.data())
def test_any_accepted_mask_starves_the_masked_experts(arch: str, data: st.DataObject) -> None:
    """Not only group-balanced masks: whatever mask() accepts, masked experts get no token."""
    moe = shared(arch)
    drop = {}
    for block in moe.blocks:
        n = data.draw(st.integers(1, block.num_experts - block.top_k))
        drop[block.layer] = data.draw(st.permutations(list(range(block.num_experts))))[:n]
    try:
        handle = moe.mask(drop)
    except InvalidRecipeError as exc:
        assert "group" in str(exc)  # only grouped routers refuse masks of a feasible size
        return
    with handle:
        stats = collect_routing_stats(moe, [batch()], output_samples=0)
    for row, layer in enumerate(stats.layers):
        assert stats.counts[row, drop[layer]].sum() == 0
        assert stats.counts[row].sum() == stats.tokens * stats.top_k[row]


@arch_param
@SETTINGS
@given(data=st.data())
def test_masked_equals_masked_and_zeroed(arch: str, data: st.DataObject) -> None:
    moe = shared(arch)
    drop = complement(moe, data.draw(keep_sets(moe)))
    with moe.mask(drop):
        masked = logits(moe)
        handles = [moe.zero_experts(layer, d) for layer, d in drop.items() if d]
        both = logits(moe)
        for h in handles:
            h.restore()
    assert_close(both, masked, 1e-6)


@arch_param
@SETTINGS
@given(data=st.data())
def test_removed_equals_masked(arch: str, data: st.DataObject) -> None:
    moe = fresh(arch)
    keep = data.draw(keep_sets(moe))
    with moe.mask(complement(moe, keep)):
        masked = logits(moe)
    moe.remove(keep)
    for block in moe.blocks:
        assert block.num_experts == len(keep[block.layer])
        for et in block.tensors:
            assert et.tensor.shape[et.axis] == block.num_experts
        for sub in block.module.modules():
            for attr in ("num_experts", "num_local_experts", "n_routed_experts"):
                if isinstance(sub.__dict__.get(attr), int):
                    assert sub.__dict__[attr] == block.num_experts, f"{type(sub).__name__}.{attr} not updated"
    assert_close(logits(moe), masked)
    stats = collect_routing_stats(moe, [batch()], output_samples=0)
    assert stats.counts.sum(1).tolist() == [stats.tokens * k for k in stats.top_k]


@arch_param
@SETTINGS
@given(data=st.data())
def test_save_load_roundtrip_is_exact(arch: str, data: st.DataObject, tmp_path_factory) -> None:
    from transformers import AutoModelForCausalLM

    moe = fresh(arch)
    keep = data.draw(keep_sets(moe, uniform=True))
    moe.remove(keep)
    n = len(next(iter(keep.values())))
    folder = moe.save(tmp_path_factory.mktemp(arch) / "ckpt")
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    cfg = loaded.config.get_text_config()
    assert any(getattr(cfg, a, None) == n for a in ("num_experts", "num_local_experts", "n_routed_experts"))
    ours = moe.model.state_dict()
    theirs = loaded.state_dict()
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key
    assert torch.equal(logits(MoEModel(loaded)), logits(moe))


# ------------------------------------------------------------------------------------------- merging
@st.composite
def duplicate_pairs(draw, moe: MoEModel) -> dict[int, list[list[int]]]:
    """Per layer, disjoint (survivor, duplicate) pairs; one per expert group for grouped routers."""
    out: dict[int, list[list[int]]] = {}
    for block in moe.blocks:
        e = block.num_experts
        if block.n_group > 1:
            size = e // block.n_group
            pairs = []
            for g in range(block.n_group):
                members = draw(st.permutations(list(range(g * size, (g + 1) * size))))
                pairs.append(members[:2])
        else:
            n_pairs = draw(st.integers(1, min(2, (e - block.top_k))))
            order = draw(st.permutations(list(range(e))))
            pairs = [order[2 * i : 2 * i + 2] for i in range(n_pairs)]
        out[block.layer] = pairs
    return out


@arch_param
@SETTINGS
@given(data=st.data(), merge_router=st.booleans())
def test_merging_identical_experts_equals_removing_the_duplicate(
    arch: str, data: st.DataObject, merge_router: bool
) -> None:
    moe = fresh(arch)
    groups = data.draw(duplicate_pairs(moe))
    with torch.no_grad():
        for block in moe.blocks:
            for a, b in groups[block.layer]:
                for et in block.tensors:
                    et.tensor.select(et.axis, b).copy_(et.tensor.select(et.axis, a))
    other = MoEModel(copy.deepcopy(moe.model))
    moe.merge(groups, merge_router=merge_router)
    dup = {b.layer: {p[1] for p in groups[b.layer]} for b in other.blocks}
    other.remove({b.layer: [e for e in range(b.num_experts) if e not in dup[b.layer]] for b in other.blocks})
    assert [b.num_experts for b in moe.blocks] == [b.num_experts for b in other.blocks]
    assert torch.equal(logits(moe), logits(other))


@arch_param
def test_merge_is_a_weighted_average_of_every_expert_tensor(arch: str) -> None:
    for merge_router in (True, False):
        moe = fresh(arch)
        block = moe.blocks[0]
        a, b = (0, 1)
        size = E // block.n_group  # one pair per expert group keeps grouped routers balanced
        pairs = [[g * size, g * size + 1] for g in range(block.n_group)]
        before = {et.qualname: et.tensor.detach().clone() for et in block.tensors}
        moe.merge({block.layer: pairs}, {block.layer: [[3.0, 1.0]] * len(pairs)}, merge_router=merge_router)
        for et in block.tensors:
            old = before[et.qualname]
            got = et.tensor.select(et.axis, a)
            if et.role == "expert" or merge_router:
                want = 0.75 * old.select(et.axis, a).double() + 0.25 * old.select(et.axis, b).double()
                torch.testing.assert_close(got.double(), want.to(old.dtype).double())
            else:
                assert torch.equal(got, old.select(et.axis, a))
            assert et.tensor.shape[et.axis] == E - len(pairs)


# ------------------------------------------------------------------------------------------- statistics
@arch_param
def test_routing_stats_are_padding_aware_and_match_the_decisions(arch: str) -> None:
    moe = shared(arch)
    batches = [batch(3, pad="right"), batch(4)]
    captures = [capture_routing(b) for b in moe.blocks]
    for c in captures:
        c.__enter__()
    try:
        for data in batches:
            logits(moe, data)
    finally:
        for c in captures:
            c.__exit__()
    stats = collect_routing_stats(moe, batches, output_samples=5)
    tokens = int(sum(m.sum() for _, m in batches))
    assert stats.tokens == tokens
    assert stats.counts.sum(1).tolist() == [tokens * k for k in stats.top_k]
    assert stats.top1_counts.sum(1).tolist() == [float(tokens)] * len(stats.layers)
    for row, (block, cap) in enumerate(zip(moe.blocks, captures, strict=True)):
        counts = torch.zeros(E, dtype=torch.float64)
        gate = torch.zeros(E, dtype=torch.float64)
        reap = torch.zeros(E, dtype=torch.float64)
        ean = torch.zeros(E, dtype=torch.float64)
        assert len(cap.calls) == len(batches)
        for (h, idx, w, _), (_, m) in zip(cap.calls, batches, strict=True):
            valid = m.reshape(-1).bool()
            h, idx, w = h[valid], idx[valid], w[valid]
            for j in range(E):
                rows, cols = (idx == j).nonzero(as_tuple=True)
                counts[j] += len(rows)
                if len(rows):
                    g = w[rows, cols].double()
                    norms = block.expert_output(h[rows], j, w.dtype).double().norm(dim=-1)
                    gate[j] += g.sum()
                    reap[j] += (g * norms).sum()
                    ean[j] += norms.sum()
        torch.testing.assert_close(stats.counts[row], counts)
        torch.testing.assert_close(stats.gate_sum[row], gate)
        torch.testing.assert_close(stats.reap_sum[row], reap, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stats.ean_sum[row], ean, rtol=1e-5, atol=1e-6)
        assert stats.expert_outputs[row].shape == (E, 5, block.router_weight.tensor.shape[1])
        if "custom" not in block.routing_rule:
            assert stats.prob_sum[row].sum() > 0
    assert (stats.reap >= 0).all() and (stats.ean >= 0).all()


@arch_param
def test_routing_counts_ignore_padding(arch: str) -> None:
    """Padding changes nothing: a right-padded batch gives the counts of its sequences run one by one."""
    moe = shared(arch)
    ids, mask = batch(5, pad="right")
    together = collect_routing_stats(moe, [(ids, mask)], output_samples=0)
    alone = [(ids[i : i + 1, : int(mask[i].sum())], None) for i in range(ids.shape[0])]
    separate = collect_routing_stats(moe, alone, output_samples=0)
    assert together.tokens == separate.tokens == int(mask.sum())
    torch.testing.assert_close(together.counts, separate.counts)


@arch_param
def test_per_expert_outputs_reconstruct_the_experts_output(arch: str) -> None:
    moe = shared(arch)
    for block in moe.blocks:
        with capture_routing(block) as cap:
            logits(moe)
        h, idx, w, out = cap.calls[0]
        recon = torch.zeros_like(out, dtype=torch.float64)
        for j in idx.unique().tolist():
            rows, cols = (idx == j).nonzero(as_tuple=True)
            f = block.expert_output(h[rows], j, w.dtype).double()
            recon.index_add_(0, rows, f * w[rows, cols].double().unsqueeze(-1))
        assert_close(recon.float(), out.float())


# ------------------------------------------------------------------------------------------- soft operations
@arch_param
def test_scale_and_zero_are_reversible(arch: str) -> None:
    moe = shared(arch)
    before = logits(moe)
    layer = moe.blocks[0].layer
    h = moe.scale_router_rows(layer, [0, 1, 2], 0.0)
    assert not torch.equal(logits(moe), before)
    h.restore()
    assert torch.equal(logits(moe), before)
    with moe.zero_experts(layer, list(range(E))):
        for et in moe.blocks[0].expert_tensors:
            assert not et.tensor.any()
    assert torch.equal(logits(moe), before)


# ------------------------------------------------------------------------------------------- refusals
@arch_param
def test_bad_keep_sets_are_refused(arch: str) -> None:
    moe = shared(arch)
    layer = moe.blocks[0].layer
    with pytest.raises(InvalidRecipeError, match="top_k"):
        moe.remove({layer: [0]})
    with pytest.raises(InvalidRecipeError, match="duplicate"):
        moe.remove({layer: [0, 1, 1, 5]})
    with pytest.raises(InvalidRecipeError, match="out of range"):
        moe.remove({layer: [0, 1, 99]})
    with pytest.raises(InvalidRecipeError, match="fewer than top_k"):
        moe.mask({layer: list(range(E - 1))})
    if _is_grouped(arch):
        with pytest.raises(InvalidRecipeError, match="groups"):
            moe.remove({layer: [0, 1, 2, 4, 5]})
        with pytest.raises(InvalidRecipeError, match="per group"):  # 1 unmasked expert left in each group
            moe.mask({layer: [0, 1, 2, 4, 5, 6]})
    with moe.mask({layer: [E - 1]}):
        with pytest.raises(InvalidRecipeError, match="masked"):
            moe.remove({layer: [0, 1, 4, 5]})
        with pytest.raises(InvalidRecipeError, match="physical=True"):
            moe.save(Path("/nonexistent/never-written"))
    assert [b.num_experts for b in moe.blocks] == [E] * len(moe.blocks)


def test_save_physical_materialises_a_mask(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    moe = fresh("deepseek_v3")
    drop = {b.layer: [1, 6] for b in moe.blocks}
    with moe.mask(drop):
        masked = logits(moe)
        moe.save(tmp_path / "ckpt", physical=True)
        assert moe.masked() == drop  # the live model keeps its mask
    loaded = MoEModel(AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").eval())
    assert [b.num_experts for b in loaded.blocks] == [E - 2] * len(loaded.blocks)
    assert_close(logits(loaded), masked)


def test_overlapping_masks_restore_in_any_order() -> None:
    for arch in ("mixtral", "deepseek_v3"):
        moe = shared(arch)
        before = logits(moe)
        layer = moe.blocks[0].layer
        a = moe.mask({layer: [0, 4]})
        b = MoEModel(moe.model).mask({layer: [4, 5]})  # a second wrapper sees the same model state
        assert moe.masked() == {layer: [0, 4, 5]}
        a.restore()
        assert moe.masked() == {layer: [4, 5]}
        b.restore()
        assert torch.equal(logits(moe), before)


# ------------------------------------------------------------------------------------------- other architectures
def _load_saved(folder: Path, cls: type) -> torch.nn.Module:
    """Plain transformers loading: the Auto classes, or the model's own class where no Auto class maps it."""
    from transformers import AutoModel, AutoModelForCausalLM

    for auto in (AutoModelForCausalLM, AutoModel):
        try:
            return auto.from_pretrained(folder).eval()
        except ValueError:
            continue
    return cls.from_pretrained(folder).eval()


_extra_params = [pytest.param(a) for a in EXTRA] + [
    pytest.param(a, marks=pytest.mark.skipif(not os.environ.get("EVALSUITE_SLOW_ARCHS"), reason="slow on CPU"))
    for a in SLOW
]


@pytest.mark.parametrize("arch", _extra_params)
@settings(max_examples=1, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_other_architectures_conform(arch: str, data: st.DataObject, tmp_path_factory) -> None:
    """The same oracles as above, one drawn keep-set per architecture (keeps the module fast)."""
    moe = shared(arch)
    e, k = moe.blocks[0].num_experts, moe.blocks[0].top_k
    assert (e, k) == (E, K), moe.describe()
    before = logits(moe)
    keep = data.draw(keep_sets(moe, uniform=True))
    drop = complement(moe, keep)
    with moe.mask(drop):
        stats = collect_routing_stats(moe, [batch()], output_samples=0)
        for row, layer in enumerate(stats.layers):
            assert stats.counts[row, drop[layer]].sum() == 0, f"layer {layer}: masked experts got tokens"
        assert stats.counts.sum(1).tolist() == [stats.tokens * kk for kk in stats.top_k]
        masked = logits(moe)
        zeroed = [moe.zero_experts(layer, d) for layer, d in drop.items() if d]
        assert_close(logits(moe), masked, 1e-6)
        for h in zeroed:
            h.restore()
    assert torch.equal(logits(moe), before)
    test_per_expert_outputs_reconstruct_the_experts_output(arch)
    twin = fresh(arch)
    moe = fresh(arch)
    moe.remove(keep)
    assert_close(logits(moe), masked)
    folder = moe.save(tmp_path_factory.mktemp(arch) / "ckpt")
    loaded = _load_saved(folder, type(moe.model))
    ours, theirs = moe.model.state_dict(), loaded.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.equal(v, theirs[n]) for n, v in ours.items())
    assert_close(logits(MoEModel(loaded)), logits(moe))
    # merging identical experts == removing the duplicate
    groups = data.draw(duplicate_pairs(twin))
    with torch.no_grad():
        for block in twin.blocks:
            for a, b in groups[block.layer]:
                for et in block.tensors:
                    et.tensor.select(et.axis, b).copy_(et.tensor.select(et.axis, a))
    other = MoEModel(copy.deepcopy(twin.model))
    twin.merge(groups)
    dup = {b.layer: {p[1] for p in groups[b.layer]} for b in other.blocks}
    other.remove({b.layer: [x for x in range(b.num_experts) if x not in dup[b.layer]] for b in other.blocks})
    assert torch.equal(logits(twin), logits(other))


# ------------------------------------------------------------------------------------------- unsupported
def _tiny(model_type: str, **extra):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    base = AutoConfig.for_model(model_type)
    kwargs = {k: v for k, v in TINY.items() if hasattr(base, k)}
    kwargs.update(extra)
    config = AutoConfig.for_model(model_type, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return AutoModelForCausalLM.from_config(config)
        except ValueError:
            return AutoModel.from_config(config)


def test_dense_model_is_refused_with_a_clear_error() -> None:
    with pytest.raises(UnsupportedModelError, match=r"'llama'.*no MoE block.*experts"):
        MoEModel(_tiny("llama"))


UNSUPPORTED_BUILDABLE = {
    "llama4_text": "not called as experts",
    "jetmoe": "separate sub-modules|no router|not called",
    "switch_transformers": "separate sub-modules",
    "longcat_flash": "disagree on the expert count",
    "deepseek_v4": "hash routing",
    "zaya": "no weight of shape",
    "inkling_text": "no weight of shape",
    "nllb-moe": "separate sub-modules",
}


@pytest.mark.parametrize("model_type", sorted(UNSUPPORTED_BUILDABLE))
def test_unsupported_layouts_raise_with_the_reason(model_type: str) -> None:
    extra = {"longcat_flash": {"zero_expert_num": 2}, "zaya": {"num_experts_per_tok": 1}}.get(model_type, {})
    try:
        model = _tiny(model_type, **extra)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"cannot build a tiny {model_type}: {exc}")
    with pytest.raises(UnsupportedModelError, match=rf"'{model_type}'.*({UNSUPPORTED_BUILDABLE[model_type]})"):
        MoEModel(model)


def test_every_installed_moe_architecture_is_documented() -> None:
    """Every transformers model type with an `experts` module is either tested here or listed, with a
    reason, in docs/ARCHITECTURES.md (the README links it)."""
    import transformers

    doc = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURES.md").read_text()
    listed = set(re.findall(r"^\|\s*`([a-z0-9_\-]+)`", doc, flags=re.M))
    root = Path(transformers.__file__).parent / "models"
    moe_types = sorted(
        p.parent.name
        for p in root.glob("*/modeling_*.py")
        if p.stem == f"modeling_{p.parent.name}" and re.search(r"self\.experts\s*=", p.read_text())
    )
    missing = [t for t in moe_types if t not in listed]
    assert not missing, f"MoE architectures missing from docs/ARCHITECTURES.md: {missing}"
    assert set(MUST) <= listed


# ------------------------------------------------------------------------------- export from the files
def _plan(moe: MoEModel) -> tuple[dict[int, list[int]], dict[int, list[list[int]]]]:
    """A keep-set (two experts fewer, evenly per expert group) and merge groups of the same shape."""
    keep, groups = {}, {}
    for block in moe.blocks:
        n_group = max(1, block.n_group)
        size = block.num_experts // n_group
        drop = [g * size + size - 1 for g in range(n_group)] if n_group > 1 else [block.num_experts - 2,
                                                                                  block.num_experts - 1]  # fmt: skip
        keep[block.layer] = [e for e in range(block.num_experts) if e not in drop]
        groups[block.layer] = [[e] for e in keep[block.layer]]
        for e in drop:
            groups[block.layer][keep[block.layer].index(e - 1 if n_group > 1 else 0)].append(e)
    return keep, groups


def _record(recipe: str, moe: MoEModel, keep, groups=None, weights=None) -> dict:
    rows = []
    for block in moe.blocks:
        row = {"layer": block.layer, "experts": block.num_experts, "kept": keep[block.layer],
               "removed": [e for e in range(block.num_experts) if e not in keep[block.layer]]}  # fmt: skip
        if groups is not None:
            row.update(groups=groups[block.layer], weights=weights[block.layer])
        rows.append(row)
    return {"recipe": recipe, "layers": rows}


@pytest.mark.parametrize("arch", MUST + [a for a in EXTRA])
def test_export_from_files_equals_physical_removal_and_merging(arch: str, tmp_path: Path) -> None:
    """Whatever the on-disk layout (per-expert or fused names, router / bias rows), streaming the record
    through the files gives the model that removing / merging in memory gives."""
    from evalsuite.compression.export import export_checkpoint

    source = fresh(arch).save(tmp_path / "src")
    keep, groups = _plan(shared(arch))
    n = len(next(iter(keep.values())))
    removed = fresh(arch)
    removed.remove(keep)
    out = export_checkpoint(source, _record(f"random:{n}", shared(arch), keep), tmp_path / "pruned")
    assert_close(logits(MoEModel(_load_saved(out, type(removed.model)))), logits(removed))
    if arch not in MUST:
        return
    weights = {layer: [[0.6] + [0.4 / (len(g) - 1)] * (len(g) - 1) if len(g) > 1 else [1.0] for g in gs]
               for layer, gs in groups.items()}  # fmt: skip
    merged = fresh(arch)
    record = _record(f"merge-weights-uniform:{n}", shared(arch), keep, groups, weights)
    merged.merge(groups, weights)
    out = export_checkpoint(source, record, tmp_path / "merged")
    assert_close(logits(MoEModel(_load_saved(out, type(merged.model)))), logits(merged))
