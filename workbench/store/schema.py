"""The tables the store queries, as SQLAlchemy Core objects.

The migrations in ``migrations/versions`` create them (each migration is a frozen copy of the schema
at its version); this module describes the newest schema for the queries. A change here needs a new
migration. Times are UTC; ``deleted_at`` marks a conversation deleted but still restorable.

A message row keeps ``role`` and ``content`` in columns (content is what search reads) and the rest of
``Message.to_dict()`` (tool calls, metadata, images as base64, and whatever later fields appear) as a
JSON object in ``extra``; reading joins them back into the dict ``Message.from_dict`` takes.

Conversations are trees (migration 0004): a message row has its ``message_id`` and its parent's
(``parent_id``, NULL for a first message); ``position`` counts a conversation's messages in the order
they were added; ``conversations.current_id`` is the leaf shown, whose path from the root is the
thread; ``message_count`` counts every message of the tree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("model", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("message_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("current_id", sa.String(64), nullable=True),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "conversation_id",
        sa.String(64),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("extra", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=True),
    sa.Column("parent_id", sa.String(64), nullable=True),
    sa.UniqueConstraint("conversation_id", "position", name="uq_messages_position"),
    sa.Index("uq_messages_message_id", "conversation_id", "message_id", unique=True),
    sa.Index("ix_messages_parent", "conversation_id", "parent_id"),
)

# The SQLite full-text index over messages.content (FTS5, external content); see migration 0002.
MESSAGES_FTS = "messages_fts"

# The SQLite substring index over messages holding Chinese, Japanese, ... (FTS5 trigram, contentless,
# each text indexed with two spaces after it) and the list of its trigrams; see migration 0005.
MESSAGES_CJK = "messages_cjk"
MESSAGES_CJK_TERMS = "messages_cjk_terms"
