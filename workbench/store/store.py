"""The conversation store: conversations and their messages in a database, one row per message.

Every call is one short transaction, committed before it returns: a message appended is on disk when
:meth:`ConversationStore.append` returns, so a crash loses at most the answer still being written.
Deleting is soft (``deleted_at``) so that it can be undone with :meth:`ConversationStore.restore`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from workbench.conversation import Conversation, Node, linear, thread_ids
from workbench.messages import Message
from workbench.store import database, rows, search, transcripts
from workbench.store.errors import ConversationConflictError, ConversationNotFoundError, StoreError
from workbench.store.rows import ConversationInfo, InfoList
from workbench.store.schema import conversations, messages
from workbench.store.transcripts import MODES

MAX_QUERY_CHARS = 500
"""A search query is cut to this many characters."""
AttachedList = list[dict[str, Any]]
"""A conversation's attached files as its JSON export lists them (``list`` is a method below)."""


class ConversationStore:
    """Saved conversations in SQLite (the default) or any database SQLAlchemy reaches.

    Thread-safe: share one store per process. Several processes may use one database at once.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose database is already migrated; use :meth:`open` instead."""
        self._engine = engine
        self._fts5 = database.run_read(engine, search.has_fts5)
        self._trigram = database.run_read(engine, search.has_trigram)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> ConversationStore:
        """Open the store, creating or migrating its database to this release's schema.

        Args:
            url: A SQLAlchemy database URL; by default ``WORKBENCH_DB_URL``, else the SQLite file in
                the data folder (``WORKBENCH_DATA_DIR``).
            migrate: Bring the schema up to date (leave on unless a test needs an old schema).

        Raises:
            StoreError: If the database cannot be opened or migrated.
        """
        engine = database.create_store_engine(url or database.default_url())
        try:
            if migrate:
                database.migrate(engine)
            return cls(engine)
        except BaseException:
            engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------------------
    def create(
        self, mode: str, title: str = "", model: Any = None, conversation_id: str | None = None
    ) -> ConversationInfo:
        """Create an empty conversation and return it.

        Args:
            mode: ``chat``, ``tool`` or ``code``.
            title: Its title; empty to take one from the first user message.
            model: The model spec (a mapping, or a dataclass such as ``ModelSpec``), or None.
            conversation_id: Its id; a new random one by default.

        Raises:
            StoreError: If the id is malformed or taken.
        """
        mode = str(getattr(mode, "value", mode))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        conversation_id = conversation_id or uuid.uuid4().hex
        self._check_id(conversation_id)
        now = rows.now()
        row = {
            "id": conversation_id,
            "title": transcripts.clean_title(title),
            "mode": mode,
            "model": rows.model_json(model),
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "message_count": 0,
            "current_id": None,
        }

        def work(connection: Connection) -> None:
            if connection.execute(
                sa.select(conversations.c.id).where(conversations.c.id == conversation_id)
            ).first():
                raise StoreError(
                    f"A conversation with id {conversation_id!r} already exists; use another id."
                )
            connection.execute(conversations.insert().values(**row))

        database.run_write(self._engine, work)
        return rows.info(rows.RowView(row))

    def append(
        self, conversation_id: str, position: int, message: Message, *, expected_count: int | None = None
    ) -> None:
        """Save ``message`` at ``position`` (0-based) of the shown branch, and show it.

        Its parent is the shown branch's message before ``position``. At the end of the branch it
        continues it; earlier, it starts a new branch there (the old one stays, as its sibling). An
        untitled conversation takes its title from its first user message. A deleted conversation
        that is written to is live again (another tab went on with it).

        Raises:
            ConversationNotFoundError: If there is no such conversation.
            ConversationConflictError: If ``expected_count`` is given and the shown branch holds
                another number of messages (someone else wrote to it); nothing is written.
            StoreError: If ``position`` would leave a gap, or the database fails.
        """
        now = rows.now()

        def work(connection: Connection) -> None:
            current = self._require(connection, conversation_id, include_deleted=True)
            thread = thread_ids(self._links(connection, conversation_id), current.current_id)
            if expected_count is not None and len(thread) != expected_count:
                raise ConversationConflictError(
                    f"Conversation {conversation_id} shows {len(thread)} messages, not {expected_count}: "
                    "another tab or program wrote to it."
                )
            if not 0 <= position <= len(thread):
                raise StoreError(
                    f"Cannot save message {position} of conversation {conversation_id}: its shown branch "
                    f"holds {len(thread)} messages. Save the whole history instead (save_all)."
                )
            self._insert(connection, current, message, thread[position - 1] if position else None, now)

        database.run_write(self._engine, work)

    def add(self, conversation_id: str, message: Message, parent_id: str | None) -> None:
        """Save ``message`` under the message ``parent_id`` (None: a first message), and show it.

        Raises:
            ConversationNotFoundError: If there is no such conversation.
            ConversationConflictError: If the parent is not saved (another tab deleted its branch).
            StoreError: If the message's id is taken in this conversation, or the database fails.
        """
        now = rows.now()

        def work(connection: Connection) -> None:
            current = self._require(connection, conversation_id, include_deleted=True)
            self._insert(connection, current, message, parent_id, now, check_parent=parent_id is not None)

        database.run_write(self._engine, work)

    def _insert(
        self,
        connection: Connection,
        current: ConversationInfo,
        message: Message,
        parent: str | None,
        now: datetime,
        *,
        check_parent: bool = False,
    ) -> None:
        conversation_id = current.id
        last_position = (
            sa.select(sa.func.max(messages.c.position))
            .where(messages.c.conversation_id == conversation_id)
            .scalar_subquery()
        )
        parent_saved = sa.exists().where(
            messages.c.conversation_id == conversation_id, messages.c.message_id == parent
        )
        last, has_parent = connection.execute(sa.select(last_position, parent_saved)).one()  # one round trip
        if check_parent and not has_parent:
            raise ConversationConflictError(
                f"Conversation {conversation_id} no longer holds message {parent}: another tab or "
                "program deleted that branch."
            )
        position = 0 if last is None else last + 1
        try:  # a taken id: the unique index refuses it, and the transaction is rolled back
            connection.execute(
                messages.insert().values(**rows.message_row(conversation_id, position, message, now, parent))
            )
        except sa.exc.IntegrityError:
            raise StoreError(
                f"Conversation {conversation_id} already holds a message with the id {message.id!r}; "
                "give the new message its own id."
            ) from None
        changes: dict[str, Any] = {
            "message_count": conversations.c.message_count + 1,
            "current_id": message.id,
            "updated_at": now,
            "deleted_at": None,
        }
        if not current.title and message.role.value == "user":
            changes["title"] = transcripts.make_title(message.content)
        connection.execute(
            conversations.update().where(conversations.c.id == conversation_id).values(**changes)
        )

    def replace(self, conversation_id: str, message_id: str, message: Message) -> None:
        """Overwrite the saved message ``message_id`` with ``message`` (which may bring a new id).

        Its place in the tree stays; if it was the shown leaf, ``message`` is.

        Raises:
            ConversationNotFoundError: If there is no such conversation or message.
        """
        now = rows.now()
        row = rows.message_row(conversation_id, 0, message, now, None)

        def work(connection: Connection) -> None:
            current = self._require(connection, conversation_id, include_deleted=True)
            done = connection.execute(
                messages.update()
                .where(messages.c.conversation_id == conversation_id, messages.c.message_id == message_id)
                .values(message_id=message.id, role=row["role"], content=row["content"], extra=row["extra"])
            )
            if done.rowcount == 0:
                raise ConversationNotFoundError(
                    f"Conversation {conversation_id} has no message {message_id}; add it instead."
                )
            if message.id != message_id:
                connection.execute(
                    messages.update()
                    .where(messages.c.conversation_id == conversation_id, messages.c.parent_id == message_id)
                    .values(parent_id=message.id)
                )
            changes: dict[str, Any] = {"updated_at": now}
            if current.current_id == message_id:
                changes["current_id"] = message.id
            connection.execute(
                conversations.update().where(conversations.c.id == conversation_id).values(**changes)
            )

        database.run_write(self._engine, work)

    def set_current(self, conversation_id: str, leaf_id: str | None) -> None:
        """Remember which branch is shown: the one that ends at ``leaf_id`` (None: an empty thread).

        Saved on every switch, so a reload, a second tab and a restart show the branch that was chosen.

        Raises:
            ConversationNotFoundError: If there is no such conversation or message.
        """

        def work(connection: Connection) -> None:
            self._require(connection, conversation_id, include_deleted=True)
            if leaf_id is not None and not self._has_message(connection, conversation_id, leaf_id):
                raise ConversationNotFoundError(
                    f"Conversation {conversation_id} has no message {leaf_id}; reload it."
                )
            connection.execute(
                conversations.update().where(conversations.c.id == conversation_id).values(current_id=leaf_id)
            )

        database.run_write(self._engine, work)

    def delete_messages(self, conversation_id: str, message_ids: list[str], current_id: str | None) -> None:
        """Remove the messages ``message_ids`` (a branch) and show the branch ending at ``current_id``.

        Raises:
            ConversationNotFoundError: If there is no such conversation.
        """
        now = rows.now()

        def work(connection: Connection) -> None:
            self._require(connection, conversation_id, include_deleted=True)
            for start in range(0, len(message_ids), 500):  # SQLite's limit on bound values
                chunk = message_ids[start : start + 500]
                connection.execute(
                    messages.delete().where(
                        messages.c.conversation_id == conversation_id, messages.c.message_id.in_(chunk)
                    )
                )
            self._recount(connection, conversation_id, current_id, now)

        database.run_write(self._engine, work)

    def clear(self, conversation_id: str) -> None:
        """Remove every message of the conversation (it stays, empty).

        Raises:
            ConversationNotFoundError: If there is no such conversation.
        """
        now = rows.now()

        def work(connection: Connection) -> None:
            self._require(connection, conversation_id, include_deleted=True)
            connection.execute(messages.delete().where(messages.c.conversation_id == conversation_id))
            self._recount(connection, conversation_id, None, now)

        database.run_write(self._engine, work)

    def save_all(self, conversation_id: str, history: list[Message]) -> None:
        """Replace every saved message of the conversation with ``history`` (one branch), in one transaction."""
        self.save_tree(conversation_id, linear(history), history[-1].id if history else None)

    def save_tree(self, conversation_id: str, nodes: list[Node], current_id: str | None) -> None:
        """Replace every saved message of the conversation with the tree ``nodes``, in one transaction.

        Args:
            conversation_id: The conversation.
            nodes: Each message with its parent's id; parents come before their children.
            current_id: The leaf shown (None: the latest leaf).
        """
        now = rows.now()

        def work(connection: Connection) -> None:
            current = self._require(connection, conversation_id, include_deleted=True)
            connection.execute(messages.delete().where(messages.c.conversation_id == conversation_id))
            if nodes:
                connection.execute(messages.insert(), rows.tree_rows(conversation_id, nodes, now))
            leaf = current_id or rows.latest_leaf([(m.id, parent) for m, parent in nodes])
            changes: dict[str, Any] = {
                "message_count": len(nodes),
                "current_id": leaf,
                "updated_at": now,
                "deleted_at": None,
            }
            first_user = next((m.content for m, _ in nodes if m.role.value == "user"), "")
            if not current.title and first_user:
                changes["title"] = transcripts.make_title(first_user)
            connection.execute(
                conversations.update().where(conversations.c.id == conversation_id).values(**changes)
            )

        database.run_write(self._engine, work)

    def _recount(self, connection: Connection, conversation_id: str, current_id: str | None, now: datetime) -> None:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(messages).where(messages.c.conversation_id == conversation_id)
        ).scalar_one()
        connection.execute(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(message_count=count, current_id=current_id if count else None, updated_at=now)
        )

    def rename(self, conversation_id: str, title: str) -> ConversationInfo:
        """Give the conversation a new title (one line, at most 200 characters) and return it.

        Raises:
            ConversationNotFoundError: If there is no such conversation.
        """
        clean = transcripts.clean_title(title)

        def work(connection: Connection) -> None:
            self._require(connection, conversation_id, include_deleted=True)
            connection.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .values(title=clean, updated_at=rows.now())
            )

        database.run_write(self._engine, work)
        return self.info(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Delete the conversation; it stays restorable with :meth:`restore` until purged.

        Raises:
            ConversationNotFoundError: If there is no such live conversation.
        """
        self._set_deleted(conversation_id, rows.now())

    def restore(self, conversation_id: str) -> None:
        """Undo :meth:`delete`.

        Raises:
            ConversationNotFoundError: If there is no such conversation (or it was purged).
        """
        self._set_deleted(conversation_id, None)

    def _set_deleted(self, conversation_id: str, when: datetime | None) -> None:
        def work(connection: Connection) -> None:
            self._require(connection, conversation_id, include_deleted=True)
            connection.execute(
                conversations.update().where(conversations.c.id == conversation_id).values(deleted_at=when)
            )

        database.run_write(self._engine, work)

    def purge(self, deleted_before: datetime | None = None) -> int:
        """Remove deleted conversations for good (those deleted before ``deleted_before``, or all).

        Their attached files go with them, and so do the files attached over a day ago to a
        conversation that was never saved (attached, then nothing sent).

        Returns:
            How many conversations were removed.
        """
        condition: ColumnElement[bool] = conversations.c.deleted_at.is_not(None)
        if deleted_before is not None:
            condition = sa.and_(condition, conversations.c.deleted_at < deleted_before)

        from workbench.knowledge import attached  # built on the store: imported when used

        def work(connection: Connection) -> int:
            ids = list(connection.execute(sa.select(conversations.c.id).where(condition)).scalars())
            attached.purge(connection, [*ids, *attached.orphans(connection)])  # their attached files
            return connection.execute(conversations.delete().where(condition)).rowcount or 0

        return database.run_write(self._engine, work)

    def discard_if_empty(self, conversation_id: str) -> bool:
        """Remove a conversation for good if it holds no message (one whose only message was taken back).

        Its attached files are left as for a conversation never saved (:meth:`purge` takes them later).

        Returns:
            Whether it was removed (False if it holds messages, or does not exist).
        """
        has_messages = sa.exists().where(messages.c.conversation_id == conversation_id)

        def work(connection: Connection) -> int:
            statement = conversations.delete().where(conversations.c.id == conversation_id, ~has_messages)
            return connection.execute(statement).rowcount or 0

        return database.run_write(self._engine, work) > 0

    # --- reading ------------------------------------------------------------------------------------
    def resolve_id(self, prefix: str) -> str:
        """Return the id of the one conversation whose id starts with ``prefix`` (as git takes hashes).

        Raises:
            ConversationNotFoundError: If no conversation, or more than one, matches.
        """
        if not transcripts.valid_id(prefix):
            raise ConversationNotFoundError(f"{prefix!r} is not a conversation id.")
        statement = (
            sa.select(conversations.c.id)
            .where(conversations.c.id.startswith(prefix, autoescape=True))
            .order_by(conversations.c.id)
            .limit(2)
        )
        found = database.run_read(self._engine, lambda c: list(c.execute(statement).scalars()))
        if prefix in found or len(found) == 1:
            return prefix if prefix in found else found[0]
        if not found:
            raise ConversationNotFoundError(
                f"No saved conversation has an id starting with {prefix!r}; list them with "
                "`python -m workbench history list`."
            )
        raise ConversationNotFoundError(
            f"More than one conversation's id starts with {prefix!r}; give more of it."
        )

    def exists(self, conversation_id: str, *, include_deleted: bool = True) -> bool:
        """Whether a conversation with this id is saved (deleted ones count unless told otherwise)."""
        try:
            self.info(conversation_id, include_deleted=include_deleted)
        except ConversationNotFoundError:
            return False
        return True

    def info(self, conversation_id: str, *, include_deleted: bool = False) -> ConversationInfo:
        """Return what the store knows of a conversation.

        Raises:
            ConversationNotFoundError: If there is no such (live) conversation.
        """
        return database.run_read(
            self._engine, lambda c: self._require(c, conversation_id, include_deleted=include_deleted)
        )

    def get(
        self, conversation_id: str, *, include_deleted: bool = False
    ) -> tuple[ConversationInfo, list[Message]]:
        """Return a conversation and its shown branch (root first), from one consistent snapshot.

        Raises:
            ConversationNotFoundError: If there is no such (live) conversation.
            StoreError: If a saved message cannot be read back.
        """

        def work(connection: Connection) -> tuple[ConversationInfo, list[Message]]:
            info = self._require(connection, conversation_id, include_deleted=include_deleted)
            found = self._rows(connection, conversation_id)
            thread = set(self._thread(found, info.current_id))
            return info, [rows.message(conversation_id, row) for row in found if row.message_id in thread]

        return database.run_read(self._engine, work)

    def get_tree(
        self, conversation_id: str, *, include_deleted: bool = False
    ) -> tuple[ConversationInfo, list[Node], str | None]:
        """Return a conversation, its messages with their parents' ids (in order added), and the shown leaf.

        Raises:
            ConversationNotFoundError: If there is no such (live) conversation.
            StoreError: If a saved message cannot be read back.
        """

        def work(connection: Connection) -> tuple[ConversationInfo, list[Node], str | None]:
            info = self._require(connection, conversation_id, include_deleted=include_deleted)
            found = self._rows(connection, conversation_id)
            thread = self._thread(found, info.current_id)
            nodes = [(rows.message(conversation_id, row), row.parent_id) for row in found]
            return info, nodes, thread[-1] if thread else None

        return database.run_read(self._engine, work)

    @staticmethod
    def _rows(connection: Connection, conversation_id: str) -> list[Any]:
        """The conversation's message rows in the order added; rows without ids continue the list.

        A row without a ``message_id`` (written by an older release or another program, which know no
        tree) gets ``row-N`` (its row number) as its id, and the row before it as its parent.
        """
        found = connection.execute(
            sa.select(
                messages.c.id,
                messages.c.message_id,
                messages.c.parent_id,
                messages.c.position,
                messages.c.role,
                messages.c.content,
                messages.c.extra,
            )
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.position)
        )
        out: list[Any] = []
        before: str | None = None
        for found_row in found:
            row: Any = found_row
            if row.message_id is None:
                row = rows.RowView({**row._asdict(), "message_id": f"row-{row.id}", "parent_id": before})
            out.append(row)
            before = row.message_id
        return out

    @staticmethod
    def _thread(found: list[Any], current_id: str | None) -> list[str]:
        """The shown branch's ids: up from ``current_id``, or from the latest leaf when it is unknown."""
        links = {row.message_id: row.parent_id for row in found}
        if current_id not in links:
            current_id = rows.latest_leaf([(row.message_id, row.parent_id) for row in found])
        return thread_ids(links, current_id)

    @staticmethod
    def _links(connection: Connection, conversation_id: str) -> dict[str, str | None]:
        found = connection.execute(
            sa.select(messages.c.message_id, messages.c.parent_id).where(
                messages.c.conversation_id == conversation_id
            )
        )
        return {row.message_id: row.parent_id for row in found}

    @staticmethod
    def _has_message(connection: Connection, conversation_id: str, message_id: str) -> bool:
        return (
            connection.execute(
                sa.select(messages.c.id).where(
                    messages.c.conversation_id == conversation_id, messages.c.message_id == message_id
                )
            ).first()
            is not None
        )

    def list(
        self,
        mode: str | None = None,
        query: str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        deleted: bool = False,
    ) -> InfoList:
        """List conversations, most recently updated first.

        Args:
            mode: Only this mode's (``chat``, ``tool``, ``code``); all by default.
            query: Only those whose title or message text matches (see :mod:`workbench.store.search`).
            limit: At most this many.
            offset: Skip this many (for paging).
            deleted: List deleted (restorable) conversations instead of live ones.
        """
        condition = (
            conversations.c.deleted_at.is_not(None) if deleted else conversations.c.deleted_at.is_(None)
        )
        statement = sa.select(conversations).where(condition)
        if mode is not None:
            statement = statement.where(conversations.c.mode == str(getattr(mode, "value", mode)))
        if query and query.strip():
            query = query[:MAX_QUERY_CHARS]
            dialect = self._engine.dialect.name
            matching = search.matching_condition(
                query, dialect=dialect, fts5=self._fts5, trigram=self._trigram
            )
            statement = statement.where(matching)
        statement = statement.order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
        statement = statement.limit(max(0, limit)).offset(max(0, offset))
        return database.run_read(self._engine, lambda c: [rows.info(row) for row in c.execute(statement)])

    def search(self, query: str, mode: str | None = None, limit: int = 50, offset: int = 0) -> InfoList:
        """Conversations whose title or message text matches ``query``, most recent first."""
        return self.list(mode=mode, query=query, limit=limit, offset=offset)

    def count(self, mode: str | None = None) -> int:
        """How many live conversations there are (of one mode, or all)."""
        statement = (
            sa.select(sa.func.count()).select_from(conversations).where(conversations.c.deleted_at.is_(None))
        )
        if mode is not None:
            statement = statement.where(conversations.c.mode == mode)
        return database.run_read(self._engine, lambda c: int(c.execute(statement).scalar_one()))

    def fork(self, conversation_id: str, *, at: int) -> ConversationInfo:
        """Copy a conversation's shown branch up to its ``at``-th message (1 = first) into a new one.

        Raises:
            ConversationNotFoundError: If there is no such conversation.
            StoreError: If the shown branch has no ``at``-th message.
        """
        info, nodes, current = self.get_tree(conversation_id)
        conversation = Conversation.from_tree(info.mode, info.id, info.title, info.created, info.updated, nodes, current)
        thread = conversation.snapshot()
        if not 1 <= at <= len(thread):
            raise StoreError(
                f"Conversation {conversation_id}'s shown branch has {len(thread)} messages; give --at "
                f"between 1 and {len(thread)}."
            )
        copy = conversation.fork(thread[at - 1].id)
        self.create(copy.mode, copy.title, info.model, conversation_id=copy.id)
        self.save_tree(copy.id, copy.nodes(), copy.current_id)
        self.copy_documents(conversation_id, copy.id)
        return self.info(copy.id)

    def copy_documents(self, source_id: str, target_id: str) -> None:
        """Give ``target_id`` a copy of the files attached to ``source_id`` (a fork keeps them)."""
        from workbench.knowledge import attached  # built on the store: imported when used

        database.run_write(self._engine, lambda c: attached.copy(c, source_id, target_id))

    def documents(self, conversation_id: str) -> AttachedList:
        """The files attached to a conversation: name, kind, size, sha256 (not their content)."""
        from workbench.knowledge import attached  # built on the store: imported when used

        return database.run_read(self._engine, lambda c: attached.described(c, conversation_id))

    # --- files --------------------------------------------------------------------------------------
    def export_json(self, conversation_id: str | None = None, *, indent: int | None = 2) -> str:
        """Export one conversation as its JSON transcript, or every live one as ``{"conversations"}``.

        The whole tree is written: each message with its ``id`` and ``parent``, and ``current``, the
        shown leaf; ``documents`` lists the attached files by name, kind, size and hash (their content
        is not exported, and an import attaches nothing). Markdown (:meth:`export_markdown`) writes
        the shown branch.
        """
        if conversation_id is not None:
            payload: dict[str, Any] = self._exported(conversation_id)
        else:
            payload = {"conversations": [self._exported(i.id) for i in self._all()]}
        return json.dumps(payload, indent=indent, ensure_ascii=False)

    def _exported(self, conversation_id: str) -> dict[str, Any]:
        """One conversation's export form; ``documents`` names its attached files (their bytes stay here)."""
        exported = transcripts.conversation_to_dict(*self.get_tree(conversation_id))
        documents = self.documents(conversation_id)
        if documents:
            exported["documents"] = documents
        return exported

    def export_markdown(self, conversation_id: str | None = None) -> str:
        """Export one conversation's shown branch, or every live one's, as Markdown."""
        ids = [conversation_id] if conversation_id is not None else [i.id for i in self._all()]
        return "\n---\n\n".join(transcripts.conversation_to_markdown(*self.get(i)) for i in ids)

    def import_json(self, data: bytes | str, *, notes: transcripts.Notes | None = None) -> InfoList:
        """Import conversations from an export (or an OpenAI-style message list) in one transaction.

        Ids are kept when free, else new ones are given. All is checked first, field by field (see
        :mod:`.shapes`): on any error nothing is stored. An optional field of the wrong type (a
        ``stats.new_tokens`` that is not a number) is left out instead, and said in ``notes``.

        Raises:
            ImportRefusedError: If the file is malformed, too large or hostile (says what and where).
        """
        parsed = transcripts.parse_import(data, notes=notes)

        def work(connection: Connection) -> list[str]:
            return [rows.insert_imported(connection, item) for item in parsed]

        ids = database.run_write(self._engine, work)
        return [self.info(i) for i in ids]

    # --- helpers ------------------------------------------------------------------------------------
    def _all(self) -> InfoList:
        found: InfoList = []
        while batch := self.list(limit=1000, offset=len(found)):
            found += batch
        return found

    @staticmethod
    def _check_id(conversation_id: str) -> None:
        if not transcripts.valid_id(conversation_id):
            raise StoreError(
                f"{conversation_id!r} is not a conversation id; ids are 1-64 letters, digits, '-' or '_'."
            )

    def _require(
        self, connection: Connection, conversation_id: str, *, include_deleted: bool = False
    ) -> ConversationInfo:
        statement = sa.select(conversations).where(conversations.c.id == conversation_id)
        if not include_deleted:
            statement = statement.where(conversations.c.deleted_at.is_(None))
        row = connection.execute(statement).first()
        if row is None:
            raise ConversationNotFoundError(
                f"No saved conversation has the id {conversation_id!r}; list them with "
                "`python -m workbench history list`."
            )
        return rows.info(row)
