"""Search over titles and message text, with the best index each database has.

A query is cut into words (runs of word characters); a message matches when it holds every word. A word
in a script written with spaces (English, French, Russian, ...) matches as a word prefix, case- and
accent-insensitive: ``plot sin`` finds "plotting the sine". A word holding a character of a script
written without spaces (Chinese, Japanese, Korean, Thai, ...) matches anywhere in the text, as a
substring: 天气 finds 今天北京的天气怎么样, where no word boundary exists to match a prefix at.

SQLite: prefixes through the FTS5 ``unicode61`` index (migration 0002); substrings through the FTS5
``trigram`` index of the messages holding such characters (migration 0005), a one- or two-character
word through the list of that index's trigrams that start with it. PostgreSQL: prefixes through a GIN
index on ``to_tsvector('simple', content)``, substrings with ``ILIKE`` through a ``pg_trgm`` GIN index,
a two-character word through the GIN index on ``workbench_cjk_bigrams(content)`` (one character scans).
Anything else, a database without those indexes, and a query without a word character: ``LIKE`` over
the text. Titles are matched as a case-insensitive substring everywhere (there are few).
``bench/bench_store.py`` measures each path on a million messages.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from workbench.store.schema import MESSAGES_CJK, MESSAGES_CJK_TERMS, MESSAGES_FTS, conversations, messages

_WORD = re.compile(r"\w+", re.UNICODE)

# Scripts written without spaces between words (the same ranges as migration 0005's GLOB): Thai, Lao,
# Myanmar, Khmer, CJK radicals to unified ideographs (kana, bopomofo, Hangul jamo included), Hangul
# syllables, compatibility and extension ideographs.
UNSPACED_RANGES = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
_UNSPACED = re.compile(f"[{UNSPACED_RANGES}]")

# The trigram index holds trigrams; a shorter word is looked up as the trigrams that start with it
# (every text is indexed with two spaces after it, so every occurrence starts one). The MATCH
# expression is built inside the database: an OR of those trigrams, quoted, or "" (matches nothing).
_SHORT_WORD_MATCH = (
    "SELECT coalesce(group_concat('\"' || replace(term, '\"', '\"\"') || '\"', ' OR '), '\"\"') "
    f"FROM {MESSAGES_CJK_TERMS} WHERE term >= :{{name}} AND term < :{{name}} || char(1114111)"
)


def has_fts5(connection: Connection) -> bool:
    """Whether this SQLite database has the messages' FTS5 index (migration 0002 on an FTS5 build)."""
    return _has_table(connection, MESSAGES_FTS)


def has_trigram(connection: Connection) -> bool:
    """Whether the database has the substring index of migration 0005 for short words.

    SQLite: the FTS5 trigram index (SQLite 3.34 or later). PostgreSQL: the bigram function and index.
    """
    if connection.dialect.name == "postgresql":
        found = connection.exec_driver_sql("SELECT 1 FROM pg_proc WHERE proname = 'workbench_cjk_bigrams'")
        return found.first() is not None
    return _has_table(connection, MESSAGES_CJK)


def _has_table(connection: Connection, name: str) -> bool:
    if connection.dialect.name != "sqlite":
        return False
    found = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).first()
    return found is not None


def is_unspaced(word: str) -> bool:
    """Whether ``word`` holds a character of a script written without spaces (matched as a substring)."""
    return _UNSPACED.search(word) is not None


def like_pattern(query: str) -> str:
    """Return a ``LIKE`` pattern matching ``query`` anywhere, with ``%``, ``_`` and backslash escaped."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts5_query(words: list[str]) -> str:
    """Return an FTS5 MATCH expression: every word, as a quoted prefix (no operator gets through)."""
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _substring_ids(word: str, number: int, *, dialect: str, trigram: bool) -> ColumnElement[bool]:
    """A condition on ``messages``: its text holds ``word`` anywhere (case-insensitive)."""
    if dialect == "sqlite" and trigram:
        name = f"cjk_{number}"
        if len(word) >= 3:
            rowids = sa.text(f"SELECT rowid FROM {MESSAGES_CJK} WHERE {MESSAGES_CJK} MATCH :{name}")
            return messages.c.id.in_(rowids.bindparams(sa.bindparam(name, _quoted(word))))
        match = _SHORT_WORD_MATCH.format(name=name)
        rowids = sa.text(f"SELECT rowid FROM {MESSAGES_CJK} WHERE {MESSAGES_CJK} MATCH ({match})")
        return messages.c.id.in_(rowids.bindparams(sa.bindparam(name, word.lower())))
    if dialect == "postgresql" and trigram and len(word) == 2:  # no trigram in it: the bigram index
        bigrams = sa.func.workbench_cjk_bigrams(messages.c.content)
        return bigrams.op("@>")(postgresql.array([sa.func.lower(sa.literal(word, sa.Text))]))
    return messages.c.content.ilike(like_pattern(word), escape="\\")


def matching_condition(query: str, *, dialect: str, fts5: bool, trigram: bool = False) -> ColumnElement[bool]:
    """Return a condition on ``conversations`` true when its title or one of its messages matches.

    Args:
        query: What the user typed.
        dialect: The database's SQLAlchemy dialect name.
        fts5: Whether the SQLite word index exists (:func:`has_fts5`).
        trigram: Whether the SQLite substring index exists (:func:`has_trigram`).
    """
    pattern = like_pattern(query.strip())
    title_matches = conversations.c.title.ilike(pattern, escape="\\")
    all_words = _WORD.findall(query)
    words = [word for word in all_words if not is_unspaced(word)]
    unspaced = list(dict.fromkeys(word for word in all_words if is_unspaced(word)))
    conditions: list[ColumnElement[bool]] = [
        _substring_ids(word, number, dialect=dialect, trigram=trigram) for number, word in enumerate(unspaced)
    ]
    if words and fts5:
        rowids = sa.text(f"SELECT rowid FROM {MESSAGES_FTS} WHERE {MESSAGES_FTS} MATCH :match").bindparams(
            match=fts5_query(words)
        )
        conditions.append(messages.c.id.in_(rowids))
    elif words and dialect == "postgresql":
        tsquery = " & ".join(f"{word}:*" for word in words)
        vector = sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"), messages.c.content)
        conditions.append(
            vector.op("@@")(sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), tsquery))
        )
    elif words and unspaced:  # no word index: each word as a substring
        conditions += [messages.c.content.ilike(like_pattern(word), escape="\\") for word in words]
    elif not unspaced:  # no word index, or no word at all: the query as a substring
        conditions.append(messages.c.content.ilike(pattern, escape="\\"))
    matching_messages = sa.select(messages.c.conversation_id).where(sa.and_(*conditions))
    return sa.or_(title_matches, conversations.c.id.in_(matching_messages))
