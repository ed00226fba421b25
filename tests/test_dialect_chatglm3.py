"""ChatGLM3's format, render and parse, string for string against the examples of THUDM/ChatGLM3's PROMPT_en.md.

The document puts an extra newline before each role token "for readability" and says it is not part
of the real format; :func:`real` takes it out. Its tool list is Python-style (trailing commas), so that
block is compared as data, the rest character for character.
"""

from __future__ import annotations

import json
import re

import pytest

from workbench.dialects import ChatGLM3Dialect, HermesDialect, dialect_for, is_chatglm3
from workbench.dialects.calls import invalid_calls
from workbench.dialects.chatglm3 import TOOL_PROMPT, format_call, format_value, parse_call
from workbench.messages import Message, Role, ToolCall, transcript_from_json, transcript_to_json

DOC_TOOLS = """[
    {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "unit": {"type": "string"},
            },
            "required": ["location"],
        },
    }
]"""

DOC_TOOL_CALLING = f"""<|system|>
Answer the following questions as best as you can. You have access to the following tools:
{DOC_TOOLS}
<|user|>
What's the weather in Beijing today?
<|assistant|>
Okay, let's look up the weather in Bejing today.
<|assistant|>get_current_weather
```python
tool_call(location="beijing", unit="celsius")
```
<|observation|>
{{"temperature": 22}}
<|assistant|>
According to the query results, the temperature in Beijing today is 22 degrees Celsius."""

DOC_HEART = """<|user|>
Help me draw a heart
<|assistant|>interpreter
```python
import numpy as np
import matplotlib.pyplot as plt

# The parametric equation for the shape of a heart
def heart(t):
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return x, y

t = np.linspace(0, 2 * np.pi, 1000)
x, y = heart(t)

plt.figure(figsize=(6, 6))
plt.plot(x, y, color='red')
plt.axis('equal')
plt.axis('off')
plt.show()
```
<|observation|>
```result
【image】
```
<|assistant|>
This is a shape of heart. I used parametric equations to describe this shape and drew it using Matplotlib. \
If you have any other needs or questions, please feel free to let me know."""

DOC_LOADING = """<|user|>
#File: /mnt/data/metadata.jsonl
#Size: 35380
#File uploaded
Are there missing or abnormal values in the file?
<|assistant|>
Firstly, I will read the file you provided and review its contents to determine if there are missing or \
abnormal values.

We start by loading the file:
<|assistant|>interpreter
```python
import json

# Load the uploaded file
data = []
with open("/mnt/data/metadata.jsonl", 'r') as file:
    for line in file:
        data.append(json.loads(line))

# Display the first few records to get a sense of the data
data[:5]
```"""


def real(doc: str) -> str:
    """The document's text without the readability newline before each role token."""
    return re.sub(r"\n(<\|(?:system|user|assistant|observation)\|>)", r"\1", doc)


def python_style_json(text: str) -> object:
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


WEATHER_TOOL = {"type": "function", "function": python_style_json(DOC_TOOLS)[0]}  # type: ignore[index]
DIALECT = ChatGLM3Dialect()


def split_system(prompt: str) -> tuple[str, object, str]:
    """(header line, tools as data, everything from the first <|user|>)."""
    system, rest = prompt.split("<|user|>", 1)
    header, tools = system.split("\n", 2)[1:]
    return header, python_style_json(tools), "<|user|>" + rest


def test_the_tool_calling_example_renders_string_for_string():
    first = DIALECT.parse(
        "\nOkay, let's look up the weather in Bejing today.<|assistant|>get_current_weather\n"
        '```python\ntool_call(location="beijing", unit="celsius")\n```'
    )
    conversation = [
        Message(Role.USER, "What's the weather in Beijing today?"),
        first,
        Message(Role.OBSERVATION, '{"temperature": 22}', name="get_current_weather"),
        Message(
            Role.ASSISTANT,
            "According to the query results, the temperature in Beijing today is 22 degrees Celsius.",
        ),
    ]
    prompt = DIALECT.render(conversation, tools=[WEATHER_TOOL], add_generation_prompt=False)
    assert split_system(prompt) == split_system(real(DOC_TOOL_CALLING))
    assert prompt.startswith(f"<|system|>\n{TOOL_PROMPT}\n[\n    {{\n")


