"""A conversation's tree drawn as text, for ``history show ID --tree``."""

from __future__ import annotations

from workbench.conversation import Node
from workbench.store.rows import thread_ids

LINE_CHARS = 70
"""Each message is shown by at most this many characters of its first line."""


def draw_tree(nodes: list[Node], current_id: str | None) -> str:
    """Draw every branch, one line per message, marking the shown branch's messages with ``*``.

    Args:
        nodes: The messages with their parents' ids, parents first.
        current_id: The shown leaf.
    """
    children: dict[str | None, list[Node]] = {}
    for message, parent in nodes:
        children.setdefault(parent, []).append((message, parent))
    shown = set(thread_ids({m.id: p for m, p in nodes}, current_id))
    lines: list[str] = []
    stack: list[tuple[Node, str, bool, bool]] = [
        (node, "", index == len(children.get(None, [])) - 1, True)
        for index, node in reversed(list(enumerate(children.get(None, []))))
    ]
    while stack:
        (message, _parent), indent, last, top = stack.pop()
        text = " ".join(message.content.split())
        text = text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…"
        siblings = children.get(_parent, [])
        pager = f" [{[m.id for m, _ in siblings].index(message.id) + 1}/{len(siblings)}]" if len(siblings) > 1 else ""
        branch = "" if top and len(siblings) == 1 else ("└─ " if last else "├─ ")
        mark = "*" if message.id in shown else " "
        lines.append(f"{mark} {indent}{branch}{message.role.value}: {text or '(no text)'}{pager}")
        below = children.get(message.id, [])
        if len(siblings) > 1 or not top:
            child_indent = indent + ("   " if last else "│  ") if branch else indent
        else:
            child_indent = indent
        if len(below) == 1:  # a plain continuation stays in its column
            stack.append((below[0], child_indent, True, True))
        else:
            for index, node in reversed(list(enumerate(below))):
                stack.append((node, child_indent, index == len(below) - 1, False))
    return "\n".join(lines) + ("\n" if lines else "")
