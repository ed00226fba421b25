"""Schema migrations: a database made by the first schema opens in this release with every row."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from workbench.store import ConversationStore, StoreVersionError
from workbench.store.database import create_store_engine, head_revision, migrate


def _first_schema_with_rows(url: str) -> None:
    """Create the database at revision 0001 and fill it as that release wrote it."""
    engine = create_store_engine(url)
    migrate(engine, "0001")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO conversations (id, title, mode, model, created_at, updated_at, message_count) "
                "VALUES (:id, :title, 'code', :model, :now, :now, 2)"
            ),
            {
                "id": "old1",
                "title": "From the first release",
                "model": json.dumps({"path": "embedded"}),
                "now": now,
            },
        )
        for position, (role, content, extra) in enumerate(
            [
                ("user", "an antelope question", {}),
                ("observation", "out", {"name": "interpreter", "images": ["cG5n"]}),
            ]
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO messages (conversation_id, position, role, content, extra, created_at) "
                    "VALUES ('old1', :position, :role, :content, :extra, :now)"
                ),
                {
                    "position": position,
                    "role": role,
                    "content": content,
                    "extra": json.dumps(extra),
                    "now": now,
                },
            )
    engine.dispose()


def test_first_schema_upgrades_without_losing_a_row(store_url: str) -> None:
    _first_schema_with_rows(store_url)
    with ConversationStore.open(store_url) as store:
        info, messages = store.get("old1")
        assert info.title == "From the first release" and info.mode == "code"
        assert info.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert [m.content for m in messages] == ["an antelope question", "out"]
        assert messages[1].images == [b"png"] and messages[1].name == "interpreter"
        # The search index of revision 0002 covers the rows written before it existed.
        assert [i.id for i in store.search("antelope")] == ["old1"]
        with store.engine.connect() as connection:
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        assert version == head_revision()


def test_opening_twice_migrates_once(store_url: str) -> None:
    ConversationStore.open(store_url).close()
    with ConversationStore.open(store_url) as store:
        store.create("chat")
        assert store.count() == 1


def test_a_newer_database_is_refused_untouched(store_url: str) -> None:
    ConversationStore.open(store_url).close()
    engine = create_store_engine(store_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()
    with pytest.raises(StoreVersionError, match="newer release"):
        ConversationStore.open(store_url)
