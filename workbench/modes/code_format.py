"""How code turns are written and read: the system prompt, fenced python blocks, observations.

A code turn is an assistant message with ``interpreter`` set. Two shapes exist, one per
dialect family, and :func:`split_code` reads both:

- ChatGLM3 (its dialect parses ``<|assistant|>interpreter``): the prose in ``content`` and the code
  in ``code``; the dialect renders the fenced block and wraps the observation in a
  ```` ```result ```` block.
- Every other model: the fenced ```` ```python ```` block stays in ``content``, as the model wrote
  it, so the chat template shows the model its own code; nothing after the block is kept.

The observation is ``Message(role=OBSERVATION, name="interpreter")`` holding the run's text for
the model (:meth:`kernel.Execution.for_model`), its images, and in ``execution`` everything the page
shows of the run (:class:`~workbench.execution_record.ExecutionRecord`), so a saved conversation can
be drawn again from its messages alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from kernel import Execution
from kernel.outputs import image_problem
from workbench.dialects import Dialect
from workbench.execution_record import ExecutionRecord, OutputRecord
from workbench.messages import INTERPRETER, Message, Role

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant with a Python interpreter (a Jupyter kernel with numpy, pandas and "
    "matplotlib). When a question needs computing, data or a plot, reply with one ```python code block "
    "and nothing after it. The code runs and you see its output; print the values you need. Then answer "
    "the user in plain words."
)

#: The opening fence the page and the CLI show when the first reply is forced to be code.
CODE_FENCE = "```python\n"

# An opening fence for Python (```python, ```py, ```python3, ```ipython); plain ``` is not code to run.
_OPEN = re.compile(r"```[ \t]*(?:python3?|py|ipython3?)[ \t]*\n", re.IGNORECASE)
_CLOSE = "```"


@dataclass(frozen=True)
class CodeBlock:
    """A fenced python block found in a text.

    Attributes:
        code: The code between the fences.
        start: Index of the opening fence.
        end: Index just after the closing fence (the text's length when unclosed).
        closed: Whether the closing fence was written.
    """

    code: str
    start: int
    end: int
    closed: bool


def find_code_block(text: str) -> CodeBlock | None:
    """Return the first fenced python block of ``text`` (closed or not), or None."""
    opening = _OPEN.search(text)
    if opening is None:
        return None
    close = text.find(_CLOSE, opening.end())
    body = text[opening.end() : close if close != -1 else len(text)]
    end = close + len(_CLOSE) if close != -1 else len(text)
    return CodeBlock(body.rstrip(), opening.start(), end, close != -1)


def complete_block_end(text: str) -> int | None:
    """Index just after the closing fence of the first complete python block, or None."""
    block = find_code_block(text)
    return block.end if block is not None and block.closed else None


def code_prefix(dialect: Dialect) -> str:
    """The text that forces a reply to open a python block, in the dialect's own format."""
    return dialect.code_turn_header + CODE_FENCE


def mark_code_turn(message: Message) -> Message:
    """Mark an assistant message as a code turn if it holds python code (in place; returned).

    A message the dialect already marked (ChatGLM3) is left as it is. Otherwise the first fenced
    python block is found in the content, anything after it is dropped (the model's guesses at the
    output), and an unclosed block is closed. A block with no code in it is removed.
    """
    if message.interpreter:
        return message
    block = find_code_block(message.content)
    if block is None:
        return message
    if not block.code.strip():
        message.content = (message.content[: block.start] + message.content[block.end :]).strip()
        return message
    message.content = message.content[: block.end] + ("" if block.closed else "\n" + _CLOSE)
    message.interpreter = True
    return message


def split_code(message: Message) -> tuple[str, str | None]:
    """The prose and the code of an assistant message; the code is None for a plain answer."""
    if not message.interpreter:
        return message.content, None
    if message.code is not None:
        return message.content, message.code
    block = find_code_block(message.content)
    if block is None:
        return message.content, None
    return message.content[: block.start].strip(), block.code


def execution_record(execution: Execution) -> ExecutionRecord:
    """Copy what a page shows of a kernel run into the transcript's own type."""
    outputs = []
    for output in execution.outputs:
        html = output.data.get("text/html")
        outputs.append(
            OutputRecord(
                kind=output.kind,
                name=output.name,
                text=output.text,
                html=html if isinstance(html, str) else None,
                png=output.image,
            )
        )
    error = execution.error
    return ExecutionRecord(
        outputs=outputs,
        error_name=error.name if error is not None else None,
        error_value=error.value if error is not None else "",
        timed_out=execution.timed_out,
        restarted=execution.restarted,
        note=execution.note,
        duration=execution.duration,
        execution_count=execution.execution_count,
    )


def observation_message(execution: Execution, max_chars: int) -> Message:
    """The interpreter's observation of one run: text for the model (capped), images, the full record."""
    return Message(
        Role.OBSERVATION,
        execution.for_model(max_chars=max_chars),
        name=INTERPRETER,
        images=list(execution.images),
        error=bool(execution.error or execution.timed_out),
        execution=execution_record(execution),
    )


def output_bytes(message: Message) -> int:
    """Bytes a message's outputs take when saved: its images, and its run's text, HTML and images."""
    total = sum(len(image) for image in message.images)
    if message.execution is not None:
        for output in message.execution.outputs:
            total += len(output.text) + len(output.html or "") + len(output.png or b"")
    return total


def fit_output_cap(message: Message, room: int, cap: int) -> Message:
    """Trim an observation whose outputs do not fit in ``room`` bytes, the rest of the conversation's cap.

    Images go first, then text and HTML are cut to share what room is left; a note says so, to
    the model (in the content) and on the page (in the run's note). A message that fits is
    returned as it is.

    Args:
        message: The observation, changed in place.
        room: Bytes the conversation may still store.
        cap: The conversation's whole cap, for the note.
    """
    if message.execution is None or output_bytes(message) <= room:
        return message
    record = message.execution
    room = max(room, 0)
    message.images = []
    for output in record.outputs:
        if output.png is not None:
            output.png, output.text = None, "[image not kept: the conversation's output cap was reached]"
    texts = [output for output in record.outputs if output.text or output.html]
    share, cut = room // max(len(texts), 1), False
    for output in texts:
        if len(output.text) + len(output.html or "") > share:
            output.html, output.text, cut = None, output.text[:share], True
    note = (
        f"This conversation's saved outputs reached their cap of {cap // (1024 * 1024)} MiB, so this run's "
        f"images were not kept{' and its text was cut' if cut else ''}. Start a new conversation to keep more."
    )
    record.note = f"{record.note} {note}".strip()
    message.content = f"{message.content}\n[{note}]"
    return message


def drop_unshowable_images(messages: list[Message]) -> list[Message]:
    """Replace every image no page could draw (a decompression bomb, junk bytes) by a note, in place.

    For messages that did not come from this app's kernel (an imported conversation): the kernel's
    own outputs are checked as they arrive (:meth:`kernel.outputs.OutputCollector`).
    """
    for message in messages:
        notes = [f"[image dropped: {problem}]" for problem in map(image_problem, message.images) if problem]
        if notes:
            message.images = [image for image in message.images if not image_problem(image)]
            message.content = "\n".join([message.content, *notes]).strip()
        for output in message.execution.outputs if message.execution is not None else []:
            problem = image_problem(output.png) if output.png is not None else ""
            if problem:
                output.png, output.text = None, f"[image dropped: {problem}]"
    return messages


#: The sandboxed page's own policy: inline styles and data: images only, nothing fetched, nothing run.
_FRAME_POLICY = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data:\">"
)


