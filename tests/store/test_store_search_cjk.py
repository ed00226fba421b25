"""Search in Chinese (and other text written without spaces) on SQLite and a real PostgreSQL (issue 26).

FTS5's unicode61 tokenizer and PostgreSQL's ``simple`` configuration read a run of Chinese characters as
one word, so 天气 was not found inside 今天北京的天气怎么样. Migration 0005 adds substring indexes.
"""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from workbench.messages import Message, Role
from workbench.store import ConversationStore
from workbench.store import search as search_module
from workbench.store.database import create_store_engine, migrate

WEATHER = "今天北京的天气怎么样？我想去颐和园散步。"


def _found(store: ConversationStore, query: str) -> set[str]:
    return {info.id for info in store.search(query)}


@pytest.fixture
def filled(store: ConversationStore) -> tuple[ConversationStore, dict[str, str]]:
    ids = {}
    weather = store.create("chat", title="-")
    store.append(weather.id, 0, Message(Role.USER, WEATHER))
    store.append(weather.id, 1, Message(Role.ASSISTANT, "北京今天晴，适合散步"))
    ids["weather"] = weather.id
    english = store.create("chat", title="-")
    store.append(english.id, 0, Message(Role.USER, "Plotting the sine function with matplotlib"))
    ids["english"] = english.id
    mixed = store.create("code", title="-")
    store.append(mixed.id, 0, Message(Role.USER, "用Python画图 and plot it"))
    ids["mixed"] = mixed.id
    japanese = store.create("chat", title="-")
    store.append(japanese.id, 0, Message(Role.USER, "東京の天気はどうですか"))
    ids["japanese"] = japanese.id
    ending = store.create("chat", title="-")  # a short word as the very last characters of a text
    store.append(ending.id, 0, Message(Role.USER, "我们去散"))
    ids["ending"] = ending.id
    return store, ids


def test_chinese_words_inside_a_sentence_are_found(filled: tuple[ConversationStore, dict[str, str]]) -> None:
    store, ids = filled
    assert _found(store, "颐和园") == {ids["weather"]}  # three characters: the trigram index
    assert _found(store, "天气") == {ids["weather"]}  # two: the trigrams that start with it
    assert _found(store, "散步") == {ids["weather"]}
    assert _found(store, "北京的天气怎么样") == {ids["weather"]}
    assert _found(store, "颐和园 散步") == {ids["weather"]}  # every word, in one message
    assert _found(store, "颐和园 晴") == set()  # two words in two messages: not one message
    assert _found(store, "散") == {ids["weather"], ids["ending"]}  # one character, at the end too
    assert _found(store, "天氣") == set()  # traditional 氣 is another character
    assert _found(store, "天気") == {ids["japanese"]}
    assert _found(store, "上海") == set()


def test_english_search_keeps_working(filled: tuple[ConversationStore, dict[str, str]]) -> None:
    store, ids = filled
    assert _found(store, "plot sine") == {ids["english"]}  # word prefixes, as before
    assert _found(store, "lotting") == set()  # a word prefix, not a substring, for English
    assert _found(store, "MATPLOTLIB") == {ids["english"]}
    assert _found(store, "plot") == {ids["english"], ids["mixed"]}
    assert _found(store, "Python画图") == {ids["mixed"]}  # a mixed word matches as a substring
    assert _found(store, "python画图") == {ids["mixed"]}  # case-insensitive
    assert _found(store, "画图 plot") == {ids["mixed"]}
    assert _found(store, "画图 sine") == set()


def test_the_index_follows_edits_and_deletes(filled: tuple[ConversationStore, dict[str, str]]) -> None:
    store, ids = filled
    first = store.get(ids["weather"])[1][0]
    climb = Message(Role.USER, "我想去长城爬山")
    store.replace(ids["weather"], first.id, climb)
    assert _found(store, "颐和园") == set()
    assert _found(store, "长城") == {ids["weather"]}
    store.replace(ids["weather"], climb.id, Message(Role.USER, "no Chinese left here"))
    assert _found(store, "长城") == set()
    store.clear(ids["weather"])
    assert _found(store, "适合") == set()
    store.delete(ids["ending"])
    store.purge()
    assert _found(store, "散") == set()


def test_query_syntax_never_reaches_the_index(filled: tuple[ConversationStore, dict[str, str]]) -> None:
    store, ids = filled
    for hostile in [
        '天"气',
        '"天气" OR *',
        "天气*",
        "NEAR(天气 散步)",
        "天%",
        "天_",
        "'; DROP TABLE messages; --",
    ]:
        store.search(hostile)
    assert _found(store, '天"气') == {ids["weather"]}  # the quote separates two words
    assert _found(store, '"天气" OR 上海') == set()  # OR is a word here, not an operator
    assert _found(store, "颐%") == {ids["weather"]}  # % is no wildcard
    assert store.count() == 5


def test_the_sqlite_index_holds_only_text_written_without_spaces(sqlite_url: str) -> None:
    with ConversationStore.open(sqlite_url) as store:
        info = store.create("chat")
        store.append(info.id, 0, Message(Role.USER, "only English here"))
        store.append(info.id, 1, Message(Role.ASSISTANT, "天气"))
        with store.engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM messages_cjk").scalar_one()
        assert count == 1


def test_rows_written_before_the_migration_are_indexed(store_url: str) -> None:
    engine = create_store_engine(store_url)
    migrate(engine, "0004")
    with ConversationStore(engine) as store:  # the store of the release before, on its schema
        info = store.create("chat")
        store.append(info.id, 0, Message(Role.USER, WEATHER))
    with ConversationStore.open(store_url) as store:
        assert _found(store, "颐和园") == {info.id}
        assert _found(store, "天气") == {info.id}


def test_the_postgresql_bigram_index_is_used_for_two_characters(postgres_db: str) -> None:
    with ConversationStore.open(postgres_db) as store:
        info = store.create("chat", title="-")
        store.append(info.id, 0, Message(Role.USER, WEATHER))
        with store.engine.connect() as connection:
            bigrams = connection.exec_driver_sql(
                "SELECT workbench_cjk_bigrams(%s)", ("Py天气 ok",)
            ).scalar_one()
            assert sorted(bigrams) == [
                "y天",
                "天气",
                "气 ",
            ]  # windows holding a Chinese character, lower-cased
            assert (
                connection.exec_driver_sql("SELECT workbench_cjk_bigrams('plain English')").scalar_one() == []
            )
            connection.exec_driver_sql("SET enable_seqscan = off")
            condition = search_module.matching_condition(
                "天气", dialect="postgresql", fts5=False, trigram=True
            )
            statement = sa.select(sa.literal(1)).where(condition)
            compiled = statement.compile(store.engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}"))
        assert "ix_messages_content_bigrams" in plan


def test_the_postgresql_trigram_index_is_used(postgres_db: str) -> None:
    with ConversationStore.open(postgres_db) as store:
        with store.engine.connect() as connection:
            indexes = connection.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_content_trgm'"
            ).scalar_one()
            assert "gin_trgm_ops" in indexes
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = "\n".join(
                row[0]
                for row in connection.execute(
                    sa.text("EXPLAIN SELECT id FROM messages WHERE content ILIKE :p"), {"p": "%颐和园%"}
                )
            )
        assert "ix_messages_content_trgm" in plan


def test_the_migration_and_the_search_agree_on_the_characters() -> None:
    migration = importlib.import_module("workbench.store.migrations.versions.0005_search_cjk")
    assert f"*[{search_module.UNSPACED_RANGES}]*" == migration.UNSPACED_GLOB
    assert migration.revision == "0005_search_cjk"
