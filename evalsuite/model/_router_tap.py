"""Observe and bias router logits without touching router code or copying router weights.

Every transformers MoE router computes its logits with one matmul of the hidden states against an
``[E, H]`` weight (``F.linear``, ``nn.Linear`` or ``@``), and then applies its own routing rule
(softmax / sigmoid, selection bias, groups, renormalisation). A :class:`TorchFunctionMode` that is
active only while the router module runs can see that matmul: it adds an additive mask to the logits
(masking, so the model's own routing rule picks among the remaining experts) and/or records the
logits (routing statistics). The weight is never copied or modified, so this is in place and
reversible by removing two hooks.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

_LOGIT_OPS = {
    F.linear,
    torch.matmul,
    torch.mm,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.Tensor.mm,
}


class _RouterMode(TorchFunctionMode):
    """Adds ``bias`` to (and/or reports) the first logits computed from ``weight`` (or a view/cast of it).

    ``weight`` may be a callable returning the router's weight *now*: a module dispatched by accelerate
    (offloaded to CPU or disk) gets its real weight swapped in inside its forward, after forward
    pre-hooks ran, so the tensor the matmul sees is only known at matmul time.
    """

    def __init__(
        self,
        weight: torch.Tensor | Callable[[], torch.Tensor],
        num_experts: int,
        bias: torch.Tensor | None,
        record: Callable[[torch.Tensor], None] | None,
    ) -> None:
        super().__init__()
        self.live = weight if callable(weight) else (lambda: weight)
        self.tracked: list[torch.Tensor] = []
        self.numel = self.live().numel()
        self.num_experts = num_experts
        self.bias = bias
        self.record = record
        self.done = False

    def _is_tracked(self, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor) and (obj is self.live() or any(obj is t for t in self.tracked))

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.done or not isinstance(out, torch.Tensor):
            return out
        if func in _LOGIT_OPS:
            operands = list(args[:2]) + [kwargs.get("weight")]
            if any(self._is_tracked(a) for a in operands) and out.shape[-1] == self.num_experts:
                self.done = True
                if self.bias is not None and out.is_floating_point():
                    floor = torch.finfo(out.dtype).min / 4
                    out = out + self.bias.clamp(min=floor).to(device=out.device, dtype=out.dtype)
                if self.record is not None:
                    self.record(out)
            return out
        # casts, transposes and views of the weight (``weight.float()``, ``weight.T``) stay tracked
        if args and self._is_tracked(args[0]) and out.numel() == self.numel:
            self.tracked.append(out)
        return out


def tap_router(
    router: nn.Module,
    weight: torch.Tensor | Callable[[], torch.Tensor],
    num_experts: int,
    *,
    bias: torch.Tensor | None = None,
    record: Callable[[torch.Tensor], None] | None = None,
) -> list[RemovableHandle]:
    """Install the mode around every call of ``router``; returns the hook handles to remove."""
    stack: list[_RouterMode] = []

    def pre_hook(module: nn.Module, args: Any) -> None:
        mode = _RouterMode(weight, num_experts, bias, record)
        mode.__enter__()
        stack.append(mode)

    def post_hook(module: nn.Module, args: Any, output: Any) -> None:
        if stack:
            stack.pop().__exit__(None, None, None)

    return [
        router.register_forward_pre_hook(pre_hook),
        router.register_forward_hook(post_hook, always_call=True),
    ]


def mask_bias(num_experts: int, drop: list[int], device: torch.device) -> torch.Tensor:
    """A finite, very negative additive logit bias (finite so softmax never sees ``-inf - -inf``)."""
    bias = torch.zeros(num_experts, dtype=torch.float32, device=device)
    if drop:
        bias[torch.as_tensor(drop, dtype=torch.long, device=device)] = -1e9
    return bias


# ---------------------------------------------------------------------------------------------------
# Persistent (until restored) masks. The mask state lives on the router module itself, so every
# MoEModel wrapper of the same model sees it, and a deepcopy of a masked model stays masked.
# ---------------------------------------------------------------------------------------------------
MASK_ATTR = "_evalsuite_masks"  # on the router: {handle key: dropped expert ids}
BIAS_ATTR = "_evalsuite_bias_masks"  # on the selection-bias owner: {(attr, expert): [count, original]}
_STACK_ATTR = "_evalsuite_mask_modes"
_BIAS_CACHE_ATTR = "_evalsuite_mask_bias"
_MASK_HOOKS: weakref.WeakKeyDictionary[nn.Module, list[RemovableHandle]] = weakref.WeakKeyDictionary()


def _mask_pre_hook(weight_path: str, module: nn.Module, args: Any) -> None:
    stack = module.__dict__.setdefault(_STACK_ATTR, [])
    masks = module.__dict__.get(MASK_ATTR)
    if not masks:
        stack.append(None)
        return
    weight = module.get_parameter(weight_path)
    # an offloaded weight sits on the meta device until the forward loads it: keep the bias on the CPU
    device = weight.device if weight.device.type != "meta" else torch.device("cpu")
    drop = tuple(sorted(set().union(*masks.values())))
    cached = module.__dict__.get(_BIAS_CACHE_ATTR)
    if cached is None or cached[0] != (drop, device, int(weight.shape[0])):
        cached = (
            (drop, device, int(weight.shape[0])),
            mask_bias(int(weight.shape[0]), list(drop), device),
        )
        module.__dict__[_BIAS_CACHE_ATTR] = cached
    mode = _RouterMode(functools.partial(module.get_parameter, weight_path), int(weight.shape[0]), cached[1], None)
    mode.__enter__()
    stack.append(mode)


def _mask_post_hook(module: nn.Module, args: Any, output: Any) -> None:
    stack = module.__dict__.get(_STACK_ATTR)
    if stack:
        mode = stack.pop()
        if mode is not None:
            mode.__exit__(None, None, None)


def add_router_mask(router: nn.Module, weight_path: str, key: int, drop: list[int]) -> None:
    """Register ``drop`` under ``key``; the router's logits get -1e9 for the union of all registered drops."""
    masks = router.__dict__.setdefault(MASK_ATTR, {})
    masks[key] = tuple(drop)
    if router not in _MASK_HOOKS:
        _MASK_HOOKS[router] = [
            router.register_forward_pre_hook(functools.partial(_mask_pre_hook, weight_path)),
            router.register_forward_hook(_mask_post_hook, always_call=True),
        ]