def sandboxed_html(html: str, row_px: int = 26, max_px: int = 420) -> str:
    """An ``<iframe>`` showing untrusted HTML (a pandas table from kernel code) with no power over the page.

    ``sandbox=""`` gives the frame a unique origin and no scripts, forms, popups or top navigation;
    a Content-Security-Policy inside it stops every fetch (an ``<img src=http://...>`` would leak
    data through the user's browser). The height follows the number of table rows, up to ``max_px``.
    """
    rows = html.count("<tr")
    height = min(max(rows, 1) * row_px + 24, max_px)
    document = _FRAME_POLICY + html
    return (
        f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{escape(document, quote=True)}" '
        f'style="width:100%;height:{height}px;border:none"></iframe>'
    )


def not_run_message(reason: str) -> Message:
    """An observation saying why a code block was not run (keeps the conversation well formed)."""
    return Message(
        Role.OBSERVATION, f"[not run: {reason}]", name=INTERPRETER, error=True, metadata={"not_run": True}
    )


def worked_example() -> list[Message]:
    """A short solved exchange shown before the conversation: small models copy its shape."""
    return [
        Message(Role.USER, "What is 3**4?"),
        Message(Role.ASSISTANT, f"{CODE_FENCE}print(3**4)\n{_CLOSE}", interpreter=True),
        Message(Role.OBSERVATION, "81", name=INTERPRETER),
        Message(Role.ASSISTANT, "3**4 is 81."),
    ]


def context_lines(files: list[str], notes: list[str], max_names: int = 30) -> str:
    """Lines appended to the system prompt: the work folder's files and what happened to the kernel."""
    lines = []
    if files:
        shown = ", ".join(files[:max_names])
        more = f" and {len(files) - max_names} more" if len(files) > max_names else ""
        lines.append(f"Files in the current folder (open them by name): {shown}{more}.")
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)
