"""The MoE access layer: one generic adapter over every transformers MoE with fused expert tensors.

Why one adapter: in transformers 5.x every MoE block has a router child (``gate``/``router``, weight
``[E, H]``, optionally a logit bias or a selection-only ``e_score_correction_bias``) and an ``experts``
child holding fused tensors whose leading axis is the expert index. Masking, removal and merging are
therefore index operations on "every tensor with an expert axis", and the model's own code keeps
doing the routing. Nothing here is per-architecture; layouts that do not fit are refused with
:class:`~evalsuite.errors.UnsupportedModelError` (see docs/ARCHITECTURES.md).
"""

from __future__ import annotations

import copy
import inspect
import operator
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import torch
from torch import nn

from evalsuite.errors import InvalidRecipeError, UnsupportedModelError
from evalsuite.io import atomic_folder
from evalsuite.model._router_tap import (
    add_router_mask,
    bias_drops,
    clear_masks,
    push_selection_bias,
    remove_router_mask,
    router_drops,
    tap_router,
    unpush_selection_bias,
)

__all__ = [
    "COUNT_ATTRS",
    "TOPK_ATTRS",
    "ExpertTensor",
    "MaskHandle",
    "MoEBlock",
    "MoEModel",
    "WeightHandle",
]

#: attribute / config-field names that hold a layer's routed-expert count
COUNT_ATTRS = (
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "moe_num_experts",
    "num_routed_experts",
    "n_experts",
)
TOPK_ATTRS = ("top_k", "num_experts_per_tok", "topk", "moe_topk", "moe_k", "top_k_experts")
_GROUP_ATTRS = ("num_group", "n_group", "num_groups", "n_groups", "num_expert_group")
_TOPK_GROUP_ATTRS = ("topk_group", "topk_groups", "num_topk_groups")
_ROUTER_NAMES = ("gate", "router")
_SELECTION_BIAS = re.compile(r"(correction_bias|^expert_bias|selection_bias)$")
_MASK_BIAS = 1e9


def _model_type(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", type(model).__name__))


@dataclass(eq=False)
class ExpertTensor:
    """One tensor with an expert axis: a fused expert weight/bias, a router row set or a selection bias."""

    owner: nn.Module
    attr: str
    qualname: str
    axis: int
    role: str  # "expert" | "router" | "selection_bias"

    @property
    def tensor(self) -> torch.Tensor:
        return getattr(self.owner, self.attr)

    def replace(self, new: torch.Tensor) -> None:
        """Swap in a new tensor (removal changes the shape, so in-place is impossible)."""
        old = self.tensor
        if self.attr in self.owner._parameters:
            self.owner._parameters[self.attr] = nn.Parameter(new, requires_grad=old.requires_grad)
        else:
            self.owner._buffers[self.attr] = new


@dataclass(eq=False)
class MoEBlock:
    """One MoE block; ``layer`` is the decoder-layer index taken from the module path."""

    layer: int
    name: str
    module: nn.Module
    router: nn.Module
    experts: nn.Module
    num_experts: int
    top_k: int
    routing_rule: str
    router_name: str = ""
    router_weight: ExpertTensor | None = None
    tensors: list[ExpertTensor] = field(default_factory=list)
    selection_bias: ExpertTensor | None = None
    n_group: int = 1
    topk_group: int = 1
    score_fn: str = "softmax"

    @property
    def expert_tensors(self) -> list[ExpertTensor]:
        return [t for t in self.tensors if t.role == "expert"]

    def expert_output(self, hidden: torch.Tensor, expert: int, weight_dtype: torch.dtype | None = None) -> torch.Tensor:
        """f_j(x) through the model's own experts code: route every row to ``expert`` with weight 1."""
        hidden = hidden.reshape(-1, hidden.shape[-1])
        index = torch.full((hidden.shape[0],), int(expert), dtype=torch.long, device=hidden.device)
        return self.pair_outputs(hidden, index, weight_dtype)

    def pair_outputs(
        self,
        hidden: torch.Tensor,
        experts: torch.Tensor,
        weight_dtype: torch.dtype | None = None,
        chunk: int = 8192,
    ) -> torch.Tensor:
        """Row i -> f_{experts[i]}(hidden[i]): one top-1 experts() call per ``chunk`` rows, any mix of experts."""
        hidden = hidden.reshape(-1, hidden.shape[-1])
        experts = experts.reshape(-1).to(device=hidden.device, dtype=torch.long)
        outs = []
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk]
            index = experts[start : start + chunk, None]
            weights = torch.ones(index.shape, dtype=weight_dtype or hidden.dtype, device=hidden.device)
            outs.append(self.experts(h, index, weights))
        return torch.cat(outs) if outs else hidden.new_zeros(0, hidden.shape[-1])


