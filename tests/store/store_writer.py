"""A writer process for the crash and concurrency tests (run as a script, not collected by pytest).

python store_writer.py URL turns            append question/answer pairs forever, printing each
                                            committed position, until killed
python store_writer.py URL imports          import 500-message conversations forever, printing
                                            each committed id, until killed
python store_writer.py URL append N ID      append N messages to conversation ID (created if new)
"""

from __future__ import annotations

import json
import sys

from workbench.messages import Message, Role
from workbench.store import ConversationNotFoundError, ConversationStore


def main(argv: list[str]) -> None:
    url, what = argv[0], argv[1]
    store = ConversationStore.open(url)
    if what == "turns":
        info = store.create("chat")
        print(f"id {info.id}", flush=True)
        position = 0
        while True:
            role = Role.USER if position % 2 == 0 else Role.ASSISTANT
            store.append(info.id, position, Message(role, f"message {position} " + "x" * 2000))
            print(f"committed {position}", flush=True)
            position += 1
    elif what == "imports":
        messages = [{"role": "user", "content": f"m{i} " + "y" * 500} for i in range(500)]
        payload = json.dumps({"title": "bulk", "mode": "chat", "messages": messages})
        while True:
            [info] = store.import_json(payload)
            print(f"committed {info.id}", flush=True)
    elif what == "append":
        count, conversation_id = int(argv[2]), argv[3]
        try:
            store.info(conversation_id)
        except ConversationNotFoundError:
            store.create("chat", conversation_id=conversation_id)
        for position in range(count):
            store.append(conversation_id, position, Message(Role.USER, f"{conversation_id} {position}"))
            store.rename(conversation_id, f"{conversation_id} at {position}")
            store.list(limit=20)
        print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
