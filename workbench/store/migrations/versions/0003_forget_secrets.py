"""Forget the secrets that earlier releases saved in model records (a remote model's API key).

Releases before this one wrote ``ModelSpec.api_key`` into ``conversations.model`` (and so into every
export). This migration removes secret-named entries and URL passwords from every record. On SQLite the
rewrite runs with ``secure_delete`` (the old bytes are zeroed, not left in free space); the store then
rebuilds the file (``VACUUM``, which also drops copies left by earlier rewrites of those rows) and
empties the WAL; on PostgreSQL it runs ``VACUUM FULL conversations`` (see ``database.forget_old_rows``).
The migration reports how many records it changed in ``config.attributes["secrets_removed"]``.

A frozen copy of the rules of ``workbench/store/redact.py`` as they were at this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NAMES = {"api_key", "apikey", "key", "password", "passwd", "secret", "token", "authorization", "bearer"}
_SUFFIXES = ("_key", "_token", "_secret", "_password")


def _secret(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered in _NAMES or lowered.endswith(_SUFFIXES)


def _scrub_url(text: str) -> str:
    prefix = "openai:" if text.startswith("openai:") else ""
    rest = text[len(prefix) :]
    if "://" not in rest:
        return text
    try:
        parts = urlsplit(rest)
        password = parts.password
    except ValueError:
        return text
    netloc = parts.netloc
    if password is not None:
        netloc = netloc.rpartition("@")[2]
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if not _secret(name)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    if netloc == parts.netloc and query == parts.query:
        return text
    return prefix + urlunsplit(parts._replace(netloc=netloc, query=query))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items() if not _secret(str(k))}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return _scrub_url(value)
    return value


def upgrade() -> None:
    """Rewrite every model record that holds a secret, without it."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:  # zero the bytes of the rows rewritten below instead of leaving them in free space
        before = bind.exec_driver_sql("PRAGMA secure_delete").scalar()
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    changed = 0
    found = bind.execute(sa.text("SELECT id, model FROM conversations WHERE model IS NOT NULL"))
    for conversation_id, text in found.fetchall():
        try:
            model = json.loads(text)
        except ValueError:
            model = None
        if not isinstance(model, dict):
            continue
        clean = _scrub(model)
        if clean != model:
            bind.execute(
                sa.text("UPDATE conversations SET model = :model WHERE id = :id"),
                {"model": json.dumps(clean, ensure_ascii=False), "id": conversation_id},
            )
            changed += 1
    if sqlite:
        bind.exec_driver_sql(f"PRAGMA secure_delete = {int(before or 0)}")
    context.config.attributes["secrets_removed"] = changed


def downgrade() -> None:
    """Nothing to undo: a forgotten secret stays forgotten."""
