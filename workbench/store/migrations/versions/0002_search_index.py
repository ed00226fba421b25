"""A full-text index over message text: SQLite FTS5, or a PostgreSQL GIN index on a tsvector.

Existing rows are indexed by the migration. Other databases keep searching with LIKE.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Words, case- and accent-insensitive; "remove_diacritics 2" also folds accents on Latin letters.
_SQLITE_STATEMENTS = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
)


def _sqlite_has_fts5() -> bool:
    rows = op.get_bind().exec_driver_sql("PRAGMA compile_options").fetchall()
    return any(row[0] == "ENABLE_FTS5" for row in rows)


def upgrade() -> None:
    """Create the full-text index where the database has one, and index the existing messages."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite" and _sqlite_has_fts5():
        for statement in _SQLITE_STATEMENTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_messages_content_fts ON messages USING gin (to_tsvector('simple', content))"
        )


def downgrade() -> None:
    """Drop the full-text index."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_content_fts")
