"""The command line of code mode: ``ask --mode code`` and ``exec``.

``exec`` exit statuses: 0 the code ran to the end; 1 it raised an exception; 124 it ran past
``--timeout`` and was interrupted; 125 the kernel died (or was restarted) while it ran. Errors
before the code runs (an unreadable file, no kernel) exit with 1 and say what to do.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kernel import Execution, KernelSession
from kernel.outputs import image_size
from workbench.chat_model import ChatModel
from workbench.cli import settings_from_args
from workbench.conversation import Message, Role
from workbench.errors import WorkbenchError
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import DEFAULT_SYSTEM_PROMPT
from workbench.modes.events import MessageDone, Notice, TextDelta

EXIT_OK, EXIT_ERROR, EXIT_TIMEOUT, EXIT_DIED = 0, 1, 124, 125


def sandbox_warning(kernel: KernelSession) -> str:
    """The warning printed when code runs without the sandbox, or "" when it is sandboxed."""
    if kernel.sandboxed:
        return ""
    reason = getattr(kernel, "sandbox_reason", "") or "bubblewrap cannot run here"
    return (
        f"Warning: the code runs NOT sandboxed ({reason}): it can read and change your files and use "
        "the network. Install bubblewrap and enable user namespaces to sandbox it."
    )


def run_ask(
    model: ChatModel,
    args: argparse.Namespace,
    prompt: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> list[Message]:
    """Answer one prompt in code mode, in a fresh kernel; return the transcript.

    Without ``--json`` the model's text and each run's output are printed as they come.

    Raises:
        WorkbenchError: If the kernel cannot start or the model fails.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    settings = settings_from_args(model, args)
    code_settings = CodeSettings(
        max_rounds=args.max_rounds,
        timeout=args.timeout,
        force_code=True if args.force_code is None else args.force_code,
    )
    with KernelSession() as kernel:
        warning = sandbox_warning(kernel)
        if warning:
            print(warning, file=err, flush=True)
        session = CodeSession(
            model,
            kernel,
            system_prompt=args.system or DEFAULT_SYSTEM_PROMPT,
            settings=settings,
            code_settings=code_settings,
        )
        with session.send(prompt) as turn:
            for event in turn:
                if isinstance(event, Notice):
                    print(f"\n[workbench] {event.text}", file=err, flush=True)
                elif args.json:
                    continue
                elif isinstance(event, TextDelta):
                    print(event.text, end="", file=out, flush=True)
                elif isinstance(event, MessageDone):
                    _print_done(event.message, out)
        return session.transcript()


def _print_done(message: Message, out: TextIO) -> None:
    if message.role is Role.OBSERVATION:
        images = (
            f" ({len(message.images)} image{'s' if len(message.images) != 1 else ''})"
            if message.images
            else ""
        )
        print(f"[interpreter{images}]\n{message.content}\n", file=out, flush=True)
    else:
        print("\n", file=out, flush=True)


def run_exec(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run a file (or standard input) in a fresh sandboxed kernel and print what it produced.

    Returns:
        The exit status (see the module docstring).

    Raises:
        WorkbenchError: If the file cannot be read or the kernel cannot start.
    """
    code = _read_code(args.file, stdin)
    with KernelSession() as kernel:
        warning = sandbox_warning(kernel)
        if warning:
            print(warning, file=err, flush=True)
        execution = kernel.execute(code, timeout=args.timeout)
        sandboxed = kernel.sandboxed
    if args.json:
        print(json.dumps(execution_to_dict(execution, sandboxed), indent=2, ensure_ascii=False), file=out)
    else:
        print_execution(execution, out, err)
    return exit_status(execution)


def _read_code(name: str, stdin: TextIO) -> str:
    if name == "-":
        return stdin.read()
    path = Path(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(
            f"There is no file {name!r}; give the path of a Python file, or '-' for stdin."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"Cannot read {name!r} ({exc}); give a readable UTF-8 Python file.") from None


def exit_status(execution: Execution) -> int:
    """0 when the code ran to the end, else 124 (time-out), 125 (kernel died) or 1 (an exception)."""
    if execution.timed_out:
        return EXIT_TIMEOUT
    if execution.restarted:
        return EXIT_DIED
    if execution.error is not None:
        return EXIT_ERROR
    return EXIT_OK


def print_execution(execution: Execution, out: TextIO, err: TextIO) -> None:
    """Print the outputs in order: stdout, results and image placeholders on ``out``; the rest on ``err``."""
    image_number = 0
    for output in execution.outputs:
        if output.kind == "error":
            print(output.text, file=err)
        elif output.image is not None:
            image_number += 1
            size = image_size(output.image)
            label = f"{size[0]}x{size[1]}" if size else "unreadable"
            print(
                f"[image {image_number}: {label} PNG, {len(output.image)} bytes; use --json to get it]",
                file=out,
            )
        elif output.kind == "stream":
            print(output.text, end="", file=err if output.name == "stderr" else out)
        elif output.text:
            print(output.text, file=out)
    if execution.note:
        print(f"[workbench] {execution.note}", file=err)
    out.flush()
    err.flush()


def execution_to_dict(execution: Execution, sandboxed: bool) -> dict[str, Any]:
    """The JSON form of an execution printed by ``exec --json`` (images as base64 PNG)."""
    error = execution.error
    return {
        "sandboxed": sandboxed,
        "stdout": execution.stdout,
        "stderr": execution.stderr,
        "result": execution.result,
        "error": None
        if error is None
        else {"name": error.name, "value": error.value, "traceback": error.traceback},
        "timed_out": execution.timed_out,
        "restarted": execution.restarted,
        "note": execution.note,
        "duration": round(execution.duration, 3),
        "image_count": len(execution.images),
        "images": [base64.b64encode(png).decode("ascii") for png in execution.images],
        "exit_status": exit_status(execution),
    }
