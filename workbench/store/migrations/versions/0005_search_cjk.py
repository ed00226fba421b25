"""Search inside text written without spaces (Chinese, Japanese, Korean, Thai): substring indexes.

FTS5's ``unicode61`` tokenizer (0002) reads a run of Chinese characters as one word, so 天气 is not
found inside 今天北京的天气怎么样; PostgreSQL's ``simple`` configuration does the same. This revision adds:

- SQLite: ``messages_cjk``, an FTS5 ``trigram`` index of the messages that hold a character of those
  scripts (the others never match such a query), contentless, each text indexed with two spaces after it
  so that every one- and two-character substring starts some indexed trigram; ``messages_cjk_terms``
  (fts5vocab) lists those trigrams, which is how a one- or two-character query finds them. Needs SQLite
  3.34 (the trigram tokenizer); older builds keep searching such text with LIKE.
- PostgreSQL: the ``pg_trgm`` extension and a GIN trigram index on ``messages.content`` for ``ILIKE``
  (words of three characters or more); where the extension cannot be created (not installed, no right
  to), nothing is created and such queries scan. For two-character words (most Chinese words), which
  have no trigram: ``workbench_cjk_bigrams(content)``, the distinct lower-cased two-character windows
  holding such a character, and a GIN index on it (a text without such characters costs one regex test).

Existing rows are indexed by the migration. A frozen copy of the character set of
``workbench/store/search.py`` as it was at this revision.

Revision ID: 0005_search_cjk
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005_search_cjk"
down_revision = "0004"
branch_labels = None
depends_on = None

logger = logging.getLogger(__name__)

# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, CJK radicals to unified
# ideographs (kana, bopomofo, Hangul jamo included), Hangul syllables, compatibility and extension
# ideographs. A GLOB bracket of code point ranges.
UNSPACED_GLOB = (
    "*[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003134f]*"
)
_PAD = "'  '"  # appended to every indexed text (see the docstring)

_SQLITE_STATEMENTS = (
    "CREATE VIRTUAL TABLE messages_cjk USING fts5(content, content='', tokenize='trigram')",
    "CREATE VIRTUAL TABLE messages_cjk_terms USING fts5vocab(messages_cjk, 'row')",
    f"CREATE TRIGGER messages_cjk_insert AFTER INSERT ON messages WHEN new.content GLOB '{UNSPACED_GLOB}' "
    f"BEGIN INSERT INTO messages_cjk(rowid, content) VALUES (new.id, new.content || {_PAD}); END",
    f"CREATE TRIGGER messages_cjk_delete AFTER DELETE ON messages WHEN old.content GLOB '{UNSPACED_GLOB}' "
    "BEGIN INSERT INTO messages_cjk(messages_cjk, rowid, content) "
    f"VALUES ('delete', old.id, old.content || {_PAD}); END",
    "CREATE TRIGGER messages_cjk_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_cjk(messages_cjk, rowid, content) "
    f"SELECT 'delete', old.id, old.content || {_PAD} WHERE old.content GLOB '{UNSPACED_GLOB}'; "
    f"INSERT INTO messages_cjk(rowid, content) SELECT new.id, new.content || {_PAD} "
    f"WHERE new.content GLOB '{UNSPACED_GLOB}'; END",
    f"INSERT INTO messages_cjk(rowid, content) SELECT id, content || {_PAD} FROM messages "
    f"WHERE content GLOB '{UNSPACED_GLOB}'",
)


def _sqlite_has_trigram() -> bool:
    bind = op.get_bind()
    options = {row[0] for row in bind.exec_driver_sql("PRAGMA compile_options").fetchall()}
    version = bind.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    return "ENABLE_FTS5" in options and tuple(int(part) for part in str(version).split(".")[:2]) >= (3, 34)


def _postgresql_trigram_index() -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").first() is None:
        logger.warning("pg_trgm is not installed: Chinese and Japanese search will scan the messages.")
        return
    savepoint = bind.begin_nested()  # a refused CREATE EXTENSION must not abort the whole migration
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        bind.exec_driver_sql(
            "CREATE INDEX ix_messages_content_trgm ON messages USING gin (content gin_trgm_ops)"
        )
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        logger.warning("No pg_trgm index (%s): Chinese and Japanese search will scan the messages.", exc)
    else:
        savepoint.commit()


# The same character class as UNSPACED_GLOB, as a PostgreSQL regular expression.
UNSPACED_REGEX = UNSPACED_GLOB[1:-1]

_POSTGRESQL_BIGRAMS = (
    "CREATE FUNCTION workbench_cjk_bigrams(text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    f"SELECT CASE WHEN $1 ~ '{UNSPACED_REGEX}' THEN ("
    "SELECT coalesce(array_agg(DISTINCT lower(substr($1, i, 2))), '{}') "
    "FROM generate_series(1, length($1) - 1) AS i "
    f"WHERE substr($1, i, 2) ~ '{UNSPACED_REGEX}') ELSE '{{}}'::text[] END $$",
    "CREATE INDEX ix_messages_content_bigrams ON messages USING gin (workbench_cjk_bigrams(content))",
)


def _postgresql_bigram_index() -> None:
    bind = op.get_bind()
    savepoint = bind.begin_nested()  # no right to create a function: the search scans instead
    try:
        for statement in _POSTGRESQL_BIGRAMS:
            bind.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        logger.warning("No bigram index (%s): two-character Chinese words will scan the messages.", exc)
    else:
        savepoint.commit()


def upgrade() -> None:
    """Create the substring index where the database has one, and index the existing messages."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite" and _sqlite_has_trigram():
        for statement in _SQLITE_STATEMENTS:
            op.execute(statement)
    elif dialect == "postgresql":
        _postgresql_trigram_index()
        _postgresql_bigram_index()


def downgrade() -> None:
    """Drop the substring index (the pg_trgm extension stays: other tables may use it)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("messages_cjk_insert", "messages_cjk_delete", "messages_cjk_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_cjk_terms")
        op.execute("DROP TABLE IF EXISTS messages_cjk")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_content_trgm")
        op.execute("DROP INDEX IF EXISTS ix_messages_content_bigrams")
        op.execute("DROP FUNCTION IF EXISTS workbench_cjk_bigrams(text)")
