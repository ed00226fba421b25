"""Export and import: round trips, OpenAI-style messages, and hostile files refused without a change."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from workbench.messages import Message, Role, ToolCall
from workbench.store import ConversationStore, ImportRefusedError

# A real 1x1 PNG: an import replaces images no page can draw by a note (issue 24).
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="


def _fill(store: ConversationStore) -> str:
    info = store.create("tool", model={"path": "embedded"})
    store.save_all(
        info.id,
        [
            # The fence starts its own line: a <script> line after prose opens a live HTML block.
            Message(Role.USER, "What is 2+2? Show `<script>` in code:\n```html\n<script>x()</script>\n```"),
            Message(Role.ASSISTANT, "", tool_calls=[ToolCall("add", {"a": 2, "b": 2})]),
            Message(Role.OBSERVATION, "4", name="add", images=[base64.b64decode(PNG_B64)]),
            Message(Role.ASSISTANT, "It is **4**."),
        ],
    )
    return info.id


def test_export_then_import_on_a_fresh_database(store: ConversationStore, sqlite_url: str) -> None:
    conversation_id = _fill(store)
    exported = store.export_json(conversation_id)
    data = json.loads(exported)
    assert data["mode"] == "tool" and data["title"].startswith("What is 2+2?")
    assert data["messages"][2]["images"] == [PNG_B64]
    with ConversationStore.open(sqlite_url.replace(".sqlite3", "-fresh.sqlite3")) as fresh:
        [imported] = fresh.import_json(exported)
        assert imported.id == conversation_id  # a free id is kept
        assert fresh.get(imported.id)[1] == store.get(conversation_id)[1]
        assert imported.title == data["title"] and imported.mode == "tool"
        assert imported.model == {"path": "embedded"}


def test_import_of_a_taken_id_gets_a_new_one(store: ConversationStore) -> None:
    conversation_id = _fill(store)
    [copy] = store.import_json(store.export_json(conversation_id))
    assert copy.id != conversation_id
    assert store.get(copy.id)[1] == store.get(conversation_id)[1]


def test_export_all_and_import_all(store: ConversationStore) -> None:
    _fill(store)
    other = store.create("chat", title="second")
    store.append(other.id, 0, Message(Role.USER, "hi"))
    everything = json.loads(store.export_json())
    assert [c["title"] for c in everything["conversations"]] == [
        "second",
        everything["conversations"][1]["title"],
    ]
    store.purge()
    for info in store.list():
        store.delete(info.id)
    store.purge()
    assert len(store.import_json(json.dumps(everything))) == 2
    assert store.count() == 2


def test_markdown_export(store: ConversationStore) -> None:
    markdown = store.export_markdown(_fill(store))
    assert markdown.startswith("# What is 2+2?")
    assert "## Observation (add)" in markdown and "Call `add`:" in markdown and '"a": 2' in markdown
    assert "It is **4**." in markdown and "image 1 of 1" in markdown


def test_openai_style_messages_import(store: ConversationStore) -> None:
    openai = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "assistant", "content": "18 C and sunny."},
    ]
    [info] = store.import_json(json.dumps(openai))
    messages = store.get(info.id)[1]
    assert [m.role for m in messages] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.OBSERVATION,
        Role.ASSISTANT,
    ]
    assert messages[2].tool_calls[0].name == "weather" and messages[2].tool_calls[0].arguments == {
        "city": "Paris"
    }
    assert messages[3].tool_call_id == "call_1" and messages[3].name == "weather"
    assert info.title == "Weather in Paris?" and info.mode == "chat"


def test_unreadable_openai_arguments_are_kept_as_an_invalid_call(store: ConversationStore) -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}]
    [info] = store.import_json(json.dumps([{"role": "assistant", "content": None, "tool_calls": calls}]))
    [message] = store.get(info.id)[1]
    assert message.invalid_calls[0].text == "{" and message.tool_calls == []


def _conversation(**changes: Any) -> str:
    base: dict[str, Any] = {"title": "t", "mode": "chat", "messages": [{"role": "user", "content": "hi"}]}
    base.update(changes)
    return json.dumps(base)


HOSTILE: dict[str, tuple[str | bytes, str]] = {
    "not json": ("{nope", "not valid JSON"),
    "not utf-8": (b"\xff\xfe{}", "not UTF-8"),
    "a number": ("42", "must be"),
    "messages not a list": (_conversation(messages={"a": 1}), '"messages"'),
    "content a number": (_conversation(messages=[{"role": "user", "content": 5}]), "content"),
    "unknown role": (_conversation(messages=[{"role": "root", "content": "x"}]), "Unknown role"),
    "title not a string": (_conversation(title=["x"]), "title"),
    "unknown mode": (_conversation(mode="shell"), "mode"),
    "bad image": (_conversation(messages=[{"role": "user", "images": ["@@@"]}]), "base64"),
    "script": (
        _conversation(messages=[{"role": "assistant", "content": "hi <script>alert(1)</script>"}]),
        "<script",
    ),
    "iframe": (_conversation(messages=[{"role": "user", "content": "<IFRAME src=x>"}]), "active HTML"),
    "event handler": (
        _conversation(messages=[{"role": "user", "content": '<img src=x onerror="alert(1)">'}]),
        "onerror",
    ),
    "javascript link": (
        _conversation(messages=[{"role": "user", "content": "[x](javascript:alert(1))"}]),
        "javascript",
    ),
    "script in title": (_conversation(title="<script>x</script>"), "title"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested"),
    "100 MB": (
        _conversation(messages=[{"role": "user", "content": "a" * 100_000_000}]),
        "over the 64 MB limit",
    ),
    "one huge message": (
        _conversation(messages=[{"role": "user", "content": "a" * 3_000_000}]),
        "characters long",
    ),
    "tool call without a name": (
        json.dumps([{"role": "assistant", "tool_calls": [{"function": {"name": 5, "arguments": "{}"}}]}]),
        "function 'name'",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_import_is_refused_and_changes_nothing(sqlite_url: str, name: str) -> None:
    data, expected = HOSTILE[name]
    with ConversationStore.open(sqlite_url) as store:
        _fill(store)
        before = store.export_json()
        with pytest.raises(ImportRefusedError, match=expected.replace("(", r"\(")):
            store.import_json(data)
        if name in ("unknown role", "script", "content a number"):
            # The same bad conversation after a good one: the good one is not stored either.
            both = json.dumps({"conversations": [json.loads(_conversation()), json.loads(data)]})
            with pytest.raises(ImportRefusedError, match="Conversation 2, message 1"):
                store.import_json(both)
        assert store.export_json() == before


def test_code_blocks_may_show_html(store: ConversationStore) -> None:
    text = "Here:\n```html\n<script>alert(1)</script>\n```\nand inline `<iframe>` too."
    [info] = store.import_json(_conversation(messages=[{"role": "assistant", "content": text}]))
    assert store.get(info.id)[1][0].content == text