def test_a_call_is_parsed_with_its_name_kept_in_metadata():
    message = DIALECT.parse(
        'get_current_weather\n```python\ntool_call(location="beijing", unit="celsius")\n```'
    )
    assert message.role is Role.ASSISTANT and message.content == ""
    assert message.tool_calls == [ToolCall("get_current_weather", {"location": "beijing", "unit": "celsius"})]
    assert message.metadata["tool"] == "get_current_weather"
    assert DIALECT.render([message], add_generation_prompt=False) == (
        '<|assistant|>get_current_weather\n```python\ntool_call(location="beijing", unit="celsius")\n```'
    )


def test_the_second_call_of_a_conversation_still_renders_with_its_tool_name():
    call = 'get_current_weather\n```python\ntool_call(location="{}")\n```'
    history = [
        Message(Role.USER, "Beijing?"),
        DIALECT.parse(call.format("beijing")),
        Message(Role.OBSERVATION, '{"temperature": 22}', name="get_current_weather"),
        Message(Role.ASSISTANT, "22 degrees."),
        Message(Role.USER, "And Shanghai?"),
        DIALECT.parse(call.format("shanghai")),
        Message(Role.OBSERVATION, '{"temperature": 25}', name="get_current_weather"),
    ]
    # The history survives a transcript round trip (a page reload, the CLI's --json) with the names.
    history = transcript_from_json(transcript_to_json(history))
    prompt = DIALECT.render(history, tools=[WEATHER_TOOL])
    assert prompt.count("<|assistant|>get_current_weather\n```python\ntool_call(location=") == 2
    assert prompt.endswith(
        '<|user|>\nAnd Shanghai?<|assistant|>get_current_weather\n```python\ntool_call(location="shanghai")\n```'
        '<|observation|>\n{"temperature": 25}<|assistant|>'
    )


def test_the_code_interpreter_examples_round_trip():
    loading = DIALECT.parse(real(DOC_LOADING).split("<|assistant|>", 1)[1])
    assert loading.interpreter is True
    assert loading.content.startswith("Firstly, I will read the file") and loading.content.endswith(
        "loading the file:"
    )
    assert loading.code is not None
    assert loading.code.startswith("import json\n") and loading.code.endswith("data[:5]")
    user = Message(
        Role.USER,
        "#File: /mnt/data/metadata.jsonl\n#Size: 35380\n#File uploaded\n"
        "Are there missing or abnormal values in the file?",
    )
    assert DIALECT.render([user, loading], add_generation_prompt=False) == real(DOC_LOADING)

    heart_reply = real(DOC_HEART).split("<|assistant|>", 1)[1].split("<|observation|>")[0]
    heart = DIALECT.parse(heart_reply)
    assert heart.content == "" and heart.code is not None and heart.code.endswith("plt.show()")
    answer = real(DOC_HEART).rsplit("<|assistant|>\n", 1)[1]
    conversation = [
        Message(Role.USER, "Help me draw a heart"),
        heart,
        Message(Role.OBSERVATION, "【image】", name="interpreter"),
        Message(Role.ASSISTANT, answer),
    ]
    assert DIALECT.render(conversation, add_generation_prompt=False) == real(DOC_HEART)


def test_the_multi_turn_example_and_the_generation_prompt():
    doc = real(
        "<|system|>\nYou are ChatGLM3, a large language model trained by Zhipu.AI. Follow the user's "
        "instructions carefully. Respond using markdown.\n<|user|>\nHello\n<|assistant|>\n"
        "Hello, I'm ChatGLM3. What can I assist you today?"
    )
    system, rest = doc.split("<|user|>\n")
    hello, answer = rest.split("<|assistant|>\n")
    conversation = [
        Message(Role.SYSTEM, system.removeprefix("<|system|>\n")),
        Message(Role.USER, hello),
        DIALECT.parse("\n" + answer),
    ]
    assert DIALECT.render(conversation, add_generation_prompt=False) == doc
    assert DIALECT.render(conversation[:2]) == doc.split("\nHello, I'm")[0]


