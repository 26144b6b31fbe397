"""Routing statistics from the model's actual routing decisions.

Why hooks on ``experts``: the decision a router finally makes (after logit/selection biases, expert
groups, renormalisation and scaling) is exactly what the block hands to its ``experts`` module as
``(hidden, top_k_index, top_k_weights)``. Reading it there needs no per-architecture code and cannot
drift from what the model computes. Expert outputs f_j(x) come from calling that same ``experts``
module with top-1 index j and weight 1, which gives EAN and REAP (mean over routed tokens of
g_j(x)·||f_j(x)||) through the model's own kernels.

Padding: ``attention_mask`` is flattened like the hidden states (``[B, S] -> [B*S]``), and padded
positions are excluded from every statistic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from evalsuite.errors import UnsupportedModelError
from evalsuite.model._router_tap import tap_router
from evalsuite.model.generation import input_device
from evalsuite.model.moe import MoEBlock, MoEModel, _bind_experts_args
from evalsuite.progress import progress

__all__ = ["RoutingStats", "collect_routing_stats", "capture_routing"]


@dataclass
class RoutingStats:
    """Accumulated routing statistics; ``[L, E]`` float64 tensors, row i = MoE layer ``layers[i]``.

    Over unpadded tokens only. ``E`` is the largest expert count over the MoE layers (rows of smaller
    layers are zero-padded).

    - ``counts``: top-k selections of each expert (sums to ``tokens * top_k`` per row).
    - ``top1_counts`` / ``top1_conf_sum``: how often the expert had the largest routing weight, and the
      sum of that weight (the router's confidence).
    - ``gate_sum``: sum of the routing weights g_j(x) the experts received (after renormalisation/scaling).
    - ``prob_sum``: soft count, the router's score (softmax, or sigmoid for sigmoid routers) of every
      expert summed over all tokens; masked experts score 0.
    - ``ean_sum`` / ``reap_sum``: sums of ||f_j(x)|| and g_j(x)·||f_j(x)|| over routed tokens; see the
      ``ean`` / ``reap`` means.
    - ``expert_outputs[i]``: ``[E, N, H]`` in the model's dtype, every expert on the same N sampled tokens
      (empty unless asked for: only cka/cosine grouping reads them; they cost layers x E x N x H values).
    """

    layers: list[int]
    num_experts: list[int]
    top_k: list[int]
    counts: torch.Tensor
    top1_counts: torch.Tensor
    gate_sum: torch.Tensor
    prob_sum: torch.Tensor
    ean_sum: torch.Tensor
    reap_sum: torch.Tensor
    top1_conf_sum: torch.Tensor
    tokens: int = 0
    expert_outputs: list[torch.Tensor] = field(default_factory=list)

    def row(self, layer: int) -> int:
        """Row index of decoder layer ``layer`` (rows skip dense layers)."""
        return self.layers.index(layer)

    @staticmethod
    def _mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))

    @property
    def frequency(self) -> torch.Tensor:
        """Fraction of unpadded tokens routed to each expert."""
        return self.counts / max(self.tokens, 1)

    @property
    def reap(self) -> torch.Tensor:
        """REAP saliency: mean over routed tokens of g_j(x)·||f_j(x)|| (0 for never-routed experts)."""
        return self._mean(self.reap_sum, self.counts)

    @property
    def ean(self) -> torch.Tensor:
        """Mean expert output norm over routed tokens (0 for never-routed experts)."""
        return self._mean(self.ean_sum, self.counts)

    @property
    def mean_gate(self) -> torch.Tensor:
        """Mean routing weight over routed tokens."""
        return self._mean(self.gate_sum, self.counts)

    @property
    def soft_count(self) -> torch.Tensor:
        """Mean router probability per token (``prob_sum / tokens``)."""
        return self.prob_sum / max(self.tokens, 1)


class capture_routing:  # noqa: N801 - used like a function in ``with`` statements
    """Context manager recording every ``experts`` call of ``block``: (hidden, index, weights, output).

    Used by tests and by :func:`collect_routing_stats`' callers that need raw decisions.
    """

    def __init__(self, block: MoEBlock) -> None:
        self.block = block
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._handle: Any = None

    def __enter__(self) -> capture_routing:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            bound = _bind_experts_args(module, args, kwargs)
            if bound is not None:
                h, i, w = bound
                out = output.detach() if isinstance(output, torch.Tensor) else output
                self.calls.append((h.detach(), i.detach(), w.detach(), out))

        self._handle = self.block.experts.register_forward_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


class _LayerAccumulator:
    def __init__(self, block: MoEBlock, row: int, stats: RoutingStats, output_samples: int) -> None:
        self.block = block
        self.row = row
        self.stats = stats
        self.output_samples = output_samples
        # uniform sample of tokens over all batches: keep the N smallest random keys (same seed in every
        # layer, so every layer samples the same token positions)
        self.gen = torch.Generator().manual_seed(0)
        self.sample_keys = torch.empty(0)
        self.samples: torch.Tensor | None = None
        self.logits: list[torch.Tensor] = []
        self.busy = False

    def add(self, hidden: torch.Tensor, index: torch.Tensor, weights: torch.Tensor, valid: torch.Tensor) -> None:
        b, st, r = self.block, self.stats, self.row
        hidden = hidden.reshape(-1, hidden.shape[-1])
        if hidden.shape[0] != valid.numel():
            raise UnsupportedModelError(
                f"layer {b.layer}: experts saw {hidden.shape[0]} tokens but the attention mask has {valid.numel()}; "
                "cannot tell padded tokens apart"
            )
        logits = self.logits[0] if self.logits else None
        self.logits.clear()
        h, idx, w = hidden[valid], index[valid], weights[valid].double()
        n, k = idx.shape
        if n == 0:
            return
        e = b.num_experts
        flat = idx.reshape(-1).cpu()
        flat_w = w.reshape(-1).cpu()
        st.counts[r, :e] += torch.bincount(flat, minlength=e).double()
        st.gate_sum[r, :e].index_add_(0, flat, flat_w)
        pos = w.argmax(dim=-1, keepdim=True)
        top1 = idx.gather(1, pos).reshape(-1).cpu()
        st.top1_counts[r, :e] += torch.bincount(top1, minlength=e).double()
        st.top1_conf_sum[r, :e].index_add_(0, top1, w.gather(1, pos).reshape(-1).cpu())
        if logits is not None and logits.shape[0] == valid.numel():
            z = logits[valid].double()
            p = z.sigmoid() if b.score_fn == "sigmoid" else z.softmax(-1)
            st.prob_sum[r, :e] += p.sum(0).cpu()
        # f_j(x) for every routed (token, expert) pair, all pairs in one top-1 experts() call
        token_of = torch.arange(n, device=h.device).repeat_interleave(k)
        norms = b.pair_outputs(h[token_of], idx.reshape(-1), weights.dtype).double().norm(dim=-1).cpu()
        st.ean_sum[r, :e].index_add_(0, flat, norms)
        st.reap_sum[r, :e].index_add_(0, flat, flat_w * norms)
        if self.output_samples > 0:
            keys = torch.cat([self.sample_keys, torch.rand(n, generator=self.gen)])
            pool = h.detach() if self.samples is None else torch.cat([self.samples, h.detach()])
            if keys.numel() > self.output_samples:
                order = torch.topk(keys, self.output_samples, largest=False).indices.sort().values
                keys, pool = keys[order], pool[order.to(pool.device)]
            self.sample_keys, self.samples = keys, pool

    def finish(self) -> torch.Tensor:
        b = self.block
        if self.samples is None:
            return torch.zeros(b.num_experts, 0, 0)
        x = self.samples
        e, n = b.num_experts, x.shape[0]
        experts = torch.arange(e, device=x.device).repeat_interleave(n)
        out = b.pair_outputs(x.repeat(e, 1), experts)
        return out.cpu().reshape(e, n, -1)  # the model's dtype: fp32 would double a bf16 model's samples


@torch.no_grad()
def collect_routing_stats(
    model: nn.Module | MoEModel,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None] | Mapping[str, torch.Tensor]],
    *,
    output_samples: int = 0,
) -> RoutingStats:
    """Run ``batches`` of ``(input_ids, attention_mask)`` and accumulate routing statistics per MoE layer.

    A batch may also be a mapping with ``input_ids`` / ``attention_mask`` (a tokenizer's output); a
    missing mask means no padding.

    ``expert_outputs[i]`` is ``[E, N, H]``: every expert of layer ``layers[i]`` applied to the same
    ``N <= output_samples`` unpadded tokens, a uniform sample (fixed seed) over all batches, the same token
    positions in every layer (inputs for CKA / cosine similarity between experts).
    Works with active masks (masked experts then get zero counts).
    """
    moe = model if isinstance(model, MoEModel) else MoEModel(model)
    net = moe.model
    blocks = moe.blocks
    width = max(b.num_experts for b in blocks)

    def zeros() -> torch.Tensor:
        return torch.zeros(len(blocks), width, dtype=torch.float64)

    stats = RoutingStats(
        layers=[b.layer for b in blocks],
        num_experts=[b.num_experts for b in blocks],
        top_k=[b.top_k for b in blocks],
        counts=zeros(),
        top1_counts=zeros(),
        gate_sum=zeros(),
        prob_sum=zeros(),
        ean_sum=zeros(),
        reap_sum=zeros(),
        top1_conf_sum=zeros(),
    )
    accs = [_LayerAccumulator(b, i, stats, output_samples) for i, b in enumerate(blocks)]
    state: dict[str, torch.Tensor] = {}
    handles: list[Any] = []

    def make_hook(acc: _LayerAccumulator):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if acc.busy:  # our own expert_output() calls
                return
            bound = _bind_experts_args(module, args, kwargs)
            if bound is None:
                return
            acc.busy = True
            try:
                acc.add(bound[0], bound[1], bound[2], state["valid"])
            finally:
                acc.busy = False

        return hook

    for acc in accs:
        handles.append(acc.block.experts.register_forward_pre_hook(make_hook(acc), with_kwargs=True))
        handles += tap_router(
            acc.block.router, lambda b=acc.block: b.router_weight.tensor, acc.block.num_experts,
            record=acc.logits.append,
        )
    modes = {m: m.training for m in net.modules()}
    net.eval()
    try:
        device = input_device(net)
        for item in progress(batches, "routing statistics"):
            if isinstance(item, Mapping):  # a tokenizer's BatchEncoding / dict
                input_ids, attention_mask = item["input_ids"], item.get("attention_mask")
            else:
                input_ids, attention_mask = item
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            input_ids = input_ids.to(device)
            attention_mask = attention_mask.to(device)
            state["valid"] = attention_mask.reshape(-1).bool()
            for acc in accs:
                acc.logits.clear()
            net(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            stats.tokens += int(attention_mask.sum())
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    stats.expert_outputs = [acc.finish() for acc in accs] if output_samples > 0 else []
    return stats
