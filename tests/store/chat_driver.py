"""Runs ``python -m workbench chat`` in this process with a scripted model, for the CLI tests.

Usage: ``chat_driver.py REPLY [--full-disk] -- CHAT_ARGS...``. ``--full-disk`` makes every SQLite
database this process opens refuse to grow, as a full disk does ("database or disk is full").
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

import workbench.cli.chat as chat_command
from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.cli import main


def _no_room_to_grow(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    pages = cursor.execute("PRAGMA page_count").fetchone()[0]
    cursor.execute(f"PRAGMA max_page_count = {pages}")
    cursor.close()


if __name__ == "__main__":
    reply, options = sys.argv[1], sys.argv[2 : sys.argv.index("--")]
    chat_args = sys.argv[sys.argv.index("--") + 1 :]
    if "--full-disk" in options:
        sa.event.listen(sa.pool.Pool, "connect", _no_room_to_grow)
    backend = ScriptedBackend(reply, chunk_chars=None, context_length=1_000_000)
    chat_command.load_chat_model = lambda args, err: ChatModel(backend, dialect=PlainDialect())
    sys.exit(main(chat_args))
