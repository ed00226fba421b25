"""The code loop on the real embedded model (SmolLM2-135M) with the real sandboxed kernel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import KernelSession
from workbench.chat_model import ChatModel
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import split_code
from workbench.modes.code_runs import CodeRunning
from workbench.modes.events import MessageDone, Notice, TextDelta

pytestmark = [pytest.mark.model, pytest.mark.kernel]


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelSession]:
    with KernelSession(sandbox=True) as session:
        yield session


def session_for(chat_model: ChatModel, kernel: KernelSession, **code: object) -> CodeSession:
    settings = chat_model.default_settings().with_(temperature=0.0, max_new_tokens=40)
    return CodeSession(chat_model, kernel, settings=settings, code_settings=CodeSettings(**code))  # type: ignore[arg-type]


def test_forced_code_runs_in_the_kernel(chat_model: ChatModel, kernel: KernelSession) -> None:
    # The code itself is the model's own pick, which changes with the CPU (and may even fail): assert that
    # it was written in a python fence, ran in the kernel and came back as the observation.
    # test_code_mode.py's test_real_kernel_computes_2_to_the_20 runs exact code in this kernel.
    session = session_for(chat_model, kernel, max_rounds=1)
    events = list(session.send("What is 2**20?"))

    assert [m.role.value for m in session.messages][:3] == ["user", "assistant", "observation"]
    code_turn, observation = session.messages[1], session.messages[2]
    assert code_turn.interpreter is True and code_turn.content.startswith("```python\n")
    code = split_code(code_turn)[1]
    assert observation.name == "interpreter" and observation.content.strip()
    [run] = session.runs
    assert (run.source, run.code, run.error) == ("model", code, "")
    assert run.execution is not None and run.execution.code == code
    assert any(isinstance(e, CodeRunning) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith("```python\n")
    assert sum(isinstance(e, MessageDone) for e in events) >= 3


def test_without_forcing_the_model_may_answer_in_words(chat_model: ChatModel, kernel: KernelSession) -> None:
    session = session_for(chat_model, kernel, force_code=False, max_rounds=1)
    session.settings = session.settings.with_(max_new_tokens=20)
    events = list(session.send("Say hello."))
    assert session.messages[1].role.value == "assistant"
    assert not any(isinstance(e, Notice) and e.level == "error" for e in events)
