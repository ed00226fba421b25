"""Conversations become trees: each message has an id and a parent; a conversation keeps its shown leaf.

Adds ``messages.message_id`` (the message's id within its conversation), ``messages.parent_id`` (its
parent's ``message_id``, NULL for a first message) and ``conversations.current_id`` (the leaf that is
shown). The saved conversations, lists until now, become single-branch trees without loss: each
message gets its row number as its id and the message before it as its parent, and the last message
is the shown leaf. ``position`` stays, and from now on counts the messages of a conversation in the
order they were added (unique per conversation, as before). Runs on SQLite and PostgreSQL alike.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and indexes, and link every saved message to the one before it."""
    op.add_column("messages", sa.Column("message_id", sa.String(64), nullable=True))
    op.add_column("messages", sa.Column("parent_id", sa.String(64), nullable=True))
    op.add_column("conversations", sa.Column("current_id", sa.String(64), nullable=True))
    op.execute("UPDATE messages SET message_id = CAST(id AS VARCHAR(64))")
    op.execute(
        "UPDATE messages SET parent_id = (SELECT CAST(p.id AS VARCHAR(64)) FROM messages p "
        "WHERE p.conversation_id = messages.conversation_id AND p.position = messages.position - 1)"
    )
    op.execute(
        "UPDATE conversations SET current_id = (SELECT CAST(m.id AS VARCHAR(64)) FROM messages m "
        "WHERE m.conversation_id = conversations.id ORDER BY m.position DESC LIMIT 1)"
    )
    op.create_index("uq_messages_message_id", "messages", ["conversation_id", "message_id"], unique=True)
    op.create_index("ix_messages_parent", "messages", ["conversation_id", "parent_id"])


def downgrade() -> None:
    """Refused: a list cannot hold branches, and dropping them would lose messages.

    Export the conversations (``python -m workbench history export``) before going back to an older
    release; its import keeps the shown branch of each.
    """
    raise NotImplementedError(
        "Conversations are trees from revision 0004 on; going back would drop every branch but the "
        "shown one. Export them first (python -m workbench history export), then import the file."
    )
