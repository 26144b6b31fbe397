"""Chat cases: fields (system, messages, chat_template_kwargs, reasoning), rendering, reasoning split/check."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.errors import CaseFileError, EvalsuiteError
from evalsuite.gate.cases import load_case_file
from evalsuite.gate.chat import render_case
from evalsuite.metrics.reasoning import ReasoningSplit, check_reasoning, split_reasoning


def _cases(tmp_path: Path, text: str):
    path = tmp_path / "chat.yaml"
    path.write_text(text, encoding="utf-8")
    return load_case_file(path)


@pytest.fixture
def chat_tokenizer():
    from evalsuite.model.tiny_chat import build_chat_tokenizer

    return build_chat_tokenizer()


def test_system_messages_and_template_kwargs_render_in_order(tmp_path: Path, chat_tokenizer):
    (case,) = _cases(tmp_path, """
cases:
  - id: multi
    domain: chat
    system: be brief
    messages:
      - {role: user, content: hi}
      - {role: assistant, content: hello}
    prompt: and now?
    chat_template_kwargs: {enable_thinking: false}
""")
    assert case.chat and case.checks.keys() >= {"collapse", "divergence"} and "reasoning" not in case.checks
    rendered = render_case(chat_tokenizer, case, template_kwargs=case.chat_template_kwargs)
    assert rendered.text == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello"
        "<|im_end|>\n<|im_start|>user\nand now?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert chat_tokenizer.decode(rendered.ids) == rendered.text
    # the template arguments reach the template: thinking on leaves the think block to the model
    assert not render_case(chat_tokenizer, case).text.endswith("</think>\n\n")


def test_rendered_prompt_is_part_of_the_case_hash(tmp_path: Path):
    (case,) = _cases(tmp_path, "cases:\n  - {id: a, domain: chat, prompt: hi, chat: true}\n")
    assert case.content_hash(64, rendered="x") != case.content_hash(64, rendered="y")
    # a raw-text case's hash is what it was before chat fields existed (committed baselines stay valid)
    (raw,) = _cases(tmp_path, "cases:\n  - {id: a, domain: chat, prompt: hi}\n")
    assert raw.content_hash(64) == raw.content_hash(64, rendered=None)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ("messages: [{role: bot, content: hi}]", "field 'messages': turn 1: role must be one of system, user"),
        ("messages: [{role: user}]", "field 'messages': turn 1 must be a mapping with exactly `role` and `content`"),
        ("prompt: hi\n    messages: [{role: user, content: a}, {role: assistant, content: b}]\n    chat: false",
         "field 'chat': is false, but messages only apply to chat-template prompts"),
        ("messages: [{role: user, content: a}, {role: assistant, content: b}]",
         "field 'messages': the conversation (system, messages, prompt) must end with a user turn"),
        ("prompt: hi\n    system: s\n    messages: [{role: system, content: t}]", "give the system prompt once"),
        ("prompt: hi\n    reasoning: thinking", "field 'reasoning': must be one of none, think, harmony"),
        ("prompt: hi\n    checks: {reasoning: {min_ratio: 0.3}}", "checks.reasoning': needs a `reasoning` style"),
    ],
)
def test_bad_chat_fields_name_file_case_and_field(tmp_path: Path, fields: str, says: str):
    with pytest.raises(CaseFileError, match="chat.yaml: case 'c'") as info:
        _cases(tmp_path, f"cases:\n  - id: c\n    domain: chat\n    {fields}\n")
    assert says in str(info.value)


def test_a_chat_case_needs_a_chat_template(tmp_path: Path):
    from evalsuite.model.tiny import build_tiny_tokenizer

    (case,) = _cases(tmp_path, "cases:\n  - {id: a, domain: chat, prompt: hi, system: s}\n")
    with pytest.raises(EvalsuiteError, match="case 'a' is a chat case .* the tokenizer has no chat template"):
        render_case(build_tiny_tokenizer(), case)


# -- reasoning traces ---------------------------------------------------------------------------------
def test_think_split():
    split = split_reasoning("<think>\nplan it\n</think>\n\nAnswer.", "think")
    assert split == ReasoningSplit("plan it", "Answer.", True)
    # the template opened the block in the prompt (thinking forced): the response only closes it
    assert split_reasoning("plan\n</think>\nok", "think", prompt="...assistant\n<think>\n") == ReasoningSplit(
        "plan", "ok", True)
    # the budget ran out inside the trace: no answer, trace not ended
    assert split_reasoning("<think>\nloop loop", "think") == ReasoningSplit("loop loop", "", False)
    assert split_reasoning("still thinking", "think", prompt="<think>\n") == ReasoningSplit("still thinking", "", False)
    # thinking switched off: the prompt's think block is closed, the response is all answer
    assert split_reasoning("Hola.", "think", prompt="<think>\n\n</think>\n\n") == ReasoningSplit("", "Hola.", True)
    assert split_reasoning("<think>x</think>y", "none") == ReasoningSplit("", "<think>x</think>y", True)


def test_harmony_split_gpt_oss_channels():
    text = ("<|channel|>analysis<|message|>User wants 2+2. It is 4.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>4<|return|>")
    assert split_reasoning(text, "harmony") == ReasoningSplit("User wants 2+2. It is 4.", "4", True)
    cut = "<|channel|>analysis<|message|>User wants 2+2. Let me"
    assert split_reasoning(cut, "harmony") == ReasoningSplit("User wants 2+2. Let me", "", False)
    assert split_reasoning("plain answer", "harmony") == ReasoningSplit("", "plain answer", True)


TRACE = "First add the two numbers: two and two make four. Then check it by counting up from two twice."


def test_reasoning_check_catches_a_shrunk_collapsed_or_endless_trace():
    base = ReasoningSplit(TRACE, "four", True)
    shrunk = check_reasoning(ReasoningSplit(TRACE[:30], "four", True), base)
    assert not shrunk.passed and "shrank" in shrunk.detail
    looped = check_reasoning(ReasoningSplit("add add add add add add add add add add add add add add add add add "
                                            "add add", "four", True), base)
    assert not looped.passed and "collapsed" in looped.detail
    endless = check_reasoning(ReasoningSplit(TRACE, "", False), base)
    assert not endless.passed and "never ended" in endless.detail
    vanished = check_reasoning(ReasoningSplit("", "four", True), base)
    assert not vanished.passed and "vanished" in vanished.detail


def test_reasoning_check_passes_benign_look_alikes():
    base = ReasoningSplit(TRACE, "four", True)
    reworded = "Two plus two: counting up from two by two steps gives four, and adding them directly agrees."
    assert check_reasoning(ReasoningSplit(reworded, "four", True), base).passed
    assert check_reasoning(ReasoningSplit(TRACE + " " + TRACE, "four", True), base).passed  # longer is fine
    # what the baseline already did is not blamed on the new model
    assert check_reasoning(ReasoningSplit(TRACE, "", False), ReasoningSplit(TRACE, "", False)).passed
    assert check_reasoning(ReasoningSplit("", "x", True), ReasoningSplit("", "x", True)).passed
