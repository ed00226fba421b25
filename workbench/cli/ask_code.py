"""``python -m workbench ask --mode code``: one prompt answered by the code interpreter, in a fresh kernel.

Without ``--json`` the model's text and each run's output stream to stdout; notices (and the warning
when the code cannot be sandboxed) go to stderr.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.chat_model import ChatModel
from workbench.cli.exec import sandbox_warning
from workbench.cli.options import settings_from_args
from workbench.conversation import Conversation
from workbench.kernels import open_kernel
from workbench.messages import Message, Role
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import DEFAULT_SYSTEM_PROMPT
from workbench.modes.events import MessageDone, Notice, TextDelta


def ask_with_code(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO, history: Conversation
) -> list[Message]:
    """Answer one prompt in code mode, in a fresh kernel; return the transcript.

    Without ``--json`` the model's text and each run's output are printed as they come.

    Raises:
        WorkbenchError: If the kernel cannot start or the model fails.
    """
    settings = settings_from_args(model, args)
    code_settings = CodeSettings(
        max_rounds=args.max_rounds,
        timeout=args.timeout,
        force_code=True if args.force_code is None else args.force_code,
    )
    with open_kernel() as kernel:
        warning = sandbox_warning(kernel)
        if warning:
            print(warning, file=err, flush=True)
        session = CodeSession(
            model,
            kernel,
            system_prompt=args.system or DEFAULT_SYSTEM_PROMPT,
            settings=settings,
            code_settings=code_settings,
            history=history,
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
