"""``python -m workbench kb``: knowledge bases: add files, list, remove, search.

They live in the conversations' database (``WORKBENCH_DB_URL``, else the SQLite file in
``WORKBENCH_DATA_DIR``; ``kb --db URL`` names another). ``ask --kb NAME`` answers from one.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO


def add_kb_parser(kb: argparse.ArgumentParser) -> None:
    """Add the ``kb`` actions and their options to the ``kb`` command's parser."""
    kb.add_argument("--db", metavar="URL", help="the database (default: WORKBENCH_DB_URL or the data folder)")
    actions = kb.add_subparsers(dest="kb_action", required=True)
    add = actions.add_parser("add", help="add files to a knowledge base (made if missing)")
    add.add_argument("name")
    add.add_argument("files", nargs="+", metavar="FILE", help="pdf, docx, pptx, html, md or txt")
    add.add_argument(
        "--embedder",
        default="e5",
        help="when the knowledge base is made: e5 (default), minilm, or a server's openai:URL#MODEL",
    )
    listing = actions.add_parser("list", help="list the knowledge bases, or one's documents")
    listing.add_argument("name", nargs="?")
    listing.add_argument("--json", action="store_true", help="print JSON")
    remove = actions.add_parser("rm", help="remove a knowledge base, or one document of it")
    remove.add_argument("name")
    remove.add_argument("file", nargs="?", help="only this document (its file name)")
    search = actions.add_parser("search", help="the passages of a knowledge base nearest to a query")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    search.add_argument("--json", action="store_true", help="print JSON")


def run_kb(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run one ``kb`` action.

    Returns:
        0.

    Raises:
        DocumentError: If a file cannot be added (named), or the knowledge base is not there.
        StoreError: If the database cannot be used.
    """
    from workbench.knowledge import KnowledgeBases

    with KnowledgeBases.open(args.db) as bases:
        action = args.kb_action
        if action == "add":
            if args.name not in bases.names():
                bases.create(args.name, embedder=args.embedder)
            for file in args.files:  # one at a time: a bad file stops here, the ones before it stay
                [result] = bases.add(args.name, [file])
                if result.added:
                    print(f"Added {result.file} to {args.name}: {result.chunks} passages.", file=out)
                else:
                    print(
                        f"{result.file} is in {args.name} already (same content); not added again.", file=out
                    )
        elif action == "list" and args.name:
            rows = bases.documents(args.name)
            if args.json:
                payload = [{"file": f, "kind": k, "chunks": c} for f, k, c in rows]
                print(json.dumps(payload, indent=2, ensure_ascii=False), file=out)
            for file, kind, chunks in [] if args.json else rows:
                print(f"{file}  ({kind}, {chunks} passages)", file=out)
        elif action == "list":
            infos = bases.list()
            if args.json:
                payload = [
                    {"name": i.name, "embedder": i.embedder, "documents": i.documents, "chunks": i.chunks}
                    for i in infos
                ]
                print(json.dumps(payload, indent=2, ensure_ascii=False), file=out)
            elif not infos:
                print("No knowledge bases; make one with: python -m workbench kb add NAME FILE...", file=out)
            for info in [] if args.json else infos:
                print(
                    f"{info.name}  {info.documents} documents, {info.chunks} passages ({info.embedder})",
                    file=out,
                )
        elif action == "rm":
            gone = bases.remove(args.name, args.file)
            what = args.file if args.file else f"knowledge base {args.name} ({gone} documents)"
            print(f"Removed {what}.", file=out)
        else:
            hits = bases.search(args.name, args.query, max(1, args.k))
            if args.json:
                payload = [
                    {"source": h.chunk.source, "score": round(h.score, 4), "text": h.chunk.text} for h in hits
                ]
                print(json.dumps(payload, indent=2, ensure_ascii=False), file=out)
            for number, hit in enumerate([] if args.json else hits, start=1):
                print(f"[{number}] {hit.chunk.source}  (score {hit.score:.3f})\n{hit.chunk.text}\n", file=out)
    return 0
