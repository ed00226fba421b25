"""A remote model's API key is never written: not to the store's files, not to any export.

Also a store that an older release filled with keys is cleaned when it is opened (migration 0003).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli_helpers import run_main
from workbench.conversation import Conversation
from workbench.messages import Message, Role
from workbench.models.spec import ModelSpec
from workbench.store import ConversationStore
from workbench.store.database import create_store_engine, migrate
from workbench.store.recorder import ConversationRecorder

KEY = "sk-test-4f1c9e0b7a2d44c1b6f3e8d9a0c1b2d3"
PASSWORD = "hunter2-url-password"
SPEC = ModelSpec(source=f"openai:http://me:{PASSWORD}@127.0.0.1:9/v1#gpt-x", api_key=KEY)


def store_files(url: str) -> list[Path]:
    """The SQLite database file and whichever of its WAL and shared-memory files exist."""
    database = Path(sa.make_url(url).database or "")
    found = [database] + [database.with_name(database.name + s) for s in ("-wal", "-shm")]
    return [path for path in found if path.exists()]


def holds_a_secret(data: str | bytes) -> bool:
    raw = data.encode() if isinstance(data, str) else data
    return KEY.encode() in raw or PASSWORD.encode() in raw or b"sk-test-4f1c" in raw


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "data"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(folder))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    yield folder


def fill_every_way(store: ConversationStore) -> None:
    """Save conversations with the keyed spec by every path the app and the CLI take."""
    info = store.create("chat", model=SPEC)  # a spec object (the CLI, the pages)
    store.save_all(info.id, [Message(Role.USER, "hello"), Message(Role.ASSISTANT, "hi")])
    conversation = Conversation()  # the recorder of a page or of `chat --save`
    ConversationRecorder.attach(store, conversation, model=SPEC)
    conversation.append(Message(Role.USER, "recorded"))
    store.create("tool", model={"source": "openai:x", "api_key": KEY, "nested": {"token": KEY}})
    # An export written elsewhere, carrying a key in its model record.
    imported = {"title": "imported", "model": {"source": "openai:x", "api_key": KEY}, "messages": []}
    store.import_json(json.dumps(imported))


def test_a_key_reaches_neither_the_store_nor_an_export(sqlite_url: str, tmp_path: Path) -> None:
    with ConversationStore.open(sqlite_url) as store:
        fill_every_way(store)
        infos = store.list()
        assert len(infos) == 4
        for info in infos:
            assert info.model is not None and "api_key" not in info.model
        spec_record = next(i.model for i in infos if i.model and i.model.get("backend"))
        assert spec_record["source"] == "openai:http://me@127.0.0.1:9/v1#gpt-x"  # the password is gone
        exports = [store.export_json(), store.export_markdown()]
        exports += [store.export_json(i.id) for i in infos] + [store.export_markdown(i.id) for i in infos]
        assert not any(holds_a_secret(text) for text in exports)
        for path in store_files(sqlite_url):  # while the store is open: the WAL holds the writes
            assert not holds_a_secret(path.read_bytes()), path
    for path in store_files(sqlite_url):  # closed: checkpointed into the database file
        assert not holds_a_secret(path.read_bytes()), path


def test_postgresql_rows_hold_no_key(postgres_db: str) -> None:
    with ConversationStore.open(postgres_db) as store:
        fill_every_way(store)
        with store.engine.connect() as connection:
            models = connection.exec_driver_sql("SELECT coalesce(model, '') FROM conversations").scalars()
            assert not any(holds_a_secret(model) for model in models)
        assert not holds_a_secret(store.export_json() + store.export_markdown())


def test_cli_exports_and_saved_asks_hold_no_key(data_dir: Path, tmp_path: Path) -> None:
    from workbench.cli.history import save_transcript

    with open(tmp_path / "err.txt", "w") as err:
        save_transcript([Message(Role.USER, "q"), Message(Role.ASSISTANT, "a")], "chat", SPEC, err)
    for name in ("all.json", "all.md"):
        status, _out, _err = run_main("history", "export", "-o", str(tmp_path / name))
        assert status == 0 and not holds_a_secret((tmp_path / name).read_bytes())
    status, out, _err = run_main("history", "list", "--json")
    [conversation_id] = [item["id"] for item in json.loads(out)]
    for args in (("show", conversation_id), ("show", conversation_id, "--json")):
        status, out, _err = run_main("history", *args)
        assert status == 0 and "q" in out and not holds_a_secret(out)
    for path in store_files(f"sqlite:///{data_dir / 'conversations.sqlite3'}"):
        assert not holds_a_secret(path.read_bytes()), path


def _old_store_with_keys(url: str) -> None:
    """A database at revision 0002, written as the releases before 0003 wrote it: keys included."""
    engine = create_store_engine(url)
    migrate(engine, "0002")
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    old = {**{k: v for k, v in vars(SPEC).items()}, "api_key": KEY}
    with engine.begin() as connection:
        for number in range(3):
            connection.execute(
                sa.text(
                    "INSERT INTO conversations (id, title, mode, model, created_at, updated_at, message_count)"
                    " VALUES (:id, 'keyed', 'chat', :model, :now, :now, 0)"
                ),
                {"id": f"old{number}", "model": json.dumps(old), "now": now},
            )
        connection.execute(sa.text("INSERT INTO conversations (id, title, mode, model, created_at, "
                                   "updated_at, message_count) VALUES ('plain', 'p', 'chat', :m, :now, :now, 0)"),
                           {"m": json.dumps({"source": "embedded"}), "now": now})  # fmt: skip
    for title in ("renamed once", "renamed twice"):  # each rewrite leaves the old row's bytes behind
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE conversations SET title = :t WHERE id = 'old0'"), {"t": title})
    engine.dispose()


def test_a_store_holding_keys_is_cleaned_when_opened(sqlite_url: str) -> None:
    _old_store_with_keys(sqlite_url)
    assert any(holds_a_secret(path.read_bytes()) for path in store_files(sqlite_url))  # the premise
    with ConversationStore.open(sqlite_url) as store:
        info = store.info("old0")
        assert info.title == "renamed twice" and info.model is not None and "api_key" not in info.model
        assert info.model["source"] == "openai:http://me@127.0.0.1:9/v1#gpt-x"
        assert store.info("plain").model == {"source": "embedded"}  # other records are left as they were
        for path in store_files(sqlite_url):
            assert not holds_a_secret(path.read_bytes()), path
    for path in store_files(sqlite_url):
        assert not holds_a_secret(path.read_bytes()), path


def test_a_postgresql_store_holding_keys_is_cleaned_when_opened(postgres_db: str) -> None:
    _old_store_with_keys(postgres_db)
    with ConversationStore.open(postgres_db) as store:
        with store.engine.connect() as connection:
            models = list(connection.exec_driver_sql("SELECT model FROM conversations").scalars())
        assert len(models) == 4 and not any(holds_a_secret(model) for model in models)
        model = store.info("old1").model
        assert model is not None and model["backend"] == "auto"


def test_the_spec_saves_without_its_key() -> None:
    assert "api_key" not in SPEC.to_dict() and SPEC.to_dict()["source"] == SPEC.source
    assert KEY not in repr(SPEC)
