"""Model presets of the embedded model (transformers Qwen3-MoE), with their size and compute per token.

    python -m training.model_config            # table of presets: params, bf16 MB, active params/token

Why Qwen3-MoE: a standard transformers class (evalsuite adapts every MoE through the fused `experts`
tensors, so nothing here is architecture-specific), softmax top-k router with renormalised weights,
every layer sparse. v2 follows the fine-grained recipe of Qwen3-MoE / OLMoE / DeepSeek-MoE: many narrow
experts, several active per token, so that pruning 5% of a layer removes whole experts (32 x 5% ~ 2)
instead of the 12.5% minimum step of v1's 8 experts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_SHIPPED_MB = 40.0  # issue 11: the embedded model stays small enough to ship in the package


@dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    experts: int
    top_k: int
    expert_width: int  # moe_intermediate_size: each expert is a SwiGLU FFN of this width
    router_aux_loss_coef: float = 0.01
    max_positions: int = 512


PRESETS = {
    # the shipped v1 model (9.2M params, 18 MB)
    "v1": Preset(hidden=256, layers=4, heads=4, kv_heads=2, experts=8, top_k=2, expert_width=256),
    # v2: 32 narrow experts, top-4 (a 1/8 active ratio like OLMoE's 8 of 64); active compute per token
    # ~ v1's, total parameters ~1.7x (15.5M, 31 MB in bf16)
    "v2": Preset(hidden=256, layers=4, heads=4, kv_heads=2, experts=32, top_k=4, expert_width=128),
    # fallback if the throughput probe says v2 cannot see 25M tokens in the session: same width, 16 x 128 top-2
    "v2-lite": Preset(hidden=256, layers=4, heads=4, kv_heads=2, experts=16, top_k=2, expert_width=128),
    # for tests and the kill -9 resume check: seconds per step on a loaded CPU
    "tiny": Preset(hidden=32, layers=2, heads=2, kv_heads=1, experts=16, top_k=2, expert_width=16, max_positions=64),
}


def model_config(preset: str, vocab_size: int, eos_id: int, pad_id: int):  # -> Qwen3MoeConfig
    """The transformers config of a preset (tied embeddings, head dim = hidden / heads)."""
    from transformers import Qwen3MoeConfig

    if preset not in PRESETS:
        raise KeyError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    return Qwen3MoeConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden,
        intermediate_size=2 * p.hidden,  # unused: every layer is MoE (decoder_sparse_step=1)
        moe_intermediate_size=p.expert_width,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        head_dim=p.hidden // p.heads,
        num_experts=p.experts,
        num_experts_per_tok=p.top_k,
        decoder_sparse_step=1,
        norm_topk_prob=True,
        max_position_embeddings=p.max_positions,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        output_router_logits=False,
        router_aux_loss_coef=p.router_aux_loss_coef,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def param_counts(preset: str, vocab_size: int = 8192) -> dict[str, float]:
    """Parameters by part, bf16 size and active parameters per token, from the preset's shapes.

    Counted analytically (no model is built) so the table is instant; test_model_config checks it
    against a built model."""
    p = PRESETS[preset]
    hd = p.hidden // p.heads
    attn = p.hidden * hd * (p.heads + 2 * p.kv_heads) + p.heads * hd * p.hidden + 2 * hd  # q,k,v,o + q/k norms
    expert = 3 * p.hidden * p.expert_width  # gate, up, down
    per_layer = attn + p.experts * expert + p.experts * p.hidden + 2 * p.hidden  # + router + 2 norms
    embed = vocab_size * p.hidden
    total = embed + p.layers * per_layer + p.hidden
    active = total - p.layers * (p.experts - p.top_k) * expert
    return {
        "total": total,
        "experts": p.layers * p.experts * expert,
        "embedding": embed,
        "active_per_token": active,
        "bf16_MB": total * 2 / 1e6,
    }


def main() -> None:
    print(f"{'preset':8s} {'params':>12s} {'experts':>12s} {'active/tok':>12s} {'bf16 MB':>8s}  layout")
    for name, p in PRESETS.items():
        c = param_counts(name)
        flag = "" if c["bf16_MB"] <= MAX_SHIPPED_MB else f"  (> {MAX_SHIPPED_MB} MB)"
        print(
            f"{name:8s} {c['total']:>12,.0f} {c['experts']:>12,.0f} {c['active_per_token']:>12,.0f} "
            f"{c['bf16_MB']:>8.1f}  {asdict(p)}{flag}"
        )


if __name__ == "__main__":
    main()
