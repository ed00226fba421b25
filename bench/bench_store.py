"""Conversation store figures at scale: 10,000 conversations, 1,000,000 messages.

Fills a fresh database with bulk inserts (through the store's real schema, triggers and indexes), then
times what the app does: open the store, list the newest conversations (all, one page's mode, a later
page), search a common word, a rare word and two words, open a conversation of 500 messages in 20
branches, switch between its branches, append a message. It also times the alternatives the indexes were chosen against: search with LIKE instead of
FTS5, and the list and the open without their index (SQLite's NOT INDEXED).

A share of the messages (``--cjk-share``, default 10%) is Chinese, written without spaces (words of one
to three characters from 3,000 common characters, Zipf-like), and 20 of them hold the sentence of issue
26 (今天北京的天气怎么样？我想去颐和园散步。): Chinese words of three, two and one characters are searched
through the substring index of migration 0005 and, for comparison, with LIKE.

Run: .venv/bin/python bench/bench_store.py [--conversations 10000] [--messages 1000000] [--url URL]
     [--keep PATH]  (default: a SQLite file in a temporary folder, removed at the end)

``--checkpoint-cost`` measures instead what checkpointing a streaming answer (the recorder's write of the
answer so far, about once a second) costs the decode speed of the embedded model: chat turns with a
recorder that checkpoints and with one that does not, alternated, on the same SQLite file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from workbench.conversation import Conversation
from workbench.messages import Message, Role
from workbench.store import ConversationStore
from workbench.store import rows as rows_module
from workbench.store.recorder import ConversationRecorder
from workbench.store.reopen import load_conversation
from workbench.store.schema import conversations, messages

MODES = ("chat", "tool", "code")
RARE_WORD = "zanzibar"
RARE_SENTENCE = "今天北京的天气怎么样？我想去颐和园散步。"
_CHINESE_SEED = 26
BIG = "big-conversation"
T = TypeVar("T")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


BRANCHES, PER_BRANCH = 20, 25


def big_tree() -> list[tuple[str, str | None]]:
    """The big conversation's ids and parents: 500 messages in 20 branches of 25.

    Branch 0 is a line from the root; branch ``b`` starts under message ``b`` of branch 0 (an edit or a
    regenerate there) and goes on for 25 messages. The shown leaf is the last branch's last message.
    """
    links: list[tuple[str, str | None]] = []
    for branch in range(BRANCHES):
        parent = f"b0m{branch - 1}" if branch else None
        for step in range(PER_BRANCH):
            key = f"b{branch}m{step}"
            links.append((key, parent))
            parent = key
    return links


def chinese_vocabulary(size: int, rng: random.Random) -> list[str]:
    characters = [chr(code) for code in rng.sample(range(0x4E00, 0x9FA6), 3000)]
    return ["".join(rng.choices(characters[:1500], k=rng.choice((1, 2, 2, 2, 3)))) for _ in range(size)]


def chinese_text(words: list[str], cumulative: list[float], rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(1, 4)):
        sentences.append("".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(5, 20))))
    return "。".join(sentences) + "。"


def fill(
    store: ConversationStore, n_conversations: int, n_messages: int, seed: int = 1, cjk_share: float = 0.1
) -> float:
    """Insert the conversations and messages in batches; return the seconds it took."""
    rng = random.Random(seed)
    words = vocabulary(5000, rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf-like: a few words are everywhere
    cumulative = list(itertools.accumulate(weights))
    chinese = chinese_vocabulary(5000, random.Random(_CHINESE_SEED))
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    big_share = 500
    per_conversation = (n_messages - big_share) // (n_conversations - 1)
    with store.engine.begin() as connection:
        rows = []
        for number in range(n_conversations):
            when = now - timedelta(seconds=rng.randint(0, 365 * 86400))
            count = big_share if number == 0 else per_conversation
            rows.append(
                {
                    "id": BIG if number == 0 else f"c{number:06d}",
                    "title": " ".join(rng.choices(words[:500], k=4)),
                    "mode": MODES[number % 3],
                    "model": json.dumps({"path": "embedded", "device": "cpu"}),
                    "created_at": when,
                    "updated_at": when,
                    "deleted_at": None,
                    "message_count": count,
                    "current_id": big_tree()[-1][0] if number == 0 else f"m{count - 1}",
                }
            )
        connection.execute(conversations.insert(), rows)
        batch: list[dict[str, object]] = []
        planted = planted_cjk = 0
        for conversation in rows:
            links = big_tree() if conversation["id"] == BIG else None
            for position in range(conversation["message_count"]):  # type: ignore[call-overload]
                if rng.random() < cjk_share:
                    text = chinese_text(chinese, cumulative, rng)
                    if planted_cjk < 20 and rng.random() < 0.001:
                        text += RARE_SENTENCE
                        planted_cjk += 1
                else:
                    text = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(8, 60)))
                    if planted < 20 and rng.random() < 0.0001:
                        text += f" {RARE_WORD}"
                        planted += 1
                extra = {"metadata": {"stats": {"tokens": 42, "tokens_per_s": 20.5}}} if position % 2 else {}
                message_id, parent_id = links[position] if links else (f"m{position}", f"m{position - 1}" if position else None)
                batch.append(
                    {
                        "conversation_id": conversation["id"],
                        "message_id": message_id,
                        "parent_id": parent_id,
                        "position": position,
                        "role": "user" if position % 2 == 0 else "assistant",
                        "content": text,
                        "extra": json.dumps(extra),
                        "created_at": conversation["created_at"],
                    }
                )
                if len(batch) == 50_000:
                    connection.execute(messages.insert(), batch)
                    batch = []
        if batch:
            connection.execute(messages.insert(), batch)
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    elif store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - started


def timed(work: Callable[[], T], runs: int) -> tuple[float, T]:
    result = work()  # once to warm the caches, as in a running app
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def report(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<52} {seconds * 1000:9.2f} ms  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--url", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--keep", help="keep the SQLite file at this path")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cjk-share", type=float, default=0.1, help="share of Chinese messages")
    parser.add_argument(
        "--checkpoint-cost", action="store_true", help="only the checkpointing cost (see above)"
    )
    parser.add_argument("--new-tokens", type=int, default=300, help="per chat turn, for --checkpoint-cost")
    args = parser.parse_args()
    if args.checkpoint_cost:
        checkpoint_cost(args.url, args.new_tokens, max(2, args.runs // 3))
        return
    folder = tempfile.TemporaryDirectory(prefix="workbench-bench-")
    url = args.url or f"sqlite:///{args.keep or os.path.join(folder.name, 'conversations.sqlite3')}"
    print(f"Workbench conversation store benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Database: {sa.make_url(url).render_as_string(hide_password=True)}; SQLAlchemy {sa.__version__}")
    print(
        f"Load average at start (other work on this machine): {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    store = ConversationStore.open(url)
    seconds = fill(store, args.conversations, args.messages, cjk_share=args.cjk_share)
    print(f"Filled {args.conversations:,} conversations, {args.messages:,} messages in {seconds:.1f} s")
    if store.engine.dialect.name == "sqlite":
        size = Path(sa.make_url(url).database or "").stat().st_size
        print(f"Database file: {size / 1e6:.0f} MB")
    store.close()
    print(f"Median of {args.runs} runs after one warm-up:")
    seconds, store = timed(lambda: open_and_list(url), max(3, args.runs // 3))
    report("open (engine, schema check, first list)", seconds)
    measure(store, args.runs)
    store.close()
    folder.cleanup()


def open_and_list(url: str) -> ConversationStore:
    store = ConversationStore.open(url)
    store.list(limit=1)
    return store


def measure(store: ConversationStore, runs: int) -> None:
    report("list newest 50, all modes", timed(lambda: store.list(limit=50), runs)[0])
    report(
        "list newest 50 of one mode (a page's sidebar)", timed(lambda: store.list("code", limit=50), runs)[0]
    )
    report(
        "list 50 of one mode at offset 2,000",
        timed(lambda: store.list("code", limit=50, offset=2000), runs)[0],
    )
    like_store = ConversationStore(store.engine)
    like_store._fts5 = False  # the LIKE path, for comparison
    first, second = store.get(BIG)[1][:2]
    queries = {
        "a common word": first.content.split()[0],
        "a rare word": RARE_WORD,
        "two words": " ".join(second.content.split()[:2]),
    }
    for label, query in queries.items():
        seconds, found = timed(partial(store.search, query, limit=50), runs)
        report(f"search {label} ({query!r}), first 50 hits", seconds, f"{len(found)} hits")
        if store.engine.dialect.name == "sqlite":
            seconds, found = timed(partial(like_store.search, query, limit=50), max(3, runs // 5))
            report("  the same with LIKE instead of FTS5", seconds, f"{len(found)} hits")
    measure_chinese(store, runs)
    seconds, (_info, history) = timed(partial(store.get, BIG), runs)
    report(f"read the shown branch ({len(history)} messages) of a 500-message tree", seconds)
    def cold_open() -> Conversation:
        rows_module._clean_extras.clear()  # as after a restart: every message's fields checked
        return load_conversation(store, BIG)

    seconds, conversation = timed(cold_open, runs)
    report(
        f"open a conversation of {conversation.node_count()} messages in {BRANCHES} branches, cold",
        seconds,
        "target <= 20 ms",
    )
    seconds, conversation = timed(partial(load_conversation, store, BIG), runs)
    report("  the same again (its fields already checked in this process)", seconds)
    ConversationRecorder.attach(store, conversation, saved=True)
    leaves = [f"b{branch}m{PER_BRANCH - 1}" for branch in range(BRANCHES)]
    turn = itertools.cycle(leaves)
    report(
        "switch branches (the pager: the thread changes, the shown leaf is saved)",
        timed(lambda: conversation.switch(next(turn)), runs)[0],
        "target <= 10 ms",
    )
    report(
        "append a message to the shown branch (what the app's recorder writes)",
        timed(lambda: conversation.append(Message(Role.USER, "one more message " + "word " * 40)), runs)[0],
        "target <= 1.2x the list's 1.7 ms",
    )

    seconds = timed(lambda: store.add(BIG, Message(Role.USER, "m " + "word " * 40), None), runs)[0]
    report("store.add (one committed transaction, no reading)", seconds)
    if store.engine.dialect.name == "sqlite":
        without_indexes(store)


def measure_chinese(store: ConversationStore, runs: int) -> None:
    """Chinese words of three, two and one characters: the substring index, then LIKE."""
    like_store = ConversationStore(store.engine)
    like_store._trigram = False  # SQLite: LIKE; PostgreSQL: ILIKE without pg_trgm's help is not
    chinese = chinese_vocabulary(5000, random.Random(_CHINESE_SEED))  # the fill's: most frequent first
    common = {length: next(word for word in chinese if len(word) == length) for length in (1, 2, 3)}
    queries = {
        "a rare Chinese word, 3 characters": "颐和园",
        "a rare Chinese word, 2 characters": "散步",
        "a common Chinese word, 3 characters": common[3],
        "a common Chinese word, 2 characters": common[2],
        "a common Chinese character": common[1],
        "two Chinese words, 3 and 2 characters": "颐和园 天气",
    }
    for label, query in queries.items():
        seconds, found = timed(partial(store.search, query, limit=50), runs)
        report(f"search {label} ({query!r}), first 50 hits", seconds, f"{len(found)} hits")
        if store.engine.dialect.name == "sqlite":
            seconds, found = timed(partial(like_store.search, query, limit=50), max(3, runs // 5))
            report("  the same with LIKE instead of the trigram index", seconds, f"{len(found)} hits")


def without_indexes(store: ConversationStore) -> None:
    print("The same queries in SQL, with and without their index (SQLite NOT INDEXED):")
    listing = (
        "SELECT * FROM conversations {hint} WHERE deleted_at IS NULL AND mode = 'code' "
        "ORDER BY updated_at DESC, id DESC LIMIT 50"
    )
    opening = "SELECT * FROM messages {hint} WHERE conversation_id = ? ORDER BY position"
    cases: list[tuple[str, str, tuple[str, ...]]] = [
        ("list newest 50 of one mode", listing, ()),
        ("open 500 messages", opening, (BIG,)),
    ]
    with store.engine.connect() as connection:
        for label, sql, params in cases:
            for hint in ("", "NOT INDEXED"):
                statement = sql.format(hint=hint)
                seconds, _ = timed(partial(fetch_all, connection, statement, params), 5)
                plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).fetchall()
                report(
                    f"{label} {hint or 'with the index'}", seconds, "; ".join(str(row[-1]) for row in plan)
                )


def fetch_all(connection: sa.Connection, statement: str, params: tuple[str, ...]) -> list[object]:
    return list(connection.exec_driver_sql(statement, params).fetchall())


def checkpoint_cost(url: str | None, new_tokens: int, pairs: int) -> None:
    """Decode speed of chat turns on the embedded model, with and without checkpointing, alternated."""
    from workbench.conversation import Conversation, Mode
    from workbench.models.generation import SamplingSettings
    from workbench.models.spec import ModelSpec
    from workbench.modes.chat import ChatSession
    from workbench.shared import shared_model
    from workbench.store import recorder as recorder_module

    folder = tempfile.TemporaryDirectory(prefix="workbench-bench-")
    url = url or f"sqlite:///{os.path.join(folder.name, 'conversations.sqlite3')}"
    model = shared_model(ModelSpec(device="cpu")).get()
    settings = SamplingSettings(temperature=0.0, max_new_tokens=new_tokens, repetition_penalty=1.3)
    print(f"Checkpoint cost, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {model.info.summary()}")
    print(
        f"Load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {new_tokens} new tokens a turn"
    )
    writes: list[float] = []
    drafting = [0.0]  # seconds spent announcing and checkpointing drafts, in the checkpointing turns
    busy = [0.0]  # seconds those turns took

    def timed_draft(draft: Callable[[str], None], text: str) -> None:
        started = time.perf_counter()
        draft(text)
        drafting[0] += time.perf_counter() - started

    checkpoint = recorder_module.ConversationRecorder._checkpoint

    def timed_checkpoint(self: recorder_module.ConversationRecorder, change: object) -> None:
        started = time.perf_counter()
        checkpoint(self, change)  # type: ignore[arg-type]
        writes.append(time.perf_counter() - started)

    recorder_module.ConversationRecorder._checkpoint = timed_checkpoint  # type: ignore[method-assign]
    speeds: dict[str, list[float]] = {"checkpointing": [], "no checkpoints": []}
    with ConversationStore.open(url) as store:
        for number in range(pairs * 2 + 1):
            label = "checkpointing" if number % 2 else "no checkpoints"
            conversation = Conversation(Mode.CHAT)
            if label == "no checkpoints":  # as before checkpointing: no drafts announced at all
                conversation.draft = lambda text: None  # type: ignore[method-assign]
            else:  # every draft's whole cost: the event, the recorder's clock check, the writes
                conversation.draft = partial(timed_draft, conversation.draft)  # type: ignore[method-assign]
            recorder_module.ConversationRecorder.attach(store, conversation)
            session = ChatSession(model, settings=settings, history=conversation)
            started = time.perf_counter()
            turn = session.send("Write a long story about a lighthouse keeper and the sea.")
            for _ in turn.text():
                pass
            seconds = time.perf_counter() - started
            if number == 0:
                continue  # a warm-up turn
            speeds[label].append(turn.stats.new_tokens / seconds)
            if label == "checkpointing":
                busy[0] += seconds
    recorder_module.ConversationRecorder._checkpoint = checkpoint  # type: ignore[method-assign]
    folder.cleanup()
    for label, values in speeds.items():
        print(f"  {label:<16} {statistics.median(values):7.1f} tok/s (median of {len(values)}: "
              f"{', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
    slower = 1 - statistics.median(speeds["checkpointing"]) / statistics.median(speeds["no checkpoints"])
    written = [w for w in writes if w > 1e-4]  # the calls that wrote a row (the others only check the clock)
    print(f"  A/B difference: {slower * 100:+.1f}% of decode speed (on a busy machine, mostly noise)")
    share = drafting[0] / busy[0] if busy[0] else 0.0
    print(
        f"  checkpointing work in the consumer thread: {drafting[0] * 1000:.0f} ms of {busy[0]:.1f} s "
        f"of turns = {share * 100:.2f}% (the direct cost on decode speed)"
    )
    if written:
        print(
            f"  a checkpoint write: median {statistics.median(written) * 1000:.2f} ms, {len(written)} writes"
        )


if __name__ == "__main__":
    main()
