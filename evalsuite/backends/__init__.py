"""Backends: what runs the model under test (see base.py for the interface and docs/backends.md).

    hf      transformers in-process (device_map / offload through accelerate); masks in place,
            routing statistics
    vllm    a vLLM OpenAI-compatible server that evalsuite starts (or one at server_url); recipe
            variants are exported as checkpoints and served
    openai  any OpenAI-compatible completions server at server_url
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalsuite.backends.base import BACKENDS, Backend, EngineInfo, GenerateRequest, ScoreRequest

if TYPE_CHECKING:
    from evalsuite.config import GateSettings
    from evalsuite.gate.models import ActiveModel

__all__ = ["BACKENDS", "Backend", "EngineInfo", "GenerateRequest", "ScoreRequest", "make_backend"]


def make_backend(settings: GateSettings, active: ActiveModel) -> Backend:
    """The configured backend for the variant under test."""
    if settings.backend == "hf":
        from evalsuite.backends.hf import HFBackend

        return HFBackend(active.model, active.tokenizer, batch_size=settings.batch_size)
    from evalsuite.backends.vllm import server_backend

    return server_backend(settings, active)
