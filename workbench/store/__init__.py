"""Saved conversations: a database of conversations and their messages, one row per message.

``ConversationStore.open()`` opens (and migrates) the default SQLite file in the data folder, or the
database named by ``WORKBENCH_DB_URL``. See ``docs/history.md``.
"""

from workbench.store.database import data_dir, default_url
from workbench.store.errors import (
    ConversationNotFoundError,
    ImportRefusedError,
    StoreError,
    StoreVersionError,
)
from workbench.store.rows import ConversationInfo
from workbench.store.store import ConversationStore
from workbench.store.transcripts import make_title

__all__ = [
    "ConversationInfo",
    "ConversationNotFoundError",
    "ConversationStore",
    "ImportRefusedError",
    "StoreError",
    "StoreVersionError",
    "data_dir",
    "default_url",
    "make_title",
]
