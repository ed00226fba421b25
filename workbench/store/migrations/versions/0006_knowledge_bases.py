"""Knowledge bases: named collections of documents, their chunks (the vectors live in sqlite-vec tables).

``knowledge_bases`` (a name, the embedder and its dimension), ``kb_documents`` (a file: name, kind,
content hash, unique per knowledge base), ``kb_chunks`` (passages with their page or slide). Deleting a
knowledge base deletes its documents, deleting a document its chunks (foreign keys, ON DELETE CASCADE).
Each knowledge base's vectors are a ``vec0`` table of its own (``kb_vectors_<id>``, rowid = chunk id),
made by :mod:`workbench.knowledge` with the embedder's dimension when the knowledge base is created.

Revision ID: 0006_knowledge_bases
Revises: 0005_search_cjk
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_knowledge_bases"
down_revision = "0005_search_cjk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "knowledge_bases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("embedder", sa.Text, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "kb_id", sa.Integer, sa.ForeignKey("knowledge_bases.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sections", sa.Integer, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kb_id", "sha256", name="uq_kb_documents_content"),
    )
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "document_id", sa.Integer, sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_kb_chunks_document", "kb_chunks", ["document_id", "position"])


def downgrade() -> None:
    """Drop the tables (and every knowledge base's vector table)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for (kb_id,) in bind.exec_driver_sql("SELECT id FROM knowledge_bases").fetchall():
            op.execute(f"DROP TABLE IF EXISTS kb_vectors_{int(kb_id)}")
    op.drop_index("ix_kb_chunks_document", "kb_chunks")
    op.drop_table("kb_chunks")
    op.drop_table("kb_documents")
    op.drop_table("knowledge_bases")
