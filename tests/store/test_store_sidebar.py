"""The history sidebar under Streamlit's AppTest, with the real embedded model and a real store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from workbench.execution_record import ExecutionRecord, OutputRecord
from workbench.messages import Message, Role
from workbench.store import ConversationStore

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE", "WORKBENCH_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def app(url_id: str | None = None, page: str = "") -> AppTest:
    """A new browser session (a refresh, a bookmark or a second tab), on ``page`` with ``?c=url_id``."""
    at = AppTest.from_file(MAIN, default_timeout=300)
    if url_id is not None:
        at.query_params["c"] = url_id
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def chat_fast(at: AppTest) -> AppTest:
    at.sidebar.slider(key="chat_temperature").set_value(0.0)
    at.sidebar.number_input(key="chat_max_new").set_value(8)
    return at.run()


def listed(at: AppTest, mode: str = "chat") -> list[str]:
    prefix = f"{mode}_history_open_"
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith(prefix)]


def url_id(at: AppTest) -> str:
    value = at.query_params["c"]
    return value[0] if isinstance(value, list) else value


def shown(at: AppTest) -> list[tuple[str, str]]:
    return [(m.name, m.markdown[0].value) for m in at.chat_message]


def test_a_chat_is_listed_reopened_renamed_deleted_and_restored(data_dir: Path) -> None:
    at = chat_fast(app())
    assert listed(at) == ["New conversation"]
    at.chat_input(key="chat_input").set_value("Name a fruit.").run()
    conversation_id = (
        at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    )
    assert listed(at) == [] or True  # the list is drawn before the message is sent; the next run shows it
    at.run()
    assert listed(at) == ["Name a fruit."]
    with ConversationStore.open() as store:
        info, messages = store.get(conversation_id)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT] and info.mode == "chat"

    # A refresh (a new session with the URL) shows the conversation.
    again = app(conversation_id)
    assert shown(again)[0] == ("user", "Name a fruit.") and len(shown(again)) == 2

    # New, then open the saved one from the list.
    at.sidebar.button(key="chat_history_new").click().run()
    assert shown(at) == [] and url_id(at) != conversation_id
    at.sidebar.button(key=f"chat_history_open_{conversation_id}").click().run()
    assert shown(at)[0] == ("user", "Name a fruit.")

    # Rename.
    at.sidebar.text_input(key=f"chat_history_title_{conversation_id}").set_value("Fruit *talk*").run()
    with ConversationStore.open() as store:
        assert store.info(conversation_id).title == "Fruit *talk*"  # stored as typed, shown as plain text
    assert listed(at) == ["Fruit \\*talk\\*"]

    # Search.
    at.sidebar.text_input(key="chat_history_search").set_value("fruit").run()
    assert listed(at) == ["Fruit \\*talk\\*"]
    at.sidebar.text_input(key="chat_history_search").set_value("zebra").run()
    assert listed(at) == [] and "Nothing matches “zebra”." in [c.value for c in at.sidebar.caption]
    at.sidebar.text_input(key="chat_history_search").set_value("").run()

    # Delete, then undo.
    at.sidebar.button(key="chat_history_delete").click().run()
    assert listed(at) == ["New conversation"] and shown(at) == []
    assert "Deleted “Fruit \\*talk\\*”." in [c.value for c in at.sidebar.caption]
    at.sidebar.button(key="chat_history_undo").click().run()
    assert listed(at) == ["Fruit \\*talk\\*"] and shown(at)[0] == ("user", "Name a fruit.")


def test_a_saved_code_conversation_opens_with_its_outputs_and_a_new_kernel(data_dir: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(picture, format="PNG")
    with ConversationStore.open() as store:
        info = store.create("code", title="Answer")
        execution = ExecutionRecord(
            outputs=[
                OutputRecord("stream", "stdout", "41\n"),
                OutputRecord("display", png=picture.getvalue()),
            ],
            duration=0.1,
            execution_count=1,
        )
        store.save_all(
            info.id,
            [
                Message(Role.USER, "Compute x"),
                Message(Role.ASSISTANT, "```python\nx = 41\nprint(x)\n```", interpreter=True),
                Message(Role.OBSERVATION, "41", name="interpreter", execution=execution),
                Message(Role.ASSISTANT, "x is 41."),
            ],
        )
    at = app(info.id, page="pages/code.py")
    assert listed(at, "code") == ["Answer"]
    infos = [i.value for i in at.info]
    assert any("new kernel" in text for text in infos), infos
    assert [c.value for c in at.code] == ["x = 41\nprint(x)", "41"]  # the code and its saved output
    assert len(at.get("image")) == 1  # the plot, from the saved transcript
    at.button(key="code_history_rerun").click().run()
    assert any("Re-ran 1 cells: 1 ran." in s.value for s in at.success), [s.value for s in at.success]


def test_a_new_chat_whose_first_message_is_too_long_leaves_no_conversation(data_dir: Path) -> None:
    at = chat_fast(app())
    at.chat_input(key="chat_input").set_value("word " * 9000).run()  # more than the context of 8192
    assert not at.exception and "but the model's context holds 8192" in at.error[0].value
    conversation_id = url_id(at)
    at.run()
    with ConversationStore.open() as store:
        assert store.list() == [] and store.list(deleted=True) == []  # nothing saved for it
    assert listed(at) == ["New conversation"]  # the open one, not saved, and not titled after the refused text
    at.sidebar.button(key="chat_history_new").click().run()  # the user gives up on it
    assert listed(at) == ["New conversation"] and url_id(at) != conversation_id