class _Handle:
    """Shared restore / context-manager protocol of the reversible operations."""

    def __init__(self, owner: MoEModel) -> None:
        self._owner = owner
        self.active = True
        owner._live.add(self)

    def _undo(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def restore(self) -> None:
        """Undo the operation (idempotent)."""
        if self.active:
            self._undo()
            self.active = False
            self._owner._live.discard(self)

    def commit(self) -> None:
        """Keep the change and forget how to undo it (lets remove/merge/save proceed)."""
        if self.active:
            self.active = False
            self._owner._live.discard(self)
            self._commit()

    def _commit(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


class MaskHandle(_Handle):
    """Active expert mask; ``restore()`` (or leaving the ``with`` block) removes it."""

    _next_key = 0

    def __init__(self, owner: MoEModel, drop: dict[int, list[int]]) -> None:
        super().__init__(owner)
        owner._live.discard(self)  # masks are tracked on the model itself, not per wrapper
        self.drop = drop
        MaskHandle._next_key += 1
        self.key = MaskHandle._next_key
        self._routers: list[nn.Module] = []
        self._biases: list[tuple[nn.Module, str, int, list[int]]] = []

    def _undo(self) -> None:
        for router in self._routers:
            remove_router_mask(router, self.key)
        for owner, attr, axis, experts in self._biases:
            unpush_selection_bias(owner, attr, axis, experts)

    def commit(self) -> None:
        raise InvalidRecipeError(
            "a mask cannot be committed (it lives in hooks, not weights); use MoEModel.remove() with the kept "
            "experts, or save(path, physical=True), to drop experts for good"
        )


class WeightHandle(_Handle):
    """Saved slices of tensors changed in place (scaled router rows, zeroed experts).

    Overlapping scale/zero handles on the same experts must be restored in reverse order (last first).
    """

    def __init__(self, owner: MoEModel) -> None:
        super().__init__(owner)
        self._saved: list[tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]] = []

    def save_slices(self, tensor: torch.Tensor, axis: int, index: torch.Tensor) -> None:
        self._saved.append((tensor, axis, index, tensor.detach().index_select(axis, index).clone()))

    def _undo(self) -> None:
        with torch.no_grad():
            for tensor, axis, index, values in reversed(self._saved):
                tensor.index_copy_(axis, index, values)
        self._saved.clear()

    def _commit(self) -> None:
        self._saved.clear()


def _first_int_attr(objs: Iterable[Any], names: Sequence[str]) -> int | None:
    for obj in objs:
        if obj is None:
            continue
        for name in names:
            value = getattr(obj, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _layer_index(name: str, fallback: int) -> int:
    match = re.search(r"(?:^|\.)(\d+)(?:\.|$)", name)
    return int(match.group(1)) if match else fallback


def _bind_experts_args(experts: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, Any, Any] | None:
    """(hidden, top_k_index, top_k_weights) from an ``experts`` call, whatever the parameter names."""
    try:
        params = list(inspect.signature(type(experts).forward).parameters)[1:]
    except (TypeError, ValueError):
        params = []
    values = list(args) + [kwargs[p] for p in params[len(args) :] if p in kwargs]
    if len(values) < 3:
        return None
    return values[0], values[1], values[2]


class MoEModel:
    """Generic access to every MoE block of a transformers model (see module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):
            model = model.model  # a LoadedModel
        self.model = model
        self.model_type = _model_type(model)
        self._live: set[_Handle] = set()
        self.blocks: list[MoEBlock] = self._discover()
        self._config_count = self.blocks[0].num_experts if self._uniform() else None

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> list[MoEBlock]:
        looked_for = (
            "a sub-module with an `experts` child holding fused expert tensors [E, ...] and a "
            f"{'/'.join(_ROUTER_NAMES)} child with a router weight [E, hidden]"
        )
        blocks: list[MoEBlock] = []
        candidates = [
            (name, mod)
            for name, mod in self.model.named_modules()
            if isinstance(mod._modules.get("experts"), nn.Module)
        ]
        if not candidates:
            raise UnsupportedModelError(
                f"model_type {self.model_type!r} ({type(self.model).__name__}) has no MoE block: looked for "
                f"{looked_for}. Point evalsuite at a Mixture-of-Experts checkpoint."
            )
        for position, (name, mod) in enumerate(candidates):
            blocks.append(self._describe_block(name, mod, position, looked_for))
        self._probe(blocks)
        layers = [b.layer for b in blocks]
        if len(set(layers)) != len(layers):
            for i, b in enumerate(blocks):
                b.layer = i
        return blocks

    def _unsupported(self, name: str, why: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"model_type {self.model_type!r}: MoE block {name!r} is not supported: {why}. "
            "See docs/ARCHITECTURES.md for the supported architectures."
        )

    def _describe_block(self, name: str, mod: nn.Module, position: int, looked_for: str) -> MoEBlock:
        experts: nn.Module = mod._modules["experts"]
        fused = [(n, t) for n, t in experts.named_parameters(recurse=False) if t is not None and t.dim() >= 2]
        if not fused:
            kinds = sorted({type(c).__name__ for c in experts.children()})
            raise self._unsupported(
                name,
                f"`experts` ({type(experts).__name__}) holds no fused expert tensors [E, ...]; its experts are "
                f"separate sub-modules ({', '.join(kinds) or 'none'}). Looked for {looked_for}",
            )
        num_experts = int(fused[0][1].shape[0])
        tensors: list[ExpertTensor] = []
        own = list(experts.named_parameters(recurse=False)) + list(experts.named_buffers(recurse=False))
        for attr, t in own:
            if t is None or t.dim() == 0:
                continue
            if t.shape[0] != num_experts:
                raise self._unsupported(
                    name,
                    f"expert tensors disagree on the expert count ({fused[0][0]} has {num_experts}, "
                    f"{attr} has {t.shape[0]}; e.g. extra zero/identity experts)",
                )
            tensors.append(ExpertTensor(experts, attr, f"{name}.experts.{attr}", 0, "expert"))
        # the router
        router_name, router = None, None
        for rn in _ROUTER_NAMES:
            child = mod._modules.get(rn)
            if isinstance(child, nn.Module):
                router_name, router = rn, child
                break
        if router is None:
            raise self._unsupported(
                name, f"no router child named {' or '.join(_ROUTER_NAMES)}; looked for {looked_for}"
            )
        router_weight: ExpertTensor | None = None
        selection_bias: ExpertTensor | None = None
        owners = [(f"{name}.{router_name}.{sub}".rstrip("."), m) for sub, m in router.named_modules()]
        owners.append((name, mod))  # block-level expert-indexed tensors (e.g. an expert_bias on the block)
        for prefix, owner in owners:
            recurse_items = list(owner.named_parameters(recurse=False)) + list(owner.named_buffers(recurse=False))
            for attr, t in recurse_items:
                if t is None or t.dim() == 0:
                    continue
                if not t.is_floating_point():
                    if owner is mod:
                        continue
                    raise self._unsupported(
                        name,
                        f"router tensor {prefix}.{attr} is an integer table {tuple(t.shape)} (hash routing: token "
                        "ids -> expert ids), which index operations cannot remap",
                    )
                axes = [i for i, s in enumerate(t.shape) if s == num_experts]
                if not axes:
                    continue
                role = "selection_bias" if _SELECTION_BIAS.search(attr) else "router"
                et = ExpertTensor(owner, attr, f"{prefix}.{attr}", axes[0], role)
                tensors.append(et)
                if role == "selection_bias":
                    if selection_bias is not None:
                        raise self._unsupported(name, "more than one selection bias")
                    selection_bias = et
                elif (
                    t.dim() == 2
                    and et.axis == 0
                    and owner is not mod
                    and (router_weight is None or (attr == "weight" and router_weight.attr != "weight"))
                ):
                    router_weight = et
        if router_weight is None:
            raise self._unsupported(
                name, f"router {router_name!r} ({type(router).__name__}) has no weight of shape [{num_experts}, hidden]"
            )
        config = getattr(self.model, "config", None)
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        top_k = _first_int_attr([router, mod, text_config], TOPK_ATTRS)
        # groups: the router's own attribute, else the config's (conservative: refuses more keep-sets)
        n_group = _first_int_attr([router, mod], _GROUP_ATTRS) or _first_int_attr([text_config], ("n_group",)) or 1
        topk_group = _first_int_attr([router, mod, text_config], _TOPK_GROUP_ATTRS) or 1
        block = MoEBlock(
            layer=_layer_index(name, position),
            name=name,
            module=mod,
            router=router,
            experts=experts,
            num_experts=num_experts,
            top_k=int(top_k or 0),
            routing_rule="",
            router_name=router_name or "",
            router_weight=router_weight,
            tensors=tensors,
            selection_bias=selection_bias,
            n_group=max(1, n_group),
            topk_group=max(1, topk_group),
        )
        return block

    def _probe(self, blocks: list[MoEBlock]) -> None:
        """Run each block once on random input to confirm the experts interface and infer the routing rule.

        Blocks that cannot run alone (e.g. a whole decoder layer that needs position embeddings) are
        probed together through one forward of the full model on a few token ids instead.
        """
        failed: list[tuple[MoEBlock, Exception]] = []
        for block in blocks:
            weight = block.router_weight.tensor
            gen = torch.Generator(device="cpu").manual_seed(1234)
            x = torch.randn(1, 16, int(weight.shape[1]), generator=gen)
            x = x.to(device=weight.device, dtype=self._compute_dtype(block))
            try:
                seen = self._observe([block], lambda b=block, x=x: b.module(x))
            except Exception as exc:  # noqa: BLE001 - retried through the full model below
                failed.append((block, exc))
                continue
            self._check_call(block, *seen[0])
        if not failed:
            return
        try:
            seen = self._observe([b for b, _ in failed], self._model_probe_input())
        except Exception as exc:  # noqa: BLE001 - any failure means the layout is not understood
            block, block_exc = failed[0]
            raise self._unsupported(
                block.name,
                f"running the block on a probe input failed ({type(block_exc).__name__}: {block_exc}; "
                f"full-model probe: {type(exc).__name__}: {exc})",
            ) from exc
        for (block, _), observed in zip(failed, seen, strict=True):
            self._check_call(block, *observed)

    def _model_probe_input(self) -> Any:
        config = getattr(self.model, "config", None)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        vocab = int(getattr(text, "vocab_size", 0) or 32)
        embeddings = self.model.get_input_embeddings() if hasattr(self.model, "get_input_embeddings") else None
        device = embeddings.weight.device if embeddings is not None else next(self.model.parameters()).device
        ids = (torch.arange(3, 19, device=device) * 7919 % max(vocab - 3, 1) + 3).unsqueeze(0)
        return lambda: self.model(input_ids=ids, use_cache=False)

    def _observe(self, blocks: list[MoEBlock], run: Any) -> list[tuple[Any, list[torch.Tensor]]]:
        """Run ``run()`` in eval/no-grad with hooks; per block: the first experts call and router logits."""
        seen: list[dict[str, Any]] = [{} for _ in blocks]
        logits: list[list[torch.Tensor]] = [[] for _ in blocks]
        handles = []
        for i, block in enumerate(blocks):

            def hook(module: nn.Module, args: tuple, kwargs: dict, _i: int = i) -> None:
                if "call" not in seen[_i]:
                    seen[_i]["call"] = _bind_experts_args(module, args, kwargs)

            handles.append(block.experts.register_forward_pre_hook(hook, with_kwargs=True))
            handles += tap_router(block.router, lambda b=block: b.router_weight.tensor, block.num_experts,
                                  record=logits[i].append)
        modes = {m: m.training for m in self.model.modules()}
        try:
            self.model.eval()
            with torch.no_grad():
                run()
        finally:
            for h in handles:
                h.remove()
            for m, training in modes.items():
                m.training = training
        return [(s.get("call"), lg) for s, lg in zip(seen, logits, strict=True)]

    def _check_call(self, block: MoEBlock, call: Any, logits: list[torch.Tensor]) -> None:
        if call is None or not all(isinstance(v, torch.Tensor) for v in call):
            raise self._unsupported(
                block.name,
                f"`experts` ({type(block.experts).__name__}) is not called as experts(hidden, top_k_index, "
                "top_k_weights), so the routing decision cannot be observed (e.g. dense all-expert compute)",
            )
        hidden, index, weights = call
        if index.is_floating_point() or index.shape != weights.shape or index.dim() != 2:
            raise self._unsupported(
                block.name,
                f"`experts` is called with index {tuple(index.shape)} / weights {tuple(weights.shape)} instead of "
                "[tokens, top_k] each",
            )
        if block.top_k != index.shape[1]:
            block.top_k = int(index.shape[1])
        block.routing_rule, block.score_fn = _infer_rule(block, logits[0] if logits else None, index, weights)

    @staticmethod
    def _compute_dtype(block: MoEBlock) -> torch.dtype:
        dtype = block.expert_tensors[0].tensor.dtype if block.expert_tensors else block.router_weight.tensor.dtype
        return dtype if dtype.is_floating_point else torch.float32

    # ------------------------------------------------------------------ lookup / describe
    def block(self, layer: int) -> MoEBlock:
        """The MoE block of decoder layer ``layer``."""
        for b in self.blocks:
            if b.layer == layer:
                return b
        raise InvalidRecipeError(
            f"layer {layer} has no MoE block in this {self.model_type!r} model; MoE layers are "
            f"{[b.layer for b in self.blocks]}"
        )

    @property
    def layers(self) -> list[int]:
        return [b.layer for b in self.blocks]

    def describe(self) -> list[dict[str, Any]]:
        """Per MoE layer: expert count, top-k, routing rule, active masks and the expert-indexed tensors found."""
        out = []
        masked = self.masked()
        for b in self.blocks:
            out.append(
                {
                    "layer": b.layer,
                    "name": b.name,
                    "experts": b.num_experts,
                    "top_k": b.top_k,
                    "routing_rule": b.routing_rule,
                    "router": f"{b.name}.{b.router_name} ({type(b.router).__name__})",
                    "selection_bias": b.selection_bias.qualname if b.selection_bias else None,
                    "groups": {"n_group": b.n_group, "topk_group": b.topk_group} if b.n_group > 1 else None,
                    "masked": masked.get(b.layer, []),
                    "expert_tensors": {t.qualname: {"axis": t.axis, "role": t.role} for t in b.tensors},
                }
            )
        return out

    # ------------------------------------------------------------------ validation helpers
    def _check_indices(self, block: MoEBlock, experts: Iterable[int], what: str) -> list[int]:
        values = []
        for e in experts:
            try:
                if isinstance(e, bool):
                    raise TypeError
                values.append(operator.index(e))
            except TypeError:
                raise InvalidRecipeError(
                    f"{what} for layer {block.layer}: expert ids must be ints, got {e!r}"
                ) from None
        out_of_range = [e for e in values if not 0 <= e < block.num_experts]
        if out_of_range:
            raise InvalidRecipeError(
                f"{what} for layer {block.layer}: expert ids {out_of_range} out of range 0..{block.num_experts - 1}"
            )
        if len(set(values)) != len(values):
            raise InvalidRecipeError(f"{what} for layer {block.layer}: duplicate expert ids in {values}")
        return [int(e) for e in values]

    def _group_of(self, block: MoEBlock, expert: int) -> int:
        return expert // (block.num_experts // block.n_group)

    def _check_keep(self, block: MoEBlock, keep: list[int], what: str) -> None:
        if len(keep) < block.top_k:
            raise InvalidRecipeError(
                f"{what} for layer {block.layer} keeps {len(keep)} experts, fewer than top_k={block.top_k}; "
                "keep at least top_k experts per layer"
            )
        if block.n_group > 1:
            per_group = [0] * block.n_group
            for e in keep:
                per_group[self._group_of(block, e)] += 1
            if len(set(per_group)) != 1 or per_group[0] < 2:
                raise InvalidRecipeError(
                    f"{what} for layer {block.layer} breaks the expert groups: the router selects among "
                    f"{block.n_group} groups of {block.num_experts // block.n_group} experts, so every group must "
                    f"keep the same number (>= 2) of experts; this keep-set keeps {per_group} per group"
                )
            if per_group[0] * block.topk_group < block.top_k:
                raise InvalidRecipeError(
                    f"{what} for layer {block.layer}: {per_group[0]} experts per group x topk_group="
                    f"{block.topk_group} < top_k={block.top_k}"
                )

    def _check_mask(self, block: MoEBlock, drop: list[int]) -> None:
        remaining = block.num_experts - len(drop)
        if remaining < block.top_k:
            raise InvalidRecipeError(
                f"mask for layer {block.layer} leaves {remaining} experts, fewer than top_k={block.top_k}"
            )
        if block.n_group > 1:
            size = block.num_experts // block.n_group
            dropped = set(drop)
            alive = [sum(1 for e in range(g * size, (g + 1) * size) if e not in dropped) for g in range(block.n_group)]
            # worst case: the router picks the topk_group groups with the fewest unmasked experts (a group
            # scored by its best expert can win with a single one); they must still hold top_k experts
            usable = sorted(a for a in alive if a >= 1)
            if len(usable) < block.topk_group or sum(usable[: block.topk_group]) < block.top_k:
                raise InvalidRecipeError(
                    f"mask for layer {block.layer} leaves {alive} unmasked experts per group; the router picks "
                    f"{block.topk_group} of {block.n_group} groups and then top_k={block.top_k} experts, so masked "
                    "experts could still be selected. Mask fewer experts in the affected groups"
                )

    def _require_no_live(self, what: str) -> None:
        masked = self.masked()
        if masked:
            raise InvalidRecipeError(
                f"{what} changes expert indices, but experts are masked ({masked}); restore the mask handle first "
                "(the keep-set of a removal already expresses what a mask would)"
            )
        if self._live:
            raise InvalidRecipeError(
                f"{what} changes expert indices, but {len(self._live)} mask/scale/zero handle(s) are still active; "
                "call handle.restore() (or handle.commit() for scale/zero) first"
            )

    # ------------------------------------------------------------------ masking
    def mask(self, drop: dict[int, list[int]]) -> MaskHandle:
        """Stop routing to ``drop`` experts in place (no weight copy); reversible via the handle.

        Every router gets a large negative additive bias on its logits (inside the router call), so the
        model's own softmax/sigmoid/top-k works on the remaining experts exactly as if the masked ones
        were removed (softmax denominators included). Routers that select with a separate bias
        (``e_score_correction_bias``) also get that bias pushed down: with sigmoid scores a masked
        logit only zeroes the score, and the bias alone could still select the expert.
        """
        plan = []
        for layer, experts in drop.items():
            block = self.block(layer)
            ids = self._check_indices(block, experts, "mask")
            already = self.masked().get(block.layer, [])
            self._check_mask(block, sorted(set(ids) | set(already)))
            if ids:
                plan.append((block, ids))
        handle = MaskHandle(self, {b.layer: ids for b, ids in plan})
        for block, ids in plan:
            add_router_mask(block.router, self._weight_path(block), handle.key, ids)
            handle._routers.append(block.router)
            sb = block.selection_bias
            if sb is not None:
                push_selection_bias(sb.owner, sb.attr, sb.axis, ids)
                handle._biases.append((sb.owner, sb.attr, sb.axis, ids))
        return handle

    @staticmethod
    def _weight_path(block: MoEBlock) -> str:
        prefix = f"{block.name}.{block.router_name}."
        return block.router_weight.qualname[len(prefix) :]

    def masked(self) -> dict[int, list[int]]:
        """Layer -> experts currently masked on this model (by any wrapper or handle)."""
        out: dict[int, list[int]] = {}
        for b in self.blocks:
            drops = router_drops(b.router)
            if b.selection_bias is not None:
                drops |= bias_drops(b.selection_bias.owner, b.selection_bias.attr)
            if drops:
                out[b.layer] = sorted(drops)
        return out

    def clear_masks(self) -> None:
        """Remove every mask (including ones a deepcopy inherited from a masked original)."""
        for b in self.blocks:
            sb = b.selection_bias
            clear_masks(b.router, sb.owner if sb else None, sb.attr if sb else None, sb.axis if sb else 0)

    # ------------------------------------------------------------------ soft operations
    def scale_router_rows(self, layer: int, experts: Sequence[int], factor: float) -> WeightHandle:
        """Multiply the router weight rows of ``experts`` by ``factor`` (soft pruning); reversible."""
        block = self.block(layer)
        ids = self._check_indices(block, experts, "scale_router_rows")
        handle = WeightHandle(self)
        et = block.router_weight
        t = et.tensor
        index = torch.as_tensor(ids, dtype=torch.long, device=t.device)
        handle.save_slices(t.data, et.axis, index)
        with torch.no_grad():
            t.index_copy_(et.axis, index, t.index_select(et.axis, index) * factor)
        return handle

    def zero_experts(self, layer: int, experts: Sequence[int]) -> WeightHandle:
        """Zero every expert tensor (weights and biases) of ``experts``; router untouched; reversible."""
        block = self.block(layer)
        ids = self._check_indices(block, experts, "zero_experts")
        handle = WeightHandle(self)
        for et in block.expert_tensors:
            t = et.tensor
            index = torch.as_tensor(ids, dtype=torch.long, device=t.device)
            handle.save_slices(t.data, et.axis, index)
            with torch.no_grad():
                t.index_fill_(et.axis, index, 0)
        return handle

    # ------------------------------------------------------------------ structural operations
    def remove(self, keep: dict[int, list[int]]) -> None:
        """Physically keep only ``keep`` experts per listed layer (sorted by id); updates counts + config."""
        self._require_no_live("remove()")
        plan = []
        for layer, experts in keep.items():
            block = self.block(layer)
            ids = sorted(self._check_indices(block, experts, "keep-set"))
            self._check_keep(block, ids, "keep-set")
            plan.append((block, ids))
        for block, ids in plan:
            self._slice_block(block, ids)
        self._sync_config()
        self._probe([b for b, _ in plan])  # every changed block must still run and route over its new count

    def _slice_block(self, block: MoEBlock, ids: list[int]) -> None:
        old = block.num_experts
        new = len(ids)
        if ids == list(range(old)):
            return
        with torch.no_grad():
            for et in block.tensors:
                t = et.tensor
                index = torch.as_tensor(ids, dtype=torch.long, device=t.device)
                et.replace(t.detach().index_select(et.axis, index).contiguous())
        for sub in block.module.modules():
            for attr in COUNT_ATTRS:
                value = sub.__dict__.get(attr)
                if isinstance(value, int) and not isinstance(value, bool) and value == old:
                    setattr(sub, attr, new)
        block.num_experts = new

    def _uniform(self) -> bool:
        return len({b.num_experts for b in self.blocks}) == 1

    def _sync_config(self) -> None:
        """Config count fields and top-level count attributes follow the (uniform) per-layer count."""
        counts = {b.num_experts for b in self.blocks}
        new = max(counts)
        old = self._config_count
        if old is None or old == new:
            return
        config = getattr(self.model, "config", None)
        configs = [config]
        if hasattr(config, "get_text_config"):
            configs.append(config.get_text_config())
        for cfg in {id(c): c for c in configs if c is not None}.values():
            for attr in COUNT_ATTRS:
                value = getattr(cfg, attr, None)
                if isinstance(value, int) and not isinstance(value, bool) and value == old:
                    setattr(cfg, attr, new)
        in_blocks = {id(m) for b in self.blocks for m in b.module.modules()}
        for sub in self.model.modules():
            if id(sub) in in_blocks:
                continue
            for attr in COUNT_ATTRS:
                value = sub.__dict__.get(attr)
                if isinstance(value, int) and not isinstance(value, bool) and value == old:
                    setattr(sub, attr, new)
        self._config_count = new

    def merge(
        self,
        groups: dict[int, list[list[int]]],
        weights: dict[int, list[list[float]]] | None = None,
        merge_router: bool = True,
    ) -> None:
        """Average each group into its first member (the survivor), then remove the other members.

        Every expert-indexed tensor is averaged with the (normalised) ``weights`` (uniform by default):
        fused expert weights and biases, and with ``merge_router`` the router rows, router bias and
        selection bias too; with ``merge_router=False`` the survivor keeps its own router row.
        """
        self._require_no_live("merge()")
        plan = []
        keep: dict[int, list[int]] = {}
        for layer, glist in groups.items():
            block = self.block(layer)
            flat = self._check_indices(block, [e for g in glist for e in g], "merge groups")
            if any(len(g) == 0 for g in glist):
                raise InvalidRecipeError(f"merge groups for layer {layer}: empty group in {glist}")
            layer_weights = (weights or {}).get(layer)
            norm: list[list[float]] = []
            for gi, g in enumerate(glist):
                w = [1.0] * len(g) if layer_weights is None else [float(v) for v in layer_weights[gi]]
                if len(w) != len(g) or any(v < 0 for v in w) or sum(w) <= 0:
                    raise InvalidRecipeError(
                        f"merge weights for layer {layer}, group {g}: need {len(g)} non-negative weights with a "
                        f"positive sum, got {w}"
                    )
                norm.append([v / sum(w) for v in w])
            removed = {e for g in glist for e in g[1:]}
            keep[layer] = [e for e in range(block.num_experts) if e not in removed]
            self._check_keep(block, keep[layer], "merge (experts left after merging)")
            del flat
            plan.append((block, glist, norm))
        with torch.no_grad():
            for block, glist, norm in plan:
                for g, w in zip(glist, norm, strict=True):
                    if len(g) < 2:
                        continue
                    for et in block.tensors:
                        if et.role != "expert" and not merge_router:
                            continue
                        t = et.tensor
                        acc = sum(wi * t.select(et.axis, e).to(torch.float64) for wi, e in zip(w, g, strict=True))
                        t.select(et.axis, g[0]).copy_(acc.to(t.dtype))
        self.remove(keep)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str], *, physical: bool = False) -> Path:
        """Write a standard safetensors checkpoint that ``from_pretrained`` loads without evalsuite.

        Masks live in hooks, not weights, so saving a masked model needs ``physical=True``: the masked
        experts are then removed on a deep copy (the live model keeps its masks) and the copy is saved.
        Written to a temporary folder next to ``path`` and moved into place, so a reader never sees a
        half-written checkpoint.
        """
        masked = self.masked()
        if masked and not physical:
            raise InvalidRecipeError(
                f"save(): experts are masked ({masked}); a mask lives in hooks, not weights, so it would be lost. "
                "Pass physical=True to save them removed, or restore the mask first"
            )
        if masked:
            counts = {b.layer: b.num_experts - len(masked.get(b.layer, [])) for b in self.blocks}
            if len(set(counts.values())) != 1:
                raise InvalidRecipeError(
                    f"save(physical=True): the masks leave different expert counts per layer {counts}, which a "
                    "standard transformers config cannot express; mask the same number of experts in every layer"
                )
            clone = MoEModel(copy.deepcopy(self.model))
            clone.clear_masks()
            clone.remove(
                {b.layer: [e for e in range(b.num_experts) if e not in masked.get(b.layer, [])] for b in clone.blocks}
            )
            return clone.save(path)
        if not self._uniform():
            raise InvalidRecipeError(
                "save(): MoE layers now have different expert counts "
                f"{ {b.layer: b.num_experts for b in self.blocks} }, which a standard transformers config cannot "
                "express; keep the same number of experts in every MoE layer to save a checkpoint"
            )
        target = Path(path)
        with atomic_folder(target) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
        return target


def _infer_rule(
    block: MoEBlock, logits: torch.Tensor | None, index: torch.Tensor, weights: torch.Tensor
) -> tuple[str, str]:
    """Describe the routing rule from one observed decision (no per-architecture tables)."""
    k = index.shape[1]
    extras = []
    if any(t.role == "router" and "bias" in t.attr and t.tensor.dim() == 1 for t in block.tensors):
        extras.append("router logit bias")
    if block.selection_bias is not None:
        extras.append(f"selection bias {block.selection_bias.attr}")
    if block.n_group > 1:
        extras.append(f"{block.n_group} expert groups, top-{block.topk_group} groups")
    if logits is None:
        return ", ".join([f"top-{k} (router logits not observed)"] + extras), "softmax"
    z = logits.detach().reshape(-1, logits.shape[-1]).double()
    w = weights.detach().double()
    idx = index.detach()
    if z.shape[0] != idx.shape[0]:
        return ", ".join([f"top-{k}"] + extras), "softmax"
    found = None
    rtol = 1e-3 if weights.dtype in (torch.float32, torch.float64) else 2e-2  # bf16/fp16 weights are coarse
    for score_fn, scores in (("softmax", z.softmax(-1)), ("sigmoid", z.sigmoid())):
        picked = scores.gather(1, idx)
        for renorm, cand in ((True, picked / picked.sum(-1, keepdim=True)), (False, picked)):
            ratio = w / cand.clamp_min(1e-300)
            scale = float(ratio.mean())
            if torch.allclose(ratio, torch.full_like(ratio, scale), rtol=rtol, atol=1e-6):
                found = (score_fn, renorm, scale if abs(scale - 1.0) > 2 * rtol else 1.0)
                break
        if found:
            break
    if found is None:
        return ", ".join([f"top-{k}", "custom gate weights (not softmax/sigmoid of the logits)"] + extras), "softmax"
    score_fn, renorm, scale = found
    parts = [score_fn, f"top-{k}"]
    if renorm and k > 1:
        parts.append("renormalised")
    if scale != 1.0:
        parts.append(f"x{scale:.4g}" if rtol < 1e-2 else f"x{scale:.2g}")
    return ", ".join(parts + extras), score_fn
