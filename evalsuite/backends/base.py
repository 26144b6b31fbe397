"""What the gate asks of a model, whatever runs it: the backend interface and its request types.

Why one small interface: the gate's checks need four things from a model, and a serving engine
(vLLM, any OpenAI-compatible server) can give all four as well as transformers in-process can:

- ``generate``: greedy continuations with stop strings, optionally with the top-k log-probs of each
  new token (what a baseline stores);
- ``score``: teacher-forced log-probs of a given continuation (the divergence check scores the
  baseline's response under the model under test), top-k plus the log-probs of asked-for ids;
- ``loglikelihood_rolling``: per-document log-likelihood (perplexity);
- ``multiple_choice``: per-item log-likelihood of each choice after its context (MC accuracy).

Prompts cross the interface as token ids, encoded once by the gate with the checkpoint's tokenizer,
so every backend sees exactly the tokens a baseline was recorded on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from evalsuite.gate.lm_eval_checks import DocLoglik, McItem
from evalsuite.model.generation import Generation, TokenScores

__all__ = ["Backend", "EngineInfo", "GenerateRequest", "ScoreRequest", "BACKENDS"]

#: the backends a user can choose (`backend = ...` in [tool.evalsuite], --evalsuite-backend)
BACKENDS = ("hf", "vllm", "openai")


@dataclass(frozen=True)
class GenerateRequest:
    """One greedy continuation: prompt ids, a new-token budget and the strings that end it early."""

    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreRequest:
    """Teacher-forced scoring of ``continuation_ids`` after ``prompt_ids``; ``gather[t]`` lists ids whose
    log-probs are wanted at continuation position t (the baseline's top-k, for a KL on one support)."""

    prompt_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    gather: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class EngineInfo:
    """What produced a model's outputs; stored with every baseline (the backend is part of its key)."""

    backend: str
    dtype: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """A model the gate can query; results are in request order and do not depend on batching."""

    info: EngineInfo

    def generate(self, requests: Sequence[GenerateRequest], *, top_k: int = 0) -> list[Generation]:
        """Greedy continuations; with ``top_k`` > 0 each carries ``.scores`` (top-k log-probs per new token)."""
        ...

    def sample(self, requests: Sequence[GenerateRequest], *, n: int, temperature: float,
               seed: int) -> list[list[Generation]]:
        """``n`` seeded temperature samples per request (code pass@k); a prompt's samples depend only on
        the model, the prompt, ``seed`` and ``n`` (see model.generation.generate_sampled)."""
        ...

    def score(self, requests: Sequence[ScoreRequest], *, top_k: int) -> list[TokenScores]:
        """Teacher-forced log-probs of each continuation (token, top-k, gathered ids)."""
        ...

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[DocLoglik]:
        """Per-document rolling log-likelihood (lm-eval's `loglikelihood_rolling` convention)."""
        ...

    def multiple_choice(self, items: Sequence[dict[str, Any]]) -> list[McItem]:
        """Per-item multiple-choice outcome from each choice's log-likelihood after the context."""
        ...

    def close(self) -> None:
        """Release what the backend holds (a server process, a connection)."""
        ...
