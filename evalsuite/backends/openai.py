"""Any OpenAI-compatible completions server (vLLM, SGLang, TGI, llama.cpp server, a hosted vLLM).

Why the completions API and not chat: the gate sends exactly the token ids it encoded (a baseline's
prompt ids are part of its contract), and `/v1/completions` accepts token-id prompts and, with `echo`
and `logprobs`, returns the log-probs of every prompt token: teacher forcing over HTTP. Greedy
generation is `temperature: 0` with top-k log-probs per new token.

Ids, not strings: vLLM returns tokens as `token_id:N` when asked (`return_tokens_as_token_ids`);
for other servers token strings are mapped back through the checkpoint's tokenizer. Everything the
gate compares (eos, stop strings, response text) is then derived from ids exactly as the hf backend
derives it, so backends differ only in the numbers their engine computes.

Only the standard library talks HTTP (no client package, nothing imported from the engine).
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from evalsuite.backends.base import EngineInfo, GenerateRequest, ScoreRequest
from evalsuite.errors import EvalsuiteError
from evalsuite.gate.lm_eval_checks import DocLoglik, McItem, mc_item, mc_records
from evalsuite.model.generation import Generation, TokenScores, finish_generation

__all__ = ["BackendError", "OpenAIBackend"]

_TOKEN_ID = re.compile(r"^token_id:(\d+)$")


class BackendError(EvalsuiteError):
    """A server did not answer, answered with an error, or answered something that is not a completion."""


class OpenAIBackend:
    """Completions over HTTP; ``vllm_extensions`` adds vLLM's request fields (ids as tokens, stop strings
    kept in the output so the gate cuts them itself)."""

    def __init__(
        self,
        url: str,
        tokenizer: Any,
        *,
        backend: str = "openai",
        dtype: str = "auto",
        model: str | None = None,
        eos_ids: Sequence[int] = (),
        timeout_s: float = 600.0,
        max_length: int | None = None,
        batch_size: int = 64,
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._on_close = on_close
        self.tokenizer = tokenizer
        self.timeout_s = timeout_s
        self.batch_size = max(1, batch_size)
        self.eos = set(eos_ids) or {int(tokenizer.eos_token_id)}
        listed = self._request("GET", "/v1/models").get("data") or []
        if not listed and model is None:
            raise BackendError(f"{self.url}/v1/models lists no model; set server_model to the name the server uses")
        self.model_name = model or str(listed[0].get("id"))  # not `.model`: that means weights in this process
        card = next((m for m in listed if m.get("id") == self.model_name), {})
        self.max_length = max_length or int(card.get("max_model_len") or 0) or 2048
        version = self._version()
        self.vllm_extensions = version is not None
        self.info = EngineInfo(backend, dtype, version or "unknown")

    # -- HTTP -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.url + path
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("EVALSUITE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise BackendError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(
                f"{method} {url}: no answer ({reason}) within {self.timeout_s:g} s; is the server running and "
                "reachable? (server_url / request_timeout in [tool.evalsuite])"
            ) from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise BackendError(f"{method} {url}: the answer is not JSON: {body[:200]!r}") from None
        if not isinstance(answer, dict):
            raise BackendError(f"{method} {url}: expected a JSON object, got {type(answer).__name__}")
        return answer

    def _version(self) -> str | None:
        """vLLM answers /version; other servers do not (their vLLM-only request fields are left out)."""
        try:
            return str(self._request("GET", "/version").get("version")) or None
        except BackendError:
            return None

    def _completions(self, prompts: list[list[int]], **params: Any) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"model": self.model_name, "prompt": prompts, "temperature": 0.0, "n": 1, **params}
        if self.vllm_extensions:
            payload["return_tokens_as_token_ids"] = True
        choices = self._request("POST", "/v1/completions", payload).get("choices")
        if not isinstance(choices, list) or len(choices) != len(prompts):
            raise BackendError(
                f"POST {self.url}/v1/completions: expected {len(prompts)} choices, got "
                f"{len(choices) if isinstance(choices, list) else repr(choices)[:100]}"
            )
        return sorted(choices, key=lambda c: int(c.get("index", 0)))

    def _token_id(self, token: str) -> int:
        match = _TOKEN_ID.match(token)
        if match:
            return int(match.group(1))
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None or found == self.tokenizer.unk_token_id:
            raise BackendError(f"{self.url}: token {token!r} is not in the checkpoint's vocabulary; the server "
                               "must return token ids or the checkpoint's own token strings")
        return int(found)

    def _logprobs(self, choice: dict[str, Any]) -> tuple[list[int], list[float | None], list[dict[int, float]]]:
        lp = choice.get("logprobs")
        if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
            raise BackendError(f"{self.url}: a completion came without log-probs ({str(choice)[:200]})")
        ids = [self._token_id(t) for t in lp["tokens"]]
        tops = [{self._token_id(k): float(v) for k, v in (row or {}).items()} for row in lp.get("top_logprobs") or []]
        return ids, list(lp.get("token_logprobs") or []), tops

    def _chunks(self, order: list[int]) -> list[list[int]]:
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    # -- the interface ------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest], *, top_k: int = 0) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.stop), []).append(i)
        for (budget, stop), members in groups.items():
            for chunk in self._chunks(members):
                params: dict[str, Any] = {"max_tokens": budget, "logprobs": max(1, top_k)}
                if stop:
                    params["stop"] = list(stop)
                    if self.vllm_extensions:
                        params["include_stop_str_in_output"] = True
                choices = self._completions([list(requests[i].prompt_ids) for i in chunk], **params)
                for i, choice in zip(chunk, choices, strict=True):
                    ids, token_lp, tops = self._logprobs(choice)
                    gen = finish_generation(self.tokenizer, list(requests[i].prompt_ids), ids, budget=budget,
                                            eos=self.eos, stop=list(stop))
                    if top_k:
                        n = len(gen.token_ids)
                        gen.scores = _scores(gen.token_ids, token_lp[:n], tops[:n], top_k, None)
                    out[i] = gen
        return [g for g in out if g is not None]

    def sample(self, requests: Sequence[GenerateRequest], *, n: int, temperature: float,
               seed: int) -> list[list[Generation]]:
        """n samples per prompt in one request (`n`, `temperature`, `top_p` 1, and the per-prompt `seed` of
        model.generation.sample_seed, which vLLM honours per request: samples independent of batching)."""
        from evalsuite.model.generation import sample_seed

        out = []
        for r in requests:
            payload: dict[str, Any] = {"model": self.model_name, "prompt": [list(r.prompt_ids)], "n": n,
                                       "temperature": temperature, "top_p": 1.0, "max_tokens": r.max_new_tokens,
                                       "logprobs": 1, "seed": sample_seed(seed, r.prompt_ids)}
            if r.stop:
                payload["stop"] = list(r.stop)
            if self.vllm_extensions:
                payload.update(return_tokens_as_token_ids=True, include_stop_str_in_output=bool(r.stop))
            choices = self._request("POST", "/v1/completions", payload).get("choices")
            if not isinstance(choices, list) or len(choices) != n:
                raise BackendError(f"POST {self.url}/v1/completions: asked for n={n} samples, got "
                                   f"{len(choices) if isinstance(choices, list) else repr(choices)[:100]}")
            out.append([finish_generation(self.tokenizer, list(r.prompt_ids), self._logprobs(c)[0],
                                          budget=r.max_new_tokens, eos=self.eos, stop=list(r.stop))
                        for c in sorted(choices, key=lambda c: int(c.get("index", 0)))])
        return out

    def _echo(self, prompts: list[list[int]], top_k: int) -> list[tuple[list[int], list[float | None], list]]:
        """Teacher forcing: log-probs of every prompt token (the first has none)."""
        results = []
        for chunk in self._chunks(list(range(len(prompts)))):
            choices = self._completions([prompts[i] for i in chunk], max_tokens=1, echo=True, logprobs=max(1, top_k))
            for i, choice in zip(chunk, choices, strict=True):
                ids, token_lp, tops = self._logprobs(choice)
                n = len(prompts[i])
                if ids[:n] != prompts[i]:
                    raise BackendError(f"{self.url}: the echoed prompt differs from the {n} ids sent; the server "
                                       "must accept token-id prompts as they are")
                results.append((ids[:n], token_lp[:n], tops[:n] + [{}] * (n - len(tops[:n]))))
        return results

    def score(self, requests: Sequence[ScoreRequest], *, top_k: int) -> list[TokenScores]:
        asked = max([top_k] + [len(g) for r in requests for g in (r.gather or ())])
        echoed = self._echo([list(r.prompt_ids) + list(r.continuation_ids) for r in requests], asked)
        out = []
        for r, (_ids, token_lp, tops) in zip(requests, echoed, strict=True):
            start, m = len(r.prompt_ids), len(r.continuation_ids)
            out.append(_scores(list(r.continuation_ids), token_lp[start : start + m], tops[start : start + m], top_k,
                               r.gather))
        return out

    def _encode(self, text: str) -> list[int]:
        return [int(x) for x in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def _prefix_id(self) -> int:
        """lm-eval's prefix token: what the first token of a document is conditioned on."""
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return int(bos if bos is not None else self.tokenizer.eos_token_id)

    def _sum_last(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Sum of the continuation's log-probs after its context, for (context ids, continuation ids)."""
        echoed = self._echo([ctx + cont for ctx, cont in pairs], 1)
        sums = []
        for (_ctx, cont), (_ids, token_lp, _tops) in zip(pairs, echoed, strict=True):
            values = token_lp[len(token_lp) - len(cont):]
            if any(v is None for v in values):
                raise BackendError(f"{self.url}: no log-prob for a continuation token")
            sums.append(float(sum(values)))
        return sums

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[DocLoglik]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        windows, owner, encoded = [], [], []
        for i, text in enumerate(texts):
            tokens = self._encode(text)
            encoded.append(tokens)
            for window in get_rolling_token_windows(tokens, self._prefix_id(), self.max_length, 1):
                windows.append(make_disjoint_window(window))
                owner.append(i)
        totals = [0.0] * len(texts)
        for i, value in zip(owner, self._sum_last(windows), strict=True):
            totals[i] += value
        return [DocLoglik(index=i, loglikelihood=totals[i], tokens=len(encoded[i]), words=len(re.split(r"\s+", t)),
                          bytes=len(t.encode("utf-8"))) for i, t in enumerate(texts)]

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing spaces of the context move to the continuation; the continuation's ids
        are the tail of the whole text's ids (how they are tokenized in context)."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            return [self._prefix_id()], self._encode(continuation)
        whole, ctx = self._encode(context + continuation), self._encode(context)
        return ctx, whole[len(ctx):]

    def multiple_choice(self, items: Sequence[dict[str, Any]]) -> list[McItem]:
        records, delimiter = mc_records(items)
        pairs = [self._pair(r["context"], delimiter + choice) for r in records for choice in r["choices"]]
        flat = self._sum_last(pairs)
        out, offset = [], 0
        for i, rec in enumerate(records):
            n = len(rec["choices"])
            out.append(mc_item(i, rec, tuple(flat[offset : offset + n])))
            offset += n
        return out

    def close(self) -> None:
        """Run the owner's clean-up (stop the server evalsuite started); a user's server is left running."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def _scores(ids: list[int], token_lp: Sequence[float | None], tops: Sequence[dict[int, float]], top_k: int,
            gather: Sequence[Sequence[int]] | None) -> TokenScores:
    """TokenScores from per-position (token log-prob, {id: log-prob}) as a server reports them.

    A gathered id outside the server's reported top-k gets an equal share of the probability mass the
    report leaves unassigned, capped at the smallest reported top-k probability (an unreported id cannot be
    more likely than that). Both are upper bounds, so the KL they give is a lower bound: the cap keeps it
    from hiding the regression where a variant pushes the baseline's tokens out of its own top-k."""
    top_ids, top_lps, gathered = [], [], []
    for t, tok in enumerate(ids):
        row = dict(tops[t]) if t < len(tops) else {}
        if token_lp[t] is not None:
            row.setdefault(tok, float(token_lp[t]))
        best = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
        top_ids.append([k for k, _ in best])
        top_lps.append([v for _, v in best])
        if gather is not None:
            wanted = list(gather[t]) if t < len(gather) else []
            missing = [w for w in wanted if w not in row]
            rest = max(1.0 - sum(math.exp(v) for v in row.values()), 1e-30)
            share = math.log(rest / len(missing)) if missing else 0.0
            reported = tops[t].values() if t < len(tops) and tops[t] else ()
            if reported:
                share = min(share, min(reported))
            gathered.append([row.get(w, share) for w in wanted])
    token = [float(v) if v is not None else float("nan") for v in token_lp]
    return TokenScores(token, top_ids, top_lps, gathered if gather is not None else [])
