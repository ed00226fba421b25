"""The Code interpreter page under Streamlit's AppTest: the real embedded model and the real sandboxed kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kernel.errors import KernelGatewayError

pytestmark = [pytest.mark.model, pytest.mark.kernel]

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The app switched to the Code page, greedy and short replies; its kernel is shut down afterwards."""
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_MAX_KERNELS", "2")
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page("pages/code.py").run()
    assert not at.exception, at.exception
    at.sidebar.slider(key="code_temperature").set_value(0.0)
    at.sidebar.number_input(key="code_max_new").set_value(40)
    at.sidebar.number_input(key="code_max_rounds").set_value(1)
    at.run()
    yield at
    session = at.session_state["code_session"]
    session.close()


def run_cell(at: AppTest, code: str) -> AppTest:
    at.text_area(key="code_cell").set_value(code)
    at.button(key="code_run").click()
    return at.run()


def test_page_loads_with_a_kernel_indicator(app: AppTest) -> None:
    assert [t.value for t in app.title] == ["Code interpreter"]
    assert "**Kernel: not started · sandboxed**" in [m.value for m in app.sidebar.markdown]
    assert not app.sidebar.warning, "the sandbox works here, so no NOT sandboxed warning"
    assert not app.chat_message and not app.error
    # Issue 24: bare attribute docstrings were printed on the page by Streamlit's magic.
    assert not [m.value for m in app.main.markdown if "Interrupt and Restart wait" in m.value]


def test_a_user_cell_shows_its_output_and_the_kernel_is_idle(app: AppTest) -> None:
    run_cell(app, "x = 6 * 7\nprint('the answer is', x)\nx")
    assert not app.exception and not app.error
    texts = [c.value for c in app.code]
    assert "x = 6 * 7\nprint('the answer is', x)\nx" in texts
    assert "the answer is 42" in texts and "42" in texts
    assert "**Kernel: idle · sandboxed**" in [m.value for m in app.sidebar.markdown]
    run_cell(app, "1/0")
    assert any("ZeroDivisionError" in e.value for e in app.error), "errors show in red"
    assert [r.source for r in app.session_state["code_session"].runs] == ["user", "user"]


def test_restart_loses_the_state_and_says_so(app: AppTest) -> None:
    run_cell(app, "y = 1")
    app.sidebar.button(key="code_restart").click().run()
    assert any("restarted" in i.value and "gone" in i.value for i in app.sidebar.info)
    run_cell(app, "y")
    assert any("NameError" in e.value for e in app.error)


def test_the_model_answers_with_code_that_runs(app: AppTest) -> None:
    app.chat_input(key="code_input").set_value("What is 2**20?").run()
    assert not app.exception
    session = app.session_state["code_session"]
    assert [m.role.value for m in session.messages][:3] == ["user", "assistant", "observation"]
    assert session.messages[2].name == "interpreter"
    names = [m.name for m in app.chat_message]
    assert names[:3] == ["user", "assistant", "interpreter"]
    assert session.messages[1].interpreter is True


def elements(at: AppTest, kind: str) -> list[object]:
    return [element for element in at.main if type(element).__name__ == kind]


def test_plots_tables_and_written_files_show_up(app: AppTest) -> None:
    run_cell(
        app,
        "import matplotlib.pyplot as plt\nimport pandas as pd\nplt.plot([1, 4, 9])\n"
        "display(pd.DataFrame({'a': [1, 2]}))\nopen('out.txt', 'w').write('hello')",
    )
    assert not app.exception and not app.error
    assert len(elements(app, "Image")) == 1, "the plot shows without plt.show()"
    frames = [m.value for m in app.main.markdown if "<iframe" in m.value]
    assert len(frames) == 1 and 'sandbox=""' in frames[0], (
        "the DataFrame shows as a table, in a sandboxed frame"
    )
    assert not elements(app, "Html"), "no kernel HTML goes into the page itself"
    downloads = [b.label for b in app.sidebar.download_button]
    assert downloads == ["Download all as zip (1 file, 5 bytes)", "out.txt · 5 bytes"]
    session = app.session_state["code_session"]
    session.upload("data.csv", b"a,b\n1,2\n")  # what the uploader does (AppTest cannot upload)
    app.run()
    assert [b.label for b in app.sidebar.download_button] == [
        "Download all as zip (2 files, 13 bytes)",
        "data.csv · 8 bytes",
        "out.txt · 5 bytes",
    ]


