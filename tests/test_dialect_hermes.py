"""Hermes-style tools in the system prompt, for templates without tools (the embedded SmolLM2)."""

from __future__ import annotations

import pytest

from tests.template_tokenizer import SMOLLM2_TEMPLATE, TemplateTokenizer
from workbench.dialects import HermesDialect, dialect_for
from workbench.dialects.calls import invalid_calls
from workbench.dialects.hermes import DEFAULT_SYSTEM, tools_section
from workbench.messages import Message, Role, ToolCall

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The arithmetic."}},
            "required": ["expression"],
        },
    },
}


@pytest.fixture
def dialect() -> HermesDialect:
    chosen = dialect_for(TemplateTokenizer(SMOLLM2_TEMPLATE))
    assert isinstance(chosen, HermesDialect)
    return chosen


def test_a_full_tool_exchange_renders_hermes_style(dialect):
    conversation = [
        Message(Role.USER, "What is 1234 plus 4321?"),
        Message(Role.ASSISTANT, tool_calls=[ToolCall("calculator", {"expression": "1234 + 4321"})]),
        Message(Role.OBSERVATION, "5555", name="calculator"),
    ]
    assert dialect.render(conversation, tools=[CALCULATOR]) == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}\n\n{tools_section([CALCULATOR])}<|im_end|>\n"
        "<|im_start|>user\nWhat is 1234 plus 4321?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name":"calculator","arguments":{"expression":"1234 + 4321"}}\n'
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n5555\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_the_tools_section_lists_each_tool_as_json_and_shows_the_call_format():
    section = tools_section([CALCULATOR])
    assert '<tools>\n{"type": "function", "function": {"name": "calculator", ' in section
    assert "<tool_call>" in section and "</tool_call>" in section and "<tool_response>" in section


def test_the_users_system_prompt_comes_first_and_without_tools_nothing_changes(dialect):
    plain = ChatTemplateLike = [Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "Hi")]
    with_tools = dialect.render(plain, tools=[CALCULATOR])
    assert with_tools.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert dialect.render(ChatTemplateLike) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    # No system prompt and no tools: the template's own default, exactly as the chat page renders it.
    assert dialect.render([Message(Role.USER, "Hi")]).startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM"
    )


def test_results_of_one_turn_share_one_user_message_and_text_comes_before_calls(dialect):
    conversation = [
        Message(Role.USER, "Two things"),
        Message(Role.ASSISTANT, "Let me check.", tool_calls=[ToolCall("a", {}), ToolCall("b", {"x": 1})]),
        Message(Role.OBSERVATION, "one", name="a"),
        Message(Role.OBSERVATION, "bad", name="b", error=True),
    ]
    prompt = dialect.render(conversation, tools=[CALCULATOR])
    assert (
        '<|im_start|>assistant\nLet me check.\n<tool_call>\n{"name":"a","arguments":{}}\n</tool_call>\n'
        '<tool_call>\n{"name":"b","arguments":{"x":1}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\none\n</tool_response>\n<tool_response>\nbad\n</tool_response><|im_end|>\n"
    ) in prompt


def test_parse_reads_calls_text_and_an_unclosed_last_call(dialect):
    message = dialect.parse(
        'Sure.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2*3"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "current_time", "arguments": {}}'
    )
    assert message.content == "Sure."
    assert message.tool_calls == [ToolCall("calculator", {"expression": "2*3"}), ToolCall("current_time", {})]
    assert dialect.parse("Just an answer.") == Message(Role.ASSISTANT, "Just an answer.")


@pytest.mark.parametrize(
    ("raw", "name", "error"),
    [
        ('{"name": "calculator", "arguments": {"expression": "1+', "calculator", "is not valid JSON"),
        ("[1, 2]", None, "must be a JSON object"),
        ('{"arguments": {}}', None, 'has no "name"'),
        ('{"name": "calculator", "arguments": "1+2"}', "calculator", "must be a JSON object such as"),
        ('{"name": "calculator", "arguments": [1]}', "calculator", "not an array"),
    ],
)
def test_an_unreadable_call_is_kept_with_an_error_for_the_model(dialect, raw, name, error):
    message = dialect.parse(f"<tool_call>\n{raw}\n</tool_call>")
    assert message.tool_calls == []
    [bad] = invalid_calls(message)
    assert (bad.name, bad.text) == (name, raw) and error in bad.error
    # Rendered back as written: the model sees its own call next to the error observation.
    assert f"<tool_call>\n{raw}\n</tool_call>" in dialect.render([message], add_generation_prompt=False)


def test_alternative_call_spellings_are_accepted(dialect):
    message = dialect.parse(
        '<tool_call>{"name": "t", "parameters": {"a": 1}}</tool_call>'
        '<tool_call>{"function": {"name": "u", "arguments": "{\\"b\\": 2}"}}</tool_call>'
    )
    assert message.tool_calls == [ToolCall("t", {"a": 1}), ToolCall("u", {"b": 2})]


def test_the_model_writing_a_result_itself_is_cut_off(dialect):
    assert "<tool_response>" in dialect.stop_strings
    assert dialect.parse("The answer<tool_response>\n42").content == "The answer"
    assert (dialect.tool_call_open, dialect.tool_call_close) == ("<tool_call>\n", "\n</tool_call>")


@pytest.mark.model
def test_the_embedded_model_gets_the_hermes_dialect(chat_model):
    assert isinstance(chat_model.dialect, HermesDialect)
    assert chat_model.backend.template.chat_template == SMOLLM2_TEMPLATE
    conversation = [Message(Role.USER, "What is 1234 plus 4321?")]
    fake = HermesDialect(TemplateTokenizer(SMOLLM2_TEMPLATE))
    assert chat_model.dialect.render(conversation, tools=[CALCULATOR]) == fake.render(
        conversation, tools=[CALCULATOR]
    )
