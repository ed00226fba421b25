"""Chat templates rendered from their text (as the llama.cpp engine reads them from GGUF files).

Every render is compared with transformers' own ``render_jinja_template`` on the same template, and the
dialects are picked from the template text alone.
"""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from workbench.dialects import (
    ChatGLM3Dialect,
    ChatTemplateDialect,
    HermesDialect,
    dialect_for,
    is_chatglm3_template,
)
from workbench.dialects.jinja_template import JinjaChatTemplate
from workbench.errors import PromptError
from workbench.messages import Message, Role
from workbench.models.gguf_check import read_gguf
from workbench.models.loading import embedded_gguf_path

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>"}

# A Qwen2.5-style template: tools as JSON, a namespace, loop controls, tojson with arguments, a custom error.
TOOLS_TEMPLATE = """{%- if tools %}<|im_start|>system
{{ messages[0].content if messages[0].role == 'system' else 'You are helpful.' }}
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% endif %}
{%- set ns = namespace(users=0) %}
{%- for message in messages %}
  {%- if message.role == 'system' and tools %}{% continue %}{% endif %}
  {%- if message.role == 'user' %}{% set ns.users = ns.users + 1 %}{% endif %}
  {%- if message.role == 'bad' %}{{ raise_exception('roles must be user or assistant') }}{% endif %}
<|im_start|>{{ message.role }}
{% if message.tool_calls %}{% for call in message.tool_calls %}<tool_call>
{{ call.function | tojson(indent=None, separators=(',', ':')) }}
</tool_call>{% endfor %}{% else %}{{ message.content }}{% endif %}<|im_end|>
{%- endfor %}
{%- if add_generation_prompt %}
<|im_start|>assistant
{% endif %}{{ bos_token }}{{ eos_token }} {{ ns.users }} users, {{ dict(a=1) | tojson }}"""

CHATGLM3_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n "
    "{{ message['content'] }}{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
GLM4_TEMPLATE = (
    "[gMASK]<sop>{% for item in messages %}{% if item['role'] == 'observation' %}<|observation|>"
    "{% else %}<|{{ item['role'] }}|>{% endif %}\n{{ item['content'] }}{% endfor %}"
    "{% if tools %}{{ tools | tojson }}{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression: <, > & quotes stay as they are.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2? <b>é</b>"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "2+2"}}}
        ],
    },
    {"role": "tool", "content": "4"},
    {"role": "user", "content": "Thanks"},
]


def transformers_render(template: str, messages, tools=None, add_generation_prompt=True) -> str:
    # transformers annotates it as returning str; it returns (rendered, generation indices).
    rendered, _ = render_jinja_template(  # type: ignore[str-unpack]
        [messages],
        tools=tools,
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        bos_token=SPECIAL["bos_token"],
        eos_token=SPECIAL["eos_token"],
    )
    return str(rendered[0])


def embedded_template() -> str:
    template = read_gguf(embedded_gguf_path()).chat_template
    assert template is not None
    return template


@pytest.mark.parametrize("name", ["embedded", "tools", "chatglm3", "glm4"])
@pytest.mark.parametrize("tools", [None, [CALCULATOR]], ids=["no-tools", "tools"])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_renders_exactly_as_transformers(name, tools, add_generation_prompt):
    template = {
        "embedded": embedded_template,
        "tools": lambda: TOOLS_TEMPLATE,
        "chatglm3": lambda: CHATGLM3_TEMPLATE,
        "glm4": lambda: GLM4_TEMPLATE,
    }[name]()
    ours = JinjaChatTemplate(template, SPECIAL).apply_chat_template(
        CONVERSATION, tools, add_generation_prompt=add_generation_prompt
    )
    assert ours == transformers_render(template, CONVERSATION, tools, add_generation_prompt)


def test_tojson_keeps_html_characters_and_unicode():
    rendered = JinjaChatTemplate("{{ messages[0] | tojson }}").apply_chat_template(
        [{"role": "user", "content": "<é&>"}]
    )
    assert rendered == '{"role": "user", "content": "<é&>"}'


def test_generation_blocks_render_their_content():
    template = "{% for m in messages %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endfor %}"
    assert JinjaChatTemplate(template).apply_chat_template([{"role": "user", "content": "hi"}]) == "[hi]"


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__.__init__.__globals__ }}",
        "{% set ns = namespace(_x=1) %}",
        "{% set ns = namespace() %}{% set ns._secret = 1 %}",
        "{{ messages.append(1) }}",
    ],
)
def test_a_hostile_template_is_refused_by_the_sandbox(attack):
    with pytest.raises(jinja2.exceptions.SecurityError):
        JinjaChatTemplate(attack).apply_chat_template([{"role": "user", "content": "hi"}])


def test_raise_exception_becomes_a_prompt_error_in_the_dialect():
    with pytest.raises(jinja2.TemplateError, match="roles must be user or assistant"):
        JinjaChatTemplate(TOOLS_TEMPLATE, SPECIAL).apply_chat_template([{"role": "bad", "content": ""}])
    alternating = (
        "{% for m in messages %}{% if loop.index0 > 0 and m.role == messages[loop.index0 - 1].role %}"
        "{{ raise_exception('Roles must alternate') }}{% endif %}{{ m.content }}{% endfor %}"
    )
    dialect = ChatTemplateDialect(JinjaChatTemplate(alternating))
    with pytest.raises(PromptError, match="rejected this conversation: Roles must alternate"):
        dialect.render([Message(Role.USER, "a"), Message(Role.USER, "b")])


def test_no_template_and_tokenize_are_refused():
    with pytest.raises(ValueError, match="no chat template"):
        JinjaChatTemplate(None).apply_chat_template([])
    with pytest.raises(ValueError, match="tokenize with the engine"):
        JinjaChatTemplate("x").apply_chat_template([], tokenize=True)


def test_the_embedded_template_gets_the_hermes_dialect():
    assert isinstance(dialect_for(JinjaChatTemplate(embedded_template(), SPECIAL)), HermesDialect)


def test_a_template_that_renders_tools_keeps_the_generic_dialect():
    dialect = dialect_for(JinjaChatTemplate(TOOLS_TEMPLATE, SPECIAL))
    assert type(dialect) is ChatTemplateDialect
    assert dialect.tool_call_open == "<tool_call>\n"


def test_chatglm3_is_recognised_from_its_template_text():
    dialect = dialect_for(JinjaChatTemplate(CHATGLM3_TEMPLATE))
    assert isinstance(dialect, ChatGLM3Dialect)
    assert dialect.render([Message(Role.USER, "Hi")]) == "[gMASK]sop<|user|>\nHi<|assistant|>"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (CHATGLM3_TEMPLATE, True),
        ("<|system|>{{ x }}<|observation|>", True),
        (GLM4_TEMPLATE, False),  # GLM-4 shares the role tokens but writes <sop> and renders tools itself
        ("<|im_start|>", False),
        (None, False),
    ],
)
def test_chatglm3_template_detection(template, expected):
    assert is_chatglm3_template(template) is expected
