"""Documents in Tool and Code modes (issue 26): the question goes with its sources in every round of its
answer, the first reply keeps them, and in Code mode the attached files are in the kernel's folder and
named to the model. Scripted model, real e5 embedder, real parsers; the code runs in a small fake kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.errors import WorkdirFullError
from tests.documents import files
from tests.scripted import ScriptedBackend, call, hermes
from tests.test_code_mode import FakeKernel, drain, make_session
from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.documents import DocumentIndex, attach, sources_of
from workbench.knowledge import ConversationDocuments
from workbench.messages import Role
from workbench.modes.events import Notice
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession
from workbench.store import ConversationStore

TURBINE = files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Oil cools it."])
SOURCE = "[1] turbine.pdf, page 1:\nThe Zephyr turbine spins at 3000 rpm."


@pytest.fixture(scope="module")
def turbine() -> DocumentIndex:
    index = DocumentIndex()
    attach(index, "turbine.pdf", TURBINE)
    return index


def test_tool_mode_sends_the_sources_in_every_round_and_the_first_reply_keeps_them(
    turbine: DocumentIndex,
) -> None:
    registry = ToolRegistry(default_timeout=5.0)
    registry.load_builtins()
    backend = ScriptedBackend(call("calculator", expression="3000 / 60"), "50 turns a second [1].")
    session = ToolSession(
        ChatModel(backend, dialect=hermes()), registry, options=ToolOptions(tool_choice=ToolChoice.REQUIRED)
    )
    session.documents = turbine
    list(session.send("How many turns a second does the turbine make?"))
    assert len(backend.prompts) == 2 and all(SOURCE in prompt for prompt in backend.prompts)
    question, first, observation, answer = session.messages
    assert question.content == "How many turns a second does the turbine make?"  # kept as typed
    assert [s.label for s in sources_of(first.metadata)] == ["turbine.pdf, page 1", "turbine.pdf, page 2"]
    assert first.tool_calls and observation.role is Role.OBSERVATION and not sources_of(answer.metadata)

    plain = ToolSession(ChatModel(ScriptedBackend("Hi."), dialect=hermes()), registry)
    list(plain.send("Hello"))  # no documents: the question goes alone
    assert "Sources:" not in plain.model.backend.prompts[0]  # type: ignore[attr-defined]


def test_code_mode_puts_the_files_in_the_folder_and_names_them(
    tmp_path: Path, turbine: DocumentIndex
) -> None:
    kernel = FakeKernel(tmp_path / "first")
    kernel.workdir.mkdir()
    code = "```python\nprint(len(open('turbine.pdf', 'rb').read()))\n```"
    session, backend = make_session(kernel, code, "It is a PDF [1].", "Done.", force_code=False)
    session.documents = session.attached = turbine
    drain(session.send("How fast does the turbine spin?"))
    assert (kernel.workdir / "turbine.pdf").read_bytes() == TURBINE
    assert (
        "The user attached these documents; they are in the current folder: turbine.pdf."
        in backend.prompts[0]
    )
    assert SOURCE in backend.prompts[0] and SOURCE in backend.prompts[1]
    first = session.messages[1]
    assert sources_of(first.metadata) and not sources_of(session.messages[-1].metadata)
    assert session.messages[0].content == "How fast does the turbine spin?"

    (kernel.workdir / "turbine.pdf").write_bytes(b"changed by the code")
    drain(session.send("Again"))
    assert (kernel.workdir / "turbine.pdf").read_bytes() == b"changed by the code"  # never overwritten


def test_a_reopened_code_conversation_gets_its_saved_files_in_a_new_kernel(tmp_path: Path) -> None:
    with ConversationStore.open(f"sqlite:///{tmp_path / 'conversations.sqlite3'}") as store:
        conversation_id = store.create("code", "plant").id
        attach(ConversationDocuments(store.engine, conversation_id), "turbine.pdf", TURBINE)
        kernel = FakeKernel(tmp_path / "new")
        kernel.workdir.mkdir()
        session, _backend = make_session(kernel, "Ready.")
        session.attached = ConversationDocuments(store.engine, conversation_id)  # as the page opens it
        assert session.place_attached() == ["turbine.pdf"]
        assert (kernel.workdir / "turbine.pdf").read_bytes() == TURBINE
        assert session.place_attached() == []  # there already


def test_a_file_that_cannot_be_placed_is_said_and_the_message_still_goes(
    tmp_path: Path, turbine: DocumentIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel(tmp_path / "k")
    kernel.workdir.mkdir()
    session, backend = make_session(kernel, "Fine.", force_code=False)
    session.attached = turbine

    def full(name: str, data: bytes) -> Path:
        raise WorkdirFullError(f"No room for {name} in the work folder.")

    monkeypatch.setattr(session, "upload", full)
    events = drain(session.send("Hello"))
    assert len(backend.prompts) == 1
    notices = [event.text for event in events if isinstance(event, Notice)]
    assert notices == [
        "An attached file could not be put into the work folder: No room for turbine.pdf in the work folder."
    ]
