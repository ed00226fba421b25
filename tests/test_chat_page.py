"""The Chat page under Streamlit's AppTest, with the real embedded model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
MODEL_CAPTION = re.compile(r"^\*\*SmolLM2-135M-Instruct \(embedded\)\*\* · [\w.]+ · cpu · .* · context 8192$")


def shows_model(captions: list[str]) -> bool:
    """Whether one sidebar caption names the embedded model, its engine, the CPU and its context."""
    return any(MODEL_CAPTION.match(caption) for caption in captions)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    """The app with the Chat page loaded, greedy and short replies."""
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    assert not at.exception
    at.sidebar.slider(key="chat_temperature").set_value(0.0)
    at.sidebar.number_input(key="chat_max_new").set_value(24)
    return at.run()


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="chat_input").set_value(text)
    return at.run()


def conversation(at: AppTest) -> list[tuple[str, str]]:
    return [(m.name, m.markdown[0].value) for m in at.chat_message]


def load_other_model(at: AppTest, source: str) -> AppTest:
    at.sidebar.text_input[0].set_value(source)
    next(b for b in at.sidebar.button if b.label == "Load").click()
    return at.run()


def test_page_loads_the_model_and_shows_it_in_the_sidebar(app):
    assert [t.value for t in app.title] == ["Chat"]
    assert shows_model([c.value for c in app.sidebar.caption])
    assert not app.error and not app.chat_message


def test_regenerate_on_an_empty_chat_says_why_not(app):
    app.sidebar.button(key="chat_regenerate").click().run()
    assert [e.value for e in app.main.error] == ["Nothing to regenerate yet: send a message first."]


def test_a_message_gets_a_streamed_answer_with_stats(app):
    send(app, "Which city is the capital of France?")
    assert not app.exception and not app.error
    assert conversation(app)[0] == ("user", "Which city is the capital of France?")
    role, answer = conversation(app)[1]
    assert role == "assistant" and answer.strip()  # the words are the 135M model's pick, which varies by CPU
    stats = app.chat_message[1].caption[0].value
    assert " tokens · " in stats and " tok/s" in stats


def test_history_survives_reruns_and_clear_empties_it(app):
    send(app, "Which city is the capital of France?")
    send(app, "And of Germany?")
    assert [role for role, _ in conversation(app)] == ["user", "assistant", "user", "assistant"]
    app.run()
    assert len(app.chat_message) == 4
    app.sidebar.button(key="chat_clear").click().run()
    assert not app.chat_message
    assert app.session_state["chat_session"].messages == []


def test_regenerate_replaces_the_last_answer(app):
    send(app, "Which city is the capital of France?")
    first = conversation(app)
    app.sidebar.button(key="chat_regenerate").click().run()
    assert conversation(app) == first  # greedy: the same answer again, not a second one


def test_a_bad_model_path_shows_an_error_and_keeps_the_old_model(app, tmp_path):
    send(app, "Which city is the capital of France?")
    missing = tmp_path / "no-such-model"
    load_other_model(app, str(missing))
    assert not app.exception
    errors = [e.value for e in app.sidebar.error]
    assert errors == [
        f"Could not load no-such-model: Model path {str(missing)!r} does not exist. Give a Hugging Face model folder, a .gguf file, a model "
        "name on the Hugging Face Hub (ORG/REPO, ORG/REPO-GGUF:QUANT), or 'embedded'."
    ]
    assert [i.value for i in app.sidebar.info] == ["Still using SmolLM2-135M-Instruct (embedded)."]
    assert shows_model([c.value for c in app.sidebar.caption])
    assert len(app.chat_message) == 2, "the conversation is kept"
    send(app, "Which city is the capital of Germany?")
    assert not app.error
    assert [role for role, _ in conversation(app)] == ["user", "assistant"] * 2
    assert conversation(app)[-1][1].strip()


def test_a_corrupt_gguf_in_the_sidebar_keeps_the_old_model(app, tmp_path):
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(b"GGUF" + b"\0" * 12)
    load_other_model(app, str(corrupt))
    assert not app.exception
    assert app.sidebar.error[0].value.startswith(
        f"Could not load broken.gguf: Could not load the model from {corrupt}"
    )
    assert shows_model([c.value for c in app.sidebar.caption])


def test_a_prompt_longer_than_the_context_shows_an_error(app):
    send(app, "Which city is the capital of France?")
    send(app, "word " * 9000)
    assert not app.exception
    assert "tokens long but the model's context holds 8192" in app.error[0].value
    assert [role for role, _ in conversation(app)][:2] == ["user", "assistant"]
    assert len(app.session_state["chat_session"].messages) == 2, "the too-long message is not recorded"
    assert app.code[-1].value == "word " * 9000, "its text is kept, to copy or send again"
    assert "Your message was not sent:" in [c.value for c in app.main.caption]
    app.button(key="chat_discard_unsent").click().run()
    assert not app.error and not any(c.value == "word " * 9000 for c in app.code)
    assert len(app.session_state["chat_session"].messages) == 2


def test_a_bad_model_at_start_stops_the_page_with_the_message(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_MODEL", str(tmp_path / "missing"))
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    assert not at.exception
    assert f"{str(tmp_path / 'missing')!r} does not exist" in at.main.error[0].value
    assert not at.chat_input


def test_the_api_key_is_never_sent_to_the_browser(monkeypatch):
    """The model form's key field starts empty (the key stays on the server); empty keeps the key."""
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_API_KEY", "sk-never-in-the-page-4242")
    at = AppTest.from_file(MAIN, default_timeout=300).run()
    assert not at.exception
    key_field = next(t for t in at.sidebar.text_input if t.label == "Api key")
    assert key_field.value == "" and "sk-never-in-the-page" not in str(at.sidebar)
    assert at.session_state["model_spec"].api_key == "sk-never-in-the-page-4242"


