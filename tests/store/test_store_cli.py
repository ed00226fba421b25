"""``python -m workbench history``, ``ask --save`` and ``chat --resume``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli, run_main
from workbench.messages import Message, Role
from workbench.store import ConversationStore


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(folder))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    return folder


@pytest.fixture
def saved_id(data_dir: Path) -> str:
    with ConversationStore.open() as store:
        info = store.create("code", title="Plotting sines")
        store.save_all(info.id, [Message(Role.USER, "plot a sine"), Message(Role.ASSISTANT, "Here it is.")])
        return info.id


def test_list_show_delete_restore(saved_id: str) -> None:
    status, out, _err = run_main("history", "list")
    assert status == 0 and saved_id in out and "Plotting sines" in out and "code" in out and "2 msgs" in out
    status, out, _err = run_main("history", "list", "--search", "sine", "--json")
    assert [item["id"] for item in json.loads(out)] == [saved_id]
    status, out, _err = run_main("history", "list", "--search", "zebra")
    assert out.strip() == "Nothing matches 'zebra'."
    status, out, _err = run_main("history", "show", saved_id[:6])  # a prefix is enough
    assert status == 0 and out.startswith("# Plotting sines") and "plot a sine" in out
    status, out, _err = run_main("history", "delete", saved_id)
    assert status == 0 and "history restore" in out
    assert run_main("history", "list")[1].strip() == "No saved conversations."
    assert saved_id in run_main("history", "list", "--deleted")[1]
    status, out, _err = run_main("history", "restore", saved_id[:8])
    assert status == 0 and "Restored" in out and saved_id in run_main("history", "list")[1]


def test_export_and_import_on_a_fresh_data_folder(
    saved_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = tmp_path / "all.json"
    status, _out, err = run_main("history", "export", "-o", str(exported))
    assert status == 0 and "Exported 1 conversations" in err
    status, _out, _err = run_main("history", "export", saved_id, "-o", str(tmp_path / "one.md"))
    assert (tmp_path / "one.md").read_text().startswith("# Plotting sines")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "fresh"))
    status, out, _err = run_main("history", "import", str(exported))
    assert status == 0 and out.startswith(f"Imported {saved_id}")
    status, out, _err = run_main("history", "show", saved_id, "--json")
    assert json.loads(out)["messages"][0]["content"] == "plot a sine"


def test_a_hostile_import_exits_1_and_changes_nothing(saved_id: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"messages": [{"role": "root", "content": "x"}]}))
    status, _out, err = run_main("history", "import", str(bad))
    assert status == 1 and "Unknown role 'root'" in err
    status, _out, err = run_main("history", "import", "-", stdin="<script>alert(1)</script>")
    assert status == 1 and "not valid JSON" in err
    status, _out, err = run_main("history", "import", str(tmp_path / "missing.json"))
    assert status == 1 and "is not a file" in err
    assert len(json.loads(run_main("history", "list", "--json")[1])) == 1


def test_unknown_id_exits_1_with_what_to_do(data_dir: Path) -> None:
    status, _out, err = run_main("history", "show", "nope")
    assert status == 1 and "history list" in err


@pytest.mark.model
def test_ask_save_then_chat_resume(data_dir: Path) -> None:
    env = {"WORKBENCH_DATA_DIR": str(data_dir)}
    asked = run_cli("ask", "--save", "--temperature", "0", "--max-new-tokens", "8", "Name a colour.", env=env)
    assert asked.returncode == 0, asked.stderr
    conversation_id = asked.stderr.split("Saved as ", 1)[1].split(" ", 1)[0]
    resumed = run_cli(
        "chat", "--resume", conversation_id[:8], "--temperature", "0", "--max-new-tokens", "8",
        stdin="And another one?\nstop\n", env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming Name a colour. (2 messages)" in resumed.stdout
    with ConversationStore.open() as store:
        info, messages = store.get(conversation_id)
    assert [m.role.value for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2].content == "And another one?" and info.title == "Name a colour."
    assert info.model is not None and info.model["source"] == "embedded"


@pytest.mark.model
@pytest.mark.parametrize("mode", ["chat", "tool", "code"])
def test_ask_save_of_a_prompt_too_long_leaves_no_conversation(saved_id: str, mode: str) -> None:
    """Refused before the first token: the error says what to do, and no empty conversation is saved."""
    status, out, err = run_main("ask", "--save", "--mode", mode, "--context", "512", "-", stdin="word " * 600)
    assert (status, out) == (1, "")
    assert "but the model's context holds 512. Clear the chat, shorten the message" in err
    assert "Saved as" not in err
    with ConversationStore.open() as store:
        assert [info.id for info in store.list()] == [saved_id]  # the one saved before, and no other
        assert store.list(deleted=True) == []
        info, messages = store.get(saved_id)
    assert (info.title, [m.content for m in messages]) == ("Plotting sines", ["plot a sine", "Here it is."])
