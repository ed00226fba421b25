"""``python -m workbench models``: list, pull and remove models by name in the Hugging Face cache.

``pull`` shows the library's own progress bars (tqdm, on standard error); Ctrl-C stops it and a second
``pull`` fetches what is missing. ``list`` shows what the cache holds, Workbench's or not, with size,
quantization and when Workbench last used it.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TextIO


def add_models_parser(models: argparse.ArgumentParser) -> None:
    """Add the ``models`` actions to the ``models`` command's parser."""
    actions = models.add_subparsers(dest="models_action", required=True)
    listing = actions.add_parser("list", help="cached models: name, size, quantization, last use")
    listing.add_argument("--json", action="store_true", help="print JSON")
    pull = actions.add_parser("pull", help="download a model by name (ORG/REPO, ORG/REPO-GGUF:QUANT)")
    pull.add_argument("name")
    pull.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a model that ships its own Python code (it is refused before downloading otherwise)",
    )
    remove = actions.add_parser("rm", help="delete a cached model's files")
    remove.add_argument("name")


def run_models(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run ``models list|pull|rm``; returns the exit status (errors are raised as WorkbenchError)."""
    from workbench.models import hub, hub_cache

    if args.models_action == "list":
        models = hub_cache.list_cached()
        if args.json:
            print(json.dumps([m.to_dict() for m in models], indent=2), file=out)
            return 0
        if not models:
            print(
                f"No models in {hub_cache.hub_cache()}. Get one with: models pull ORG/REPO-GGUF:QUANT",
                file=out,
            )
            return 0
        rows = [("NAME", "KIND", "QUANT", "SIZE", "LAST USED")]
        for m in models:
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used)) if m.last_used else "-"
            rows.append((m.name, m.kind, m.quant or "-", hub.mb(m.size), used))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
                file=out,
            )
        return 0
    if args.models_action == "pull":
        result = hub.pull(
            args.name, trust_remote_code=args.trust_remote_code, progress=lambda line: print(line, file=err)
        )
        print(result.path, file=out)
        return 0
    removed = hub_cache.remove_cached(args.name)
    print(f"Removed {removed.name} ({hub.mb(removed.size)}).", file=out)
    return 0
