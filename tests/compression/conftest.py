"""Fixtures shared by the compression tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture()
def deepseek_v3() -> torch.nn.Module:
    """A tiny random DeepSeek-V3: dense first layer, shared expert, 2 expert groups, non-zero selection bias."""
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    config = DeepseekV3Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
        n_group=2, topk_group=1, first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=16, qk_rope_head_dim=4,
        qk_nope_head_dim=4, v_head_dim=8, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = DeepseekV3ForCausalLM(config).eval()
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if "e_score_correction_bias" in name:
                tensor.normal_(0, 0.1)
    return model
