"""Bad stored data: wrong-typed fields are shown as missing, never a crash; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from tests.cli_helpers import run_main
from workbench.messages import Message, Role
from workbench.store import ConversationStore, ImportRefusedError

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")

BAD_CHAT: list[dict[str, Any]] = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello", "stats": {"new_tokens": "many", "seconds": 1.5}},
]
BAD_TOOL: list[dict[str, Any]] = [
    {"role": "user", "content": "add 1 and 1"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "1+1"}}],
        "stats": {"new_tokens": "many"},
    },
    {
        "role": "observation",
        "name": "calculator",
        "tool_call_id": "c1",
        "content": "2",
        "metadata": {"duration_s": "slow", "arguments": {"expression": "1+1"}},
    },
    {"role": "assistant", "content": "It is 2.", "stats": {"new_tokens": "many"}},
]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE", "WORKBENCH_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_wrong_typed_optional_fields_are_imported_as_missing(store: ConversationStore) -> None:
    notes: list[str] = []
    [info] = store.import_json(json.dumps({"mode": "tool", "messages": BAD_TOOL}), notes=notes)
    messages = store.get(info.id)[1]
    assert messages[1].stats == {} and messages[3].stats == {}
    assert "duration_s" not in messages[2].metadata and messages[2].metadata["arguments"] == {
        "expression": "1+1"
    }
    assert messages[1].tool_calls[0].name == "calculator"  # the rest is kept
    assert notes == [
        "Conversation 1, message 2, field stats.new_tokens: input should be a valid integer, got 'many': "
        "imported without it.",
        "Conversation 1, message 3, field metadata.duration_s: input should be a valid number, got 'slow': "
        "imported without it.",
        "Conversation 1, message 4, field stats.new_tokens: input should be a valid integer, got 'many': "
        "imported without it.",
    ]


def _store_raw(store: ConversationStore, mode: str, raws: list[dict[str, Any]]) -> str:
    """Write messages as another program (or an older release) might have: no check on the way in."""
    info = store.create(mode, title="written elsewhere")
    with store.engine.begin() as connection:
        for position, raw in enumerate(raws):
            extra = {k: v for k, v in raw.items() if k not in ("role", "content")}
            connection.execute(
                sa.text(
                    "INSERT INTO messages (conversation_id, position, role, content, extra, created_at) "
                    "VALUES (:id, :position, :role, :content, :extra, :now)"
                ),
                {"id": info.id, "position": position, "role": raw["role"], "content": raw.get("content", ""),
                 "extra": json.dumps(extra), "now": info.created},
            )  # fmt: skip
        connection.execute(
            sa.text("UPDATE conversations SET message_count = :n WHERE id = :id"),
            {"n": len(raws), "id": info.id},
        )
    return info.id


ALREADY_STORED: list[dict[str, Any]] = [
    *BAD_TOOL,
    {"role": "observation", "name": "interpreter", "content": "x", "images": ["@@not base64"],
     "execution": {"outputs": [{"kind": "stream", "text": "x"}, {"kind": 5}], "duration": "long",
                   "execution_count": "one"}},
    {"role": "assistant", "content": "stopped", "stopped": "yes", "failure": 3, "metadata": "not an object"},
]  # fmt: skip


def test_a_store_already_holding_bad_fields_opens(store: ConversationStore) -> None:
    conversation_id = _store_raw(store, "tool", ALREADY_STORED)
    _info, messages = store.get(conversation_id)
    assert [m.role for m in messages][:4] == [Role.USER, Role.ASSISTANT, Role.OBSERVATION, Role.ASSISTANT]
    assert messages[1].stats == {} and "duration_s" not in messages[2].metadata
    run = messages[4]
    assert run.images == [] and run.execution is not None and run.execution.duration == 0.0
    assert [o.text for o in run.execution.outputs] == ["x"] and run.execution.execution_count is None
    assert messages[5].failure is None and messages[5].stopped is False and messages[5].metadata == {}
    assert "written elsewhere" in store.export_markdown(conversation_id)
    assert json.loads(store.export_json(conversation_id))["messages"][1]["stats"] == {}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "a\\ud800b"}]}',
         "message 2, field content"),
        ('{"title": "\\udfff", "messages": []}', "field title"),
        ('{"messages": [{"role": "user", "content": "x", "metadata": {"k\\ud800": 1}}]}',
         "message 1, field metadata.k"),
    ],
)  # fmt: skip
def test_lone_surrogates_are_refused_naming_the_field(
    store: ConversationStore, payload: str, field: str
) -> None:
    with pytest.raises(ImportRefusedError, match=f"Conversation 1, {field}.*lone surrogate"):
        store.import_json(payload)
    assert store.count() == 0


def test_history_import_of_bad_input_is_one_line_naming_file_message_and_field(
    data_dir: Path, tmp_path: Path
) -> None:
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('{"messages": [{"role": "user", "content": "a\\ud800b"}]}')
    status, out, err = run_main("history", "import", str(surrogate))
    assert status == 1 and out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"Error: {surrogate}: Conversation 1, message 1, field content:"), line
    assert "lone surrogate" in line

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"messages": [{"role": "user", "content": 5}]}))
    status, _out, err = run_main("history", "import", str(wrong))
    assert status == 1 and err.splitlines() == [
        f"Error: {wrong}: Conversation 1, message 1, field content: input should be a valid string, got 5; "
        "fix it in the file and import again."
    ]

    digits = tmp_path / "digits.json"
    digits.write_text('{"messages": [{"role": "user", "content": "x", "n": ' + "9" * 5000 + "}]}")
    status, _out, err = run_main("history", "import", str(digits))
    assert status == 1 and len(err.splitlines()) == 1 and "not valid JSON" in err

    status, _out, err = run_main("history", "import", "-", stdin="")
    assert status == 1 and err.startswith("Error: standard input: The import is not valid JSON")

    optional = tmp_path / "optional.json"
    optional.write_text(json.dumps({"mode": "tool", "messages": BAD_TOOL}))
    status, out, err = run_main("history", "import", str(optional))
    assert status == 0 and out.startswith("Imported ")
    assert err.splitlines()[1] == (
        f"[workbench] {optional}: Conversation 1, message 3, field metadata.duration_s: input should be a "
        "valid number, got 'slow': imported without it."
    )


@pytest.mark.model
@pytest.mark.parametrize("how", ["imported", "already stored"])
def test_chat_and_tool_pages_open_conversations_with_bad_fields(data_dir: Path, how: str) -> None:
    with ConversationStore.open() as store:
        if how == "imported":
            [chat] = store.import_json(json.dumps({"mode": "chat", "messages": BAD_CHAT}))
            [tool] = store.import_json(json.dumps({"mode": "tool", "messages": BAD_TOOL}))
            chat_id, tool_id = chat.id, tool.id
        else:
            chat_id, tool_id = _store_raw(store, "chat", BAD_CHAT), _store_raw(store, "tool", BAD_TOOL)
    for conversation_id, page in ((chat_id, None), (tool_id, "pages/tool.py")):
        at = AppTest.from_file(MAIN, default_timeout=300)
        at.query_params["c"] = conversation_id
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        texts = [m.markdown[0].value for m in at.chat_message if m.markdown]
        assert "hi" in texts or "add 1 and 1" in texts, texts


def test_message_round_trip_is_unchanged_by_the_check(store: ConversationStore) -> None:
    info = store.create("chat")
    message = Message(Role.ASSISTANT, "x", stats={"new_tokens": 3, "seconds": 0.5, "finish_reason": "eos"})
    store.save_all(info.id, [message])
    assert store.get(info.id)[1] == [message]