def test_many_files_collapse_into_folders_and_a_zip_holds_them_all(app: AppTest) -> None:
    """Issue 11: a cell writing 300 files stacked 302 download buttons in the sidebar."""
    run_cell(
        app,
        "import os\nos.makedirs('data/deep', exist_ok=True)\n"
        "for i in range(250): open(f'data/f{i:03}.txt', 'w').write('x')\n"
        "open('data/deep/inner.txt', 'w').write('z')\n"
        "for i in range(49): open(f'r{i:02}.txt', 'w').write('yy')",
    )
    assert not app.exception and not app.error
    labels = [b.label for b in app.sidebar.download_button]
    assert labels[0] == "Download all as zip (300 files, 349 bytes)"
    assert len(labels) == 1 + 20 + 20, len(labels)  # the zip, 20 top-level files, 20 in the folder
    assert labels[1] == "r00.txt · 2 bytes" and labels[21] == "data/deep/inner.txt · 1 bytes".replace(
        "data/", ""
    )
    [folder] = [e for e in app.sidebar.expander if e.label.startswith("data/")]
    assert folder.label == "data/ · 251 files"
    captions = [c.value for c in app.sidebar.caption]
    assert "… and 29 more: download all as a zip above." in captions
    assert "… and 231 more: download all as a zip above." in captions
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(app.session_state["code_session"].zip_files()))
    names = archive.namelist()
    assert len(names) == 300 and "data/deep/inner.txt" in names and archive.read("r00.txt") == b"yy"


def test_interrupt_shows_the_interrupted_run_and_an_idle_kernel_in_the_same_rerun(app: AppTest) -> None:
    """Issue 11: after Interrupt the page said "busy" and lacked the run until the next action."""
    run_cell(app, "1")  # the kernel is started
    session = app.session_state["code_session"]
    running = session.start_user_cell("import time\ntime.sleep(100)")  # as the Run button does
    assert not running.done.wait(1.0)
    app.sidebar.button(key="code_interrupt").click().run()
    assert running.done.is_set()
    assert "**Kernel: idle · sandboxed**" in [m.value for m in app.sidebar.markdown]
    assert "Interrupted the running code." in [i.value for i in app.sidebar.info]
    assert any("KeyboardInterrupt" in e.value for e in app.error), [e.value for e in app.error]
    assert "import time\ntime.sleep(100)" in [c.value for c in app.code]


def test_interrupt_that_cannot_reach_the_gateway_is_an_error_not_a_crash(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: Interrupt is a REST call to a Kernel Gateway, which may be gone; the page says so."""
    run_cell(app, "1")
    session = app.session_state["code_session"]
    running = session.start_user_cell("import time\ntime.sleep(100)")
    assert not running.done.wait(1.0)
    kernel = session.kernel
    real_interrupt = kernel.interrupt

    def unreachable() -> None:
        raise KernelGatewayError(
            "The Kernel Gateway at http://127.0.0.1:9 cannot be reached (Connection refused)."
        )

    monkeypatch.setattr(kernel, "interrupt", unreachable)
    app.sidebar.button(key="code_interrupt").click().run()
    assert not app.exception, app.exception
    assert any("cannot be reached" in e.value for e in app.sidebar.error), [
        e.value for e in app.sidebar.error
    ]
    real_interrupt()
    assert running.done.wait(10)


def test_restart_during_a_run_shows_it_ended_in_the_same_rerun(app: AppTest) -> None:
    run_cell(app, "1")
    session = app.session_state["code_session"]
    running = session.start_user_cell("import time\ntime.sleep(100)")
    assert not running.done.wait(1.0)
    app.sidebar.button(key="code_restart").click().run()
    assert running.done.is_set()
    assert "**Kernel: idle · sandboxed**" in [m.value for m in app.sidebar.markdown]
    assert any("restarted" in i.value for i in app.sidebar.info)
    assert "import time\ntime.sleep(100)" in [c.value for c in app.code]


def test_an_image_no_page_can_draw_becomes_a_note(app: AppTest) -> None:
    """Issue 24: a junk PNG or a decompression bomb in a conversation must not break the page."""
    import io

    from PIL import Image

    from workbench.execution_record import ExecutionRecord, OutputRecord
    from workbench.messages import INTERPRETER, Message, Role

    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    junk = b"\x89PNG\r\n\x1a\n" + b"junk" * 100
    record = ExecutionRecord(
        outputs=[OutputRecord("display", png=junk), OutputRecord("display", png=buffer.getvalue())]
    )
    session = app.session_state["code_session"]
    session.history.append(Message(Role.USER, "Show it"))
    session.history.append(Message(Role.OBSERVATION, "[image 1]", name=INTERPRETER, execution=record))
    app.run()
    assert not app.exception, app.exception
    assert sum("Image not shown" in w.value for w in app.main.warning) == 2
    app.run()  # and on every rerun
    assert not app.exception
