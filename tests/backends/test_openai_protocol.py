"""The OpenAI-protocol backend against a small local fake server: how answers are read, and what a user
sees when the server misbehaves (no answer, an error status, not JSON, missing log-probs).

The real engine is exercised by tests/integration/test_vllm_backend.py; this module pins the error paths
a real server rarely produces on demand."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evalsuite.backends.base import GenerateRequest, ScoreRequest
from evalsuite.backends.openai import BackendError, OpenAIBackend


class FakeTokenizer:
    """Ids are characters: id = ord(c); eos = 0."""

    eos_token_id = 0
    bos_token_id = None
    unk_token_id = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == 0))

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return ord(token) if len(token) == 1 else None


def _completion(prompt: list[int], body: dict[str, Any]) -> dict[str, Any]:
    """Echo the prompt (with log-prob -1 each) and generate 'ab' then eos, as vLLM reports it."""
    new = [] if body.get("echo") else [ord("a"), ord("b"), 0]
    ids = (prompt if body.get("echo") else []) + (new or [ord("z")])
    tops = [None if body.get("echo") and i == 0 else {f"token_id:{t}": -1.0, "token_id:120": -2.0}
            for i, t in enumerate(ids)]
    return {"index": 0, "text": "", "logprobs": {
        "tokens": [f"token_id:{t}" for t in ids],
        "token_logprobs": [None if top is None else -1.0 for top in tops],
        "top_logprobs": tops}}


class Fake(BaseHTTPRequestHandler):
    mode = "ok"
    bodies: list[dict[str, Any]] = []  # the requests received, for asserting what was asked

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v1/models":
            self._send(200, json.dumps({"data": [{"id": "fake", "max_model_len": 64}]}).encode())
        elif self.path == "/version":
            self._send(200, b'{"version": "0.0-fake"}')
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Fake.mode == "slow":
            time.sleep(3)
        if Fake.mode == "error":
            return self._send(500, b'{"error": "engine died"}')
        if Fake.mode == "garbage":
            return self._send(200, b"<html>proxy error</html>")
        if Fake.mode == "no-logprobs":
            return self._send(200, json.dumps({"choices": [{"index": 0, "text": "x"}]}).encode())
        Fake.bodies.append(body)
        choices = []
        for i, prompt in enumerate(body["prompt"] * body.get("n", 1)):  # n samples of one prompt, or a batch
            choice = _completion(prompt, body)
            choice["index"] = i
            choices.append(choice)
        self._send(200, json.dumps({"choices": choices}).encode())


@pytest.fixture()
def server() -> Iterator[str]:
    Fake.mode = "ok"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _backend(url: str, timeout_s: float = 10.0) -> OpenAIBackend:
    return OpenAIBackend(url, FakeTokenizer(), timeout_s=timeout_s)


def test_reads_greedy_ids_cuts_eos_and_scores_by_echo(server: str):
    backend = _backend(server)
    assert (backend.model_name, backend.max_length, backend.info.version) == ("fake", 64, "0.0-fake")
    gen = backend.generate([GenerateRequest((104, 105), 8)], top_k=2)[0]
    assert (gen.token_ids, gen.text, gen.finish) == ([97, 98], "ab", "eos")
    assert gen.scores.top_ids[0] == [97, 120]
    scored = backend.score([ScoreRequest((104, 105), (97, 98), ((97, 7), (98,)))], top_k=2)[0]
    assert scored.token_logprobs == [-1.0, -1.0]
    # id 7 was not among the reported alternatives: the unassigned mass (1 - e^-1 - e^-2 = 0.50), capped at
    # the smallest reported alternative (e^-2): an unreported id cannot be likelier than a reported one
    assert scored.gathered[0][0] == -1.0 and scored.gathered[0][1] == pytest.approx(-2.0)
    doc = backend.loglikelihood_rolling(["hey"])[0]
    assert (doc.loglikelihood, doc.tokens) == (-3.0, 3)


def test_samples_ask_for_n_seeded_completions_per_prompt(server: str):
    from evalsuite.model.generation import sample_seed

    backend = _backend(server)
    Fake.bodies.clear()
    gens = backend.sample([GenerateRequest((104, 105), 8), GenerateRequest((106,), 8, ("b",))], n=3,
                          temperature=0.8, seed=5)
    assert [len(g) for g in gens] == [3, 3] and gens[0][0].text == "ab" and gens[1][0].finish == "stop"
    first, second = Fake.bodies
    asked = (first["n"], first["temperature"], first["top_p"], first["seed"])
    assert asked == (3, 0.8, 1.0, sample_seed(5, (104, 105)))
    assert second["stop"] == ["b"] and second["seed"] != first["seed"]


@pytest.mark.parametrize(("mode", "says"), [
    ("error", r"HTTP 500: \{\"error\": \"engine died\"\}"),
    ("garbage", r"the answer is not JSON: b'<html>proxy error"),
    ("no-logprobs", r"a completion came without log-probs"),
    ("slow", r"no answer \(.*\) within 1 s; is the server running"),
])
def test_a_misbehaving_server_is_one_clear_error(server: str, mode: str, says: str):
    backend = _backend(server, timeout_s=1.0)
    Fake.mode = mode
    with pytest.raises(BackendError, match=says):
        backend.generate([GenerateRequest((104,), 4)])


def test_no_server_at_all_names_the_url_and_the_setting():
    with pytest.raises(BackendError, match=r"http://127\.0\.0\.1:9/v1/models: no answer .*server_url"):
        _backend("http://127.0.0.1:9", timeout_s=2.0)


def test_lm_eval_task_cases_say_they_need_the_in_process_backend(server: str):
    from pathlib import Path
    from types import SimpleNamespace

    from evalsuite.errors import EvalsuiteError
    from evalsuite.gate.lm_eval_tasks import task_values

    with pytest.raises(EvalsuiteError, match=r"case 't': lm-eval task cases .* need backend = \"hf\""):
        task_values(_backend(server), SimpleNamespace(file=Path("s.yaml"), id="t"))


def test_unreported_baseline_tokens_cannot_look_likelier_than_the_reported_top_k() -> None:
    """A variant that pushes the baseline's token out of its top-2: the token's log-prob is capped at the
    smallest reported one, so the divergence check sees the drop (an equal share of the unreported mass,
    0.3 here, would rank it above a reported 0.1 alternative and hide it)."""
    from evalsuite.backends.openai import _scores  # the response parser, without a server

    tops = [{5: math.log(0.6), 6: math.log(0.1)}]
    scores = _scores([5], [math.log(0.6)], tops, 2, [[5, 9]])
    assert scores.gathered[0][0] == pytest.approx(math.log(0.6))  # reported: exact
    assert scores.gathered[0][1] == pytest.approx(math.log(0.1))  # unreported: min(0.3, 0.1)
    # the look-alike: many unreported ids share what is left, below the cap
    many = _scores([5], [math.log(0.6)], tops, 2, [[5, 7, 8, 9, 10]])
    assert many.gathered[0][1:] == pytest.approx([math.log(0.3 / 4)] * 4)
