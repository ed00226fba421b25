"""The knowledge bases' tables as SQLAlchemy Core objects (migrations 0006 and 0007 create them).

A knowledge base with a ``conversation_id`` holds the files attached to that conversation (0007); the
named ones users make have none. ``kb_documents.content`` (the file) and ``kb_sections`` (its pages)
are kept for attached files only.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

knowledge_bases = sa.Table(
    "knowledge_bases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("embedder", sa.Text, nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("conversation_id", sa.String(64), nullable=True, unique=True),
)

kb_documents = sa.Table(
    "kb_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kb_id", sa.Integer, sa.ForeignKey("knowledge_bases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sections", sa.Integer, nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=True),
)

kb_chunks = sa.Table(
    "kb_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "document_id", sa.Integer, sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)

kb_sections = sa.Table(
    "kb_sections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "document_id", sa.Integer, sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)
