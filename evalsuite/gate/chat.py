"""Chat cases: what the model reads (system, earlier turns, the prompt, rendered once) and what of its
response the answer checks see (the reasoning trace split off).

Why one place: a case's prompt is rendered through the tokenizer's chat template once, to text and
token ids, before any backend sees it; every backend (in-process transformers, a serving engine)
then gets the same tokens, the rendered text is part of the case hash (a changed template or
`chat_template_kwargs` value makes the baseline stale instead of silently comparing other prompts),
and the baseline stores the rendered text so a reviewer sees exactly what the model was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalsuite.errors import EvalsuiteError
from evalsuite.metrics.reasoning import ReasoningSplit, split_reasoning

__all__ = [
    "ROLES",
    "RenderedPrompt",
    "apply_project_chat_settings",
    "conversation",
    "conversation_problem",
    "messages_problem",
    "render_case",
    "split_response",
]

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class RenderedPrompt:
    """The prompt as the model reads it: ``text`` (chat template applied) and its token ``ids``."""

    text: str
    ids: list[int]
    chat: bool


def messages_problem(value: Any) -> str | None:
    """What is wrong with a case's `messages` value (None = fine): a list of {role, content} turns."""
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of {{role, content}} turns, got {value!r}"
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            return f"turn {i + 1} must be a mapping with exactly `role` and `content`, got {turn!r}"
        if turn["role"] not in ROLES:
            return f"turn {i + 1}: role must be one of {', '.join(ROLES)}, got {turn['role']!r}"
        if not isinstance(turn["content"], str) or not turn["content"].strip():
            return f"turn {i + 1}: content must be a non-empty string, got {turn['content']!r}"
    return None


def conversation(case: Any) -> list[dict[str, str]]:
    """The turns of a chat case: `system`, then `messages`, then `prompt` as the last user turn.

    It must end with a user turn: the template's generation prompt (the assistant's turn) follows it.
    """
    turns = [{"role": "system", "content": case.system}] if case.system else []
    turns += [dict(turn) for turn in case.messages]
    if case.prompt:
        turns.append({"role": "user", "content": case.prompt})
    return turns


def conversation_problem(case: Any) -> str | None:
    """What is wrong with a chat case's conversation (None = fine), found when its file is read."""
    turns = conversation(case)
    if not turns or turns[-1]["role"] != "user":
        return "the conversation (system, messages, prompt) must end with a user turn"
    if sum(t["role"] == "system" for t in turns) > 1 or any(t["role"] == "system" for t in turns[1:]):
        return "give the system prompt once, as the first turn (`system:` or the first of `messages`)"
    return None


def render_case(tokenizer: Any, case: Any, *, template_kwargs: dict[str, Any] | None = None) -> RenderedPrompt:
    """Render a case for ``tokenizer``: the chat template for chat cases, the raw prompt otherwise.

    ``template_kwargs`` (e.g. ``{"enable_thinking": False}``) reach the template as variables. Ids of a
    chat case are the rendered text tokenized without extra special tokens (the template already holds
    them), which is what ``apply_chat_template(tokenize=True)`` does.
    """
    if not case.chat:
        ids = tokenizer(case.prompt, add_special_tokens=True)["input_ids"]
        return RenderedPrompt(case.prompt, [int(x) for x in ids], False)
    where = f"{case.file}: case {case.id!r}"
    if not getattr(tokenizer, "chat_template", None):
        raise EvalsuiteError(
            f"{where} is a chat case (chat, system, messages or chat_template_kwargs) but the tokenizer has "
            "no chat template; use an instruction-tuned checkpoint, or write the prompt as raw text with `chat: false`"
        )
    try:
        text = tokenizer.apply_chat_template(
            conversation(case), tokenize=False, add_generation_prompt=True, **(template_kwargs or {})
        )
    except Exception as exc:  # a template raises what it likes (jinja2 errors, raise_exception(...))
        raise EvalsuiteError(f"{where}: the tokenizer's chat template failed on this conversation: {exc}") from exc
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return RenderedPrompt(text, [int(x) for x in ids], True)


def apply_project_chat_settings(case: Any, settings: Any) -> None:
    """Give a chat case the project's `chat_template_kwargs` (its own win) and `reasoning` style (when it
    sets none; the reasoning check then runs with the project's tolerance). Why project-wide: the built-in
    instruct suite cannot be edited by its users, yet Qwen3 needs `enable_thinking` and GPT-OSS `harmony`."""
    if not case.chat:
        return
    case.chat_template_kwargs = {**settings.chat_template_kwargs, **case.chat_template_kwargs}
    if case.reasoning is None and settings.reasoning != "none":
        case.reasoning = settings.reasoning
        case.checks.setdefault("reasoning", dict(settings.tolerances["reasoning"]))


def split_response(tokenizer: Any, case: Any, token_ids: list[int], text: str, prompt_text: str) -> ReasoningSplit:
    """The response's reasoning trace and answer under the case's `reasoning` style.

    With no style the answer is ``text`` as generated (special tokens skipped, cut at stop strings).
    With a style the trace markers may be special tokens (GPT-OSS channels), so the ids are decoded
    with special tokens kept, split, and the answer is cleaned of special tokens and cut at stops.
    """
    style = case.reasoning or "none"
    if style == "none":
        return ReasoningSplit("", text, True)
    raw = tokenizer.decode(token_ids, skip_special_tokens=False)
    split = split_reasoning(raw, style, prompt=prompt_text)
    answer = split.answer
    for special in getattr(tokenizer, "all_special_tokens", []):
        answer = answer.replace(special, "")
    cuts = [answer.find(stop) for stop in case.stop if stop in answer]
    answer = answer[: min(cuts)] if cuts else answer
    return ReasoningSplit(split.reasoning, answer.strip(), split.closed)