def remove_router_mask(router: nn.Module, key: int) -> None:
    masks = router.__dict__.get(MASK_ATTR, {})
    masks.pop(key, None)
    if not masks:
        router.__dict__.pop(MASK_ATTR, None)
        router.__dict__.pop(_BIAS_CACHE_ATTR, None)
        for handle in _MASK_HOOKS.pop(router, []):
            handle.remove()


def router_drops(router: nn.Module) -> set[int]:
    masks = router.__dict__.get(MASK_ATTR) or {}
    return set().union(*masks.values()) if masks else set()


def push_selection_bias(owner: nn.Module, attr: str, axis: int, experts: list[int]) -> None:
    """Push the selection bias of ``experts`` far down; reference-counted so restores commute."""
    state = owner.__dict__.setdefault(BIAS_ATTR, {})
    t = getattr(owner, attr)
    value = -min(1e9, torch.finfo(t.dtype).max / 4)
    with torch.no_grad():
        for e in experts:
            entry = state.get((attr, e))
            if entry is None:
                state[(attr, e)] = [1, t.select(axis, e).clone()]
                t.select(axis, e).fill_(value)
            else:
                entry[0] += 1


def unpush_selection_bias(owner: nn.Module, attr: str, axis: int, experts: list[int]) -> None:
    state = owner.__dict__.get(BIAS_ATTR, {})
    t = getattr(owner, attr)
    with torch.no_grad():
        for e in experts:
            entry = state.get((attr, e))
            if entry is None:
                continue
            entry[0] -= 1
            if entry[0] == 0:
                t.select(axis, e).copy_(entry[1])
                del state[(attr, e)]
    if not state:
        owner.__dict__.pop(BIAS_ATTR, None)


def bias_drops(owner: nn.Module, attr: str) -> set[int]:
    state = owner.__dict__.get(BIAS_ATTR) or {}
    return {e for (a, e) in state if a == attr}


def clear_masks(router: nn.Module, bias_owner: nn.Module | None, attr: str | None, axis: int) -> None:
    """Drop every mask on this router (also masks a deepcopy inherited), restoring selection biases."""
    for key in list((router.__dict__.get(MASK_ATTR) or {}).keys()):
        remove_router_mask(router, key)
    router.__dict__.pop(MASK_ATTR, None)
    if bias_owner is not None and attr is not None:
        state = bias_owner.__dict__.get(BIAS_ATTR) or {}
        t = getattr(bias_owner, attr)
        with torch.no_grad():
            for (a, e), (_, original) in list(state.items()):
                if a == attr:
                    t.select(axis, e).copy_(original)
                    del state[(a, e)]
        if not state:
            bias_owner.__dict__.pop(BIAS_ATTR, None)
