"""Documents attached to a conversation, saved with it: a knowledge base owned by the conversation.

- ``knowledge_bases.conversation_id``: set for the collection of one conversation's attached files
  (unique: one per conversation), NULL for the named knowledge bases users make. No foreign key: the
  files may be attached before the conversation's first message, when it has no row yet; purging
  conversations removes their collections (:meth:`ConversationStore.purge`).
- ``kb_documents.content``: the file's bytes, kept for attached files only (Code mode puts them into a
  reopened conversation's new kernel folder; knowledge bases leave it NULL).
- ``kb_sections``: a document's pages, slides or parts as parsed, so that a document that fits the
  model's context still goes in whole after a reload (chunks overlap and cannot be joined back).

Revision ID: 0007_conversation_documents
Revises: 0006_knowledge_bases
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_conversation_documents"
down_revision = "0006_knowledge_bases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two columns and the sections table."""
    op.add_column("knowledge_bases", sa.Column("conversation_id", sa.String(64), nullable=True))
    op.create_index("uq_knowledge_bases_conversation", "knowledge_bases", ["conversation_id"], unique=True)
    op.add_column("kb_documents", sa.Column("content", sa.LargeBinary, nullable=True))
    op.create_table(
        "kb_sections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "document_id", sa.Integer, sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_kb_sections_document", "kb_sections", ["document_id", "position"])


def downgrade() -> None:
    """Drop the conversations' collections (rows and vector tables), the table and the columns."""
    bind = op.get_bind()
    for (kb_id,) in bind.exec_driver_sql(
        "SELECT id FROM knowledge_bases WHERE conversation_id IS NOT NULL"
    ).fetchall():
        op.execute(f"DROP TABLE IF EXISTS kb_vectors_{int(kb_id)}")
    op.execute("DELETE FROM knowledge_bases WHERE conversation_id IS NOT NULL")
    op.drop_index("ix_kb_sections_document", "kb_sections")
    op.drop_table("kb_sections")
    op.drop_index("uq_knowledge_bases_conversation", "knowledge_bases")
    op.drop_column("kb_documents", "content")
    op.drop_column("knowledge_bases", "conversation_id")
