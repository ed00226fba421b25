"""Opening a saved conversation again, and re-running the code of a saved Code conversation.

A saved conversation opens as a live :class:`~workbench.conversation.Conversation`; the
code cells of a saved Code conversation can run again in its new kernel.

A saved Code conversation keeps every output and image of its runs (in its messages), but not the
kernel's variables: a reopened conversation gets a new kernel. :func:`rerun_cells` runs the code it
holds, in order, to bring the variables back when the user asks.
"""

from __future__ import annotations

from workbench.conversation import Conversation, Mode
from workbench.modes.code_rerun import RerunReport, code_cells, rerun_cells
from workbench.store.store import ConversationStore

__all__ = ["NEW_KERNEL_NOTE", "RerunReport", "code_cells", "load_conversation", "rerun_cells"]

NEW_KERNEL_NOTE = (
    "Opened from your history with a new kernel: outputs and images are as they were, but variables, "
    "imports and files made by the code are not restored. Re-run the cells to rebuild them."
)


def load_conversation(store: ConversationStore, conversation_id: str) -> Conversation:
    """Return the saved conversation, its whole tree, showing the branch that was shown (no listeners yet).

    Raises:
        ConversationNotFoundError: If there is no such live conversation.
    """
    info, nodes, current = store.get_tree(conversation_id)
    return Conversation.from_tree(Mode(info.mode), info.id, info.title, info.created, info.updated, nodes, current)
