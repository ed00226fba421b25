"""Search over titles and message text, with the best index each database has.

SQLite: message text through the FTS5 index (words, case- and accent-insensitive, every word of the
query matched as a prefix: ``plot sin`` finds "plotting the sine"). PostgreSQL: the same through a GIN
index on ``to_tsvector('simple', content)``. Anything else, and a query without a word character:
``LIKE`` over the text. Titles are matched as a case-insensitive substring everywhere (there are few).
``bench/bench_store.py`` measures FTS5 against LIKE on a million messages.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from workbench.store.schema import MESSAGES_FTS, conversations, messages

_WORD = re.compile(r"\w+", re.UNICODE)


def has_fts5(connection: Connection) -> bool:
    """Whether this SQLite database has the messages' FTS5 index (migration 0002 on an FTS5 build)."""
    if connection.dialect.name != "sqlite":
        return False
    found = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MESSAGES_FTS,)
    ).first()
    return found is not None


def like_pattern(query: str) -> str:
    """Return a ``LIKE`` pattern matching ``query`` anywhere, with ``%``, ``_`` and backslash escaped."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts5_query(words: list[str]) -> str:
    """Return an FTS5 MATCH expression: every word, as a quoted prefix (no operator gets through)."""
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


def matching_condition(query: str, *, dialect: str, fts5: bool) -> ColumnElement[bool]:
    """Return a condition on ``conversations`` true when its title or one of its messages matches."""
    pattern = like_pattern(query.strip())
    title_matches = conversations.c.title.ilike(pattern, escape="\\")
    words = _WORD.findall(query)
    matching_messages: sa.Select[tuple[str]]
    if words and fts5:
        rowids = sa.text(f"SELECT rowid FROM {MESSAGES_FTS} WHERE {MESSAGES_FTS} MATCH :match").bindparams(
            match=fts5_query(words)
        )
        matching_messages = sa.select(messages.c.conversation_id).where(messages.c.id.in_(rowids))
    elif words and dialect == "postgresql":
        tsquery = " & ".join(f"{word}:*" for word in words)
        vector = sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"), messages.c.content)
        matching_messages = sa.select(messages.c.conversation_id).where(
            vector.op("@@")(sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), tsquery))
        )
    else:
        matching_messages = sa.select(messages.c.conversation_id).where(
            messages.c.content.ilike(pattern, escape="\\")
        )
    return sa.or_(title_matches, conversations.c.id.in_(matching_messages))
