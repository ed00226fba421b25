"""Nothing leaves the machine: every request the three pages make goes to the app's own server.

Saved conversations hold what an import, a model or a tool could bring: Markdown images pointing
elsewhere, in messages and in a tool call's name. Chromium records the host of every request while
the pages show them (and the page icon, which Streamlit fetches from a font host for a Material icon).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import wait_script_done
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.e2e.watch import outside, record_requests
from workbench.messages import Message, Role, ToolCall
from workbench.store import ConversationStore
from workbench.store.database import DB_FILENAME

pytestmark = pytest.mark.browser

OUTSIDE = "https://images.example.com"


def seed(data_dir: Path) -> dict[str, str]:
    """A conversation per page whose messages (and a tool call's name) hold outside images."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ConversationStore.open(f"sqlite:///{data_dir / DB_FILENAME}")
    messages = {
        "chat": [
            Message(Role.USER, f"Look: ![a cat]({OUTSIDE}/user.png)"),
            Message(Role.ASSISTANT, f"Here ![]({OUTSIDE}/answer.png) and ![ref]\n\n[ref]: {OUTSIDE}/ref.png"),
        ],
        "tool": [
            Message(Role.USER, "What time is it?"),
            Message(
                Role.ASSISTANT,
                f"Calling ![tool]({OUTSIDE}/prose.png)",
                tool_calls=[ToolCall(f"![name]({OUTSIDE}/name.png)", {"q": f"![arg]({OUTSIDE}/arg.png)"})],
            ),
            Message(Role.OBSERVATION, f"![result]({OUTSIDE}/result.png)", name="x", error=True),
            Message(Role.ASSISTANT, f"Done ![done]({OUTSIDE}/done.png)"),
        ],
        "code": [
            Message(Role.USER, f"Plot ![it]({OUTSIDE}/code-user.png)"),
            Message(Role.ASSISTANT, f"Sure ![plot]({OUTSIDE}/code-answer.png)"),
        ],
    }
    ids = {}
    try:
        for mode, history in messages.items():
            info = store.create(mode, title=f"outside {mode}")
            for position, message in enumerate(history):
                store.append(info.id, position, message)
            ids[mode] = info.id
    finally:
        store.close()
    return ids


def test_no_request_leaves_the_machine(page: Any, tmp_path: Path) -> None:
    ids = seed(tmp_path / "data")
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_DATA_DIR": str(tmp_path / "data")}
    with launch_streamlit(tmp_path / "server.log", env) as url:
        requests = record_requests(page.context)
        open_app(page, url, f"chat?c={ids['chat']}")
        page.get_by_text("Look:").wait_for()
        page.get_by_role("link", name="a cat").wait_for()  # the image, shown as a link
        open_app(page, url, f"tool?c={ids['tool']}")
        page.get_by_text("Done").first.wait_for()
        page.get_by_text(f"![name]({OUTSIDE}/name.png)", exact=False).first.wait_for()  # the name as written
        open_app(page, url, f"code?c={ids['code']}", ready="[data-testid='stChatInput']")
        page.get_by_text("Sure").first.wait_for()
        wait_script_done(page)
        page.wait_for_timeout(2000)
        assert requests, "the recording works"
        assert outside(requests, url.removeprefix("http://")) == []
