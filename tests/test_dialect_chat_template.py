"""Chat templates that know tools (Qwen2.5 / Hermes / SmolLM3 style) and transformers' parse_response."""

from __future__ import annotations

import copy

import pytest

from tests.template_tokenizer import TemplateTokenizer
from workbench.dialects import ChatTemplateDialect, HermesDialect, dialect_for
from workbench.dialects.calls import invalid_calls
from workbench.messages import Message, Role, ToolCall

# A small template in the shape of Qwen2.5's: tools in the system turn, calls in <tool_call> tags,
# results as user turns in <tool_response> tags.
TOOL_TEMPLATE = """
{%- if tools %}<|im_start|>system
{{ messages[0].content if messages[0].role == 'system' else 'You are a helpful assistant.' }}
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{{ message.content }}
{%- for call in message.tool_calls %}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

RESPONSE_TEMPLATE = {
    "version": 1,
    "start_anchor": "<|im_start|>assistant\n",
    "defaults": {"role": "assistant"},
    "fields": {
        "content": {"content": "text", "repeats": True, "join": ""},
        "tool_calls": {
            "open": "<tool_call>",
            "close": "</tool_call>",
            "content": "json",
            "repeats": True,
            "transform": {"type": "function", "function": "{content}"},
        },
    },
}

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}


def test_a_template_with_tools_is_used_as_it_is_and_its_calls_can_be_constrained():
    dialect = dialect_for(TemplateTokenizer(TOOL_TEMPLATE))
    assert type(dialect) is ChatTemplateDialect and dialect.supports_tools
    assert (dialect.tool_call_open, dialect.tool_call_close) == ("<tool_call>\n", "\n</tool_call>")
    conversation = [
        Message(Role.USER, "What is 1234 plus 4321?"),
        Message(Role.ASSISTANT, tool_calls=[ToolCall("calculator", {"expression": "1234 + 4321"})]),
        Message(Role.OBSERVATION, "5555", name="calculator"),
    ]
    prompt = dialect.render(conversation, tools=[CALCULATOR])
    assert prompt.startswith('<|im_start|>system\nYou are a helpful assistant.\n<tools>{"type": "function", ')
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "1234 + 4321"}}\n'
        "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n5555\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    ) in prompt


def test_calls_are_parsed_from_tool_call_tags_several_per_turn():
    dialect = ChatTemplateDialect(TemplateTokenizer(TOOL_TEMPLATE))
    message = dialect.parse(
        'Checking.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "1+1"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>'
    )
    assert message.content == "Checking."
    assert [c.arguments["expression"] for c in message.tool_calls] == ["1+1", "2+2"]


def test_a_response_template_is_read_with_parse_response():
    dialect = ChatTemplateDialect(TemplateTokenizer(TOOL_TEMPLATE, RESPONSE_TEMPLATE))
    message = dialect.parse(
        'Let me see.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    )
    assert message.tool_calls == [ToolCall("calculator", {"expression": "6*7"})]
    assert message.content == "Let me see."
    assert dialect.parse("Plain answer.") == Message(Role.ASSISTANT, "Plain answer.")


def test_a_response_template_that_cannot_read_the_call_gives_an_invalid_call():
    dialect = ChatTemplateDialect(TemplateTokenizer(TOOL_TEMPLATE, RESPONSE_TEMPLATE))
    message = dialect.parse('<tool_call>\n{"name": "calculator", "argu\n</tool_call>')
    [bad] = invalid_calls(message)
    assert bad.name == "calculator" and "is not valid JSON" in bad.error


def test_an_invalid_call_is_shown_to_a_tool_template_as_text():
    dialect = ChatTemplateDialect(TemplateTokenizer(TOOL_TEMPLATE))
    message = dialect.parse("<tool_call>\nnot json\n</tool_call>")
    prompt = dialect.render([Message(Role.USER, "Hi"), message], tools=[CALCULATOR])
    assert "<|im_start|>assistant\n<tool_call>\nnot json\n</tool_call><|im_end|>" in prompt


@pytest.mark.model
def test_the_real_tokenizer_parse_response_with_a_response_template(transformers_model):
    tokenizer = copy.copy(transformers_model.backend.tokenizer)  # the shared one stays untouched
    tokenizer.response_template = RESPONSE_TEMPLATE
    dialect = HermesDialect(tokenizer)
    message = dialect.parse(
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    )
    assert message.tool_calls == [ToolCall("calculator", {"expression": "6*7"})]