def test_generation_stops_at_user_and_observation_and_parse_cuts_there():
    assert set(DIALECT.stop_strings) == {"<|user|>", "<|observation|>"}
    assert DIALECT.tool_call_open is None  # Python-style calls are not decoded under a JSON schema
    message = DIALECT.parse('get_current_weather\n```python\ntool_call(location="x")\n```<|observation|>')
    assert message.tool_calls == [ToolCall("get_current_weather", {"location": "x"})]
    assert DIALECT.parse("\nHi there<|user|>\nmore").content == "Hi there"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'tool_call(a=1, b=-2.5, c=True, d=None, e=[1, "x"], f={"k": (1, 2)})',
            {"a": 1, "b": -2.5, "c": True, "d": None, "e": [1, "x"], "f": {"k": (1, 2)}},
        ),
        ("tool_call()", {}),
        ("tool_call(text='it\\'s \"quoted\"', city='北京')", {"text": 'it\'s "quoted"', "city": "北京"}),
    ],
)
def test_arguments_are_literals_read_with_ast(body, expected):
    assert parse_call("t", f"```python\n{body}\n```") == ToolCall("t", expected)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('tool_call(location=__import__("os").system("touch /tmp/pwned"))', "is not a literal value"),
        ("tool_call(x=open('/etc/passwd').read())", "is not a literal value"),
        ('tool_call("beijing")', "must pass every argument by name"),
        ("tool_call(**{'a': 1})", "must pass every argument by name"),
        ('print("hi")', "must be a single tool_call(...)"),
        ('tool_call(location="beijing"', "is not valid Python"),
        ("import os", "is not valid Python"),
    ],
)
def test_a_bad_call_becomes_an_invalid_call_and_nothing_runs(body, error, tmp_path):
    message = DIALECT.parse(f"get_current_weather\n```python\n{body}\n```")
    assert message.tool_calls == []
    [bad] = invalid_calls(message)
    assert bad.name == "get_current_weather" and error in bad.error
    assert "write" in bad.error.lower()  # says how to write it instead
    assert not (tmp_path / "pwned").exists() and not __import__("os").path.exists("/tmp/pwned")
    # The unreadable call is rendered back as written, so the model sees its own mistake.
    assert f"<|assistant|>get_current_weather\n```python\n{body}\n```" in DIALECT.render([message])


def test_values_are_written_as_python_literals_with_double_quoted_strings():
    assert format_value('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert format_value("北京") == '"北京"'
    assert format_value([True, None, 1.5, {"a": "b"}]) == '[True, None, 1.5, {"a": "b"}]'
    call = ToolCall("t", {"q": "x", "n": 3, "flags": [False]})
    assert format_call(call) == '```python\ntool_call(q="x", n=3, flags=[False])\n```'
    assert parse_call("t", format_call(call)) == call


def test_several_calls_and_text_in_one_reply():
    message = DIALECT.parse(
        "\nLet me check both.<|assistant|>a\n```python\ntool_call(x=1)\n```<|assistant|>b\n```python\ntool_call()\n```"
    )
    assert message.content == "Let me check both."
    assert message.tool_calls == [ToolCall("a", {"x": 1}), ToolCall("b", {})]


def test_a_plain_reply_without_the_newline_is_kept_as_text():
    assert DIALECT.parse("Hello").content == "Hello"
    assert DIALECT.parse("Sure, here is code:\n```python\nprint(1)\n```").tool_calls == []


class ChatGLMTokenizer:
    """Stands in for ChatGLM3's remote-code tokenizer (class name and get_command are what count)."""

    chat_template = None
    encode_special_tokens = False

    def get_command(self, token: str) -> int:
        commands = {"<|user|>": 64795, "<|assistant|>": 64796, "<|observation|>": 64797}
        assert token in commands, f"{token} is not a special token"
        return commands[token]


class ChatGLM2Like(ChatGLMTokenizer):
    def get_command(self, token: str) -> int:
        assert token == "[gMASK]", f"{token} is not a special token"
        return 1


def test_dialect_for_picks_chatglm3_by_tokenizer():
    tokenizer = ChatGLMTokenizer()
    dialect = dialect_for(tokenizer)
    assert isinstance(dialect, ChatGLM3Dialect)
    assert tokenizer.encode_special_tokens is True  # role tokens written as text are read as tokens
    assert dialect.render([Message(Role.USER, "Hi")]) == "[gMASK]sop<|user|>\nHi<|assistant|>"
    ChatGLM2Like.__name__ = "ChatGLMTokenizer"
    assert not is_chatglm3(ChatGLM2Like())


def test_dialect_for_falls_back_to_hermes_for_a_template_without_tools():
    class Plain:
        chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    assert isinstance(dialect_for(Plain()), HermesDialect)
