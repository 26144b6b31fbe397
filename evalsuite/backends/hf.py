"""transformers in-process: the gate's original path, and the only backend that can mask experts in
place and collect routing statistics (both need the model's modules in this process)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from evalsuite.backends.base import EngineInfo, GenerateRequest, ScoreRequest
from evalsuite.gate import lm_eval_checks
from evalsuite.gate.lm_eval_checks import DocLoglik, McItem
from evalsuite.model.generation import Generation, TokenScores, generate_greedy, generate_sampled, score_responses

__all__ = ["HFBackend", "model_dtype"]


def model_dtype(model: Any) -> str:
    """The dtype the model computes in, as stored in a baseline ("float32", "bfloat16", ...)."""
    return str(getattr(model, "dtype", "float32")).removeprefix("torch.")


class HFBackend:
    """A loaded transformers model (possibly dispatched over devices / offloaded by accelerate)."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 8) -> None:
        import transformers

        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.info = EngineInfo("hf", model_dtype(model), transformers.__version__)

    def generate(self, requests: Sequence[GenerateRequest], *, top_k: int = 0) -> list[Generation]:
        gens = generate_greedy(
            self.model,
            self.tokenizer,
            [r.prompt_ids for r in requests],
            max_new_tokens=[r.max_new_tokens for r in requests],
            stop=[list(r.stop) for r in requests],
            batch_size=self.batch_size,
        )
        if not top_k:
            return gens
        # transformers' generate returns processed scores; the teacher-forced pass gives the model's own
        # log-probs of the chosen tokens, the same numbers a serving engine reports per new token
        asked = [ScoreRequest(r.prompt_ids, tuple(g.token_ids)) for r, g in zip(requests, gens, strict=True)]
        scores = self.score(asked, top_k=top_k)
        return [replace(g, scores=s) for g, s in zip(gens, scores, strict=True)]

    def sample(self, requests: Sequence[GenerateRequest], *, n: int, temperature: float,
               seed: int) -> list[list[Generation]]:
        return generate_sampled(self.model, self.tokenizer, [r.prompt_ids for r in requests], n=n,
                                temperature=temperature, seed=seed, max_new_tokens=[r.max_new_tokens for r in requests],
                                stop=[list(r.stop) for r in requests])

    def score(self, requests: Sequence[ScoreRequest], *, top_k: int) -> list[TokenScores]:
        gather = [list(r.gather) for r in requests] if any(r.gather is not None for r in requests) else None
        if gather is not None:
            gather = [g or [] for g in gather]
        return score_responses(
            self.model,
            self.tokenizer,
            [r.prompt_ids for r in requests],
            [r.continuation_ids for r in requests],
            top_k=top_k,
            gather=gather,
            batch_size=self.batch_size,
        )

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[DocLoglik]:
        return lm_eval_checks.perplexity_per_doc(self.model, self.tokenizer, list(texts), batch_size=self.batch_size)

    def multiple_choice(self, items: Sequence[dict[str, Any]]) -> list[McItem]:
        return lm_eval_checks.mc_per_item(self.model, self.tokenizer, list(items), batch_size=self.batch_size)

    def close(self) -> None:
        """Nothing to release: the model belongs to the gate's model cache."""