def test_regenerate_keeps_the_old_answer_one_pager_step_away(app):
    send(app, "Which city is the capital of France?")
    session = app.session_state["chat_session"]
    first = session.messages[1]
    app.button(key=f"chat_regenerate_{first.id}").click().run()
    assert not app.exception and session.history.node_count() == 3
    second = session.messages[1]
    assert second.id != first.id and session.history.siblings(first.id) == [first.id, second.id]
    assert "2/2" in [m.value for m in app.chat_message[1].markdown]  # the pager under the new answer
    app.button(key=f"chat_prev_{second.id}").click().run()
    assert [m.id for m in session.messages] == [session.messages[0].id, first.id]
    assert "1/2" in [m.value for m in app.chat_message[1].markdown]


def test_edit_in_place_answers_the_new_text_and_keeps_the_old(app):
    send(app, "Which city is the capital of France?")
    session = app.session_state["chat_session"]
    asked = session.messages[0]
    app.button(key=f"chat_edit_{asked.id}").click().run()
    app.text_area(key=f"chat_edit_text_{asked.id}").set_value("And of Germany?").run()
    app.button(key=f"chat_edit_send_{asked.id}").click().run()
    assert not app.exception
    assert [m.role.value for m in session.messages] == ["user", "assistant"]
    assert session.messages[0].content == "And of Germany?"
    assert session.history.siblings(asked.id) == [asked.id, session.messages[0].id]
    assert conversation(app)[0][1] == "And of Germany?"


def test_branch_opens_a_new_conversation_holding_the_thread(app):
    send(app, "Which city is the capital of France?")
    session = app.session_state["chat_session"]
    original, answer = session.history, session.messages[1]
    app.button(key=f"chat_fork_{answer.id}").click().run()
    assert not app.exception
    assert session.history is not original and session.history.title.endswith("(branch)")
    assert [m.id for m in session.messages] == [m.id for m in original.snapshot()]
    assert app.query_params["c"] == [session.history.id] or app.query_params["c"] == session.history.id
