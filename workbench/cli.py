"""The command line: ``python -m workbench chat | ask | exec``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from workbench.chat_model import ChatModel
from workbench.conversation import Message, Role, transcript_to_json
from workbench.errors import USER_ERRORS, WorkbenchError
from workbench.models.generation import SamplingSettings
from workbench.models.spec import DEVICES, DTYPES, ModelSpec
from workbench.modes.chat import ChatSession

# Extra modes of `ask` register here: name -> module whose run_ask(model, args, prompt, out=, err=) -> messages.
AskRunner = Callable[..., list[Message]]
ASK_MODES: dict[str, str] = {
    "chat": "",
    "tool": "workbench.modes.tool_cli",
    "code": "workbench.modes.code_cli",
}


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="embedded (default), a Hugging Face model folder or a .gguf file")
    parser.add_argument("--device", choices=DEVICES, help="where to run the model (default auto)")
    parser.add_argument("--dtype", choices=DTYPES, help="precision (default auto)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="allow the model folder's own code to run (ChatGLM3 needs it)",
    )
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-new-tokens", type=int, help="upper bound on generated tokens")
    parser.add_argument("--temperature", type=float, help="0 for greedy decoding")
    parser.add_argument("--top-p", type=float, help="nucleus sampling mass")
    parser.add_argument("--repetition-penalty", type=float, help="1.0 for none")
    parser.add_argument("--seed", type=int, help="sampling seed")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m workbench``."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench", description="Workbench: a local LLM workbench."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="chat in the terminal ('clear' empties the history, 'stop' exits)")
    _add_model_options(chat)
    ask = sub.add_parser("ask", help="answer one prompt and exit")
    _add_model_options(ask)
    ask.add_argument("prompt", help="the user's message ('-' reads standard input)")
    ask.add_argument("--json", action="store_true", help='print the transcript as {"messages": [...]}')
    ask.add_argument("--mode", choices=sorted(ASK_MODES), default="chat", help="chat (default), tool or code")
    ask.add_argument(
        "--tools-path",
        action="append",
        default=[],
        metavar="DIR",
        help="tool mode: a folder of tool files (repeatable; adds to WORKBENCH_TOOLS_PATH)",
    )
    ask.add_argument(
        "--tool-choice",
        choices=("auto", "required", "none"),
        default=None,
        help="tool mode: whether the model may, must or must not call a tool "
        "(default: required for the embedded model, which never calls on its own; auto for others)",
    )
    ask.add_argument("--max-rounds", type=int, default=5, help="tool/code mode: model turns per message")
    ask.add_argument("--timeout", type=float, default=30.0, help="code mode: seconds per code run")
    ask.add_argument(
        "--force-code",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="code mode: make the first reply open a python block (default: on)",
    )
    run = sub.add_parser("exec", help="run Python in a fresh sandboxed kernel and print its outputs")
    run.add_argument("file", help="a .py file, or '-' for standard input")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds before the run is interrupted")
    run.add_argument("--json", action="store_true", help="print the execution as JSON")
    return parser


def load_chat_model(args: argparse.Namespace, err: TextIO) -> ChatModel:
    """Load the model the options name, reporting progress on ``err``."""
    spec = ModelSpec.from_env(
        args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code
    )
    return ChatModel.load(spec, progress=lambda msg: print(f"[workbench] {msg}", file=err, flush=True))


def settings_from_args(model: ChatModel, args: argparse.Namespace) -> SamplingSettings:
    """The model's default sampling settings, with the options given on the command line."""
    return model.default_settings().with_(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def session_for(model: ChatModel, args: argparse.Namespace) -> ChatSession:
    """A chat session with the options' system prompt and sampling settings."""
    return ChatSession(model, system_prompt=args.system or "", settings=settings_from_args(model, args))


def run_chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """The terminal chat loop."""
    session = session_for(load_chat_model(args, err), args)
    print("Workbench chat. Type 'clear' to empty the history, 'stop' or Ctrl-D to exit.", file=out)
    while True:
        print("\nUser: ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            print(file=out)
            return 0
        text = line.strip()
        if text == "stop":
            return 0
        if text == "clear":
            session.clear()
            print("(history cleared)", file=out)
            continue
        if not text:
            continue
        try:
            turn = session.send(text)
            print("Assistant: ", end="", file=out, flush=True)
            try:
                for chunk in turn:
                    print(chunk, end="", file=out, flush=True)
            except KeyboardInterrupt:
                turn.stop()
                print(" [stopped]", end="", file=out)
            finally:
                turn.close()
            print(file=out)
        except WorkbenchError as exc:
            print(f"\nError: {exc}", file=err)


def run_ask(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """One prompt, one answer (or a transcript with ``--json``)."""
    prompt = stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise WorkbenchError("The prompt is empty; pass some text (or '-' to read standard input).")
    model = load_chat_model(args, err)
    if args.mode == "chat":
        session = session_for(model, args)
        with session.send(prompt) as turn:
            for chunk in turn:
                if not args.json:
                    print(chunk, end="", file=out, flush=True)
        messages = session.conversation()
        if not args.json:
            print(file=out)
    else:
        import importlib

        runner: AskRunner = importlib.import_module(ASK_MODES[args.mode]).run_ask
        messages = runner(model, args, prompt, out=out, err=err)
    if args.json:
        print(transcript_to_json(messages, include_images=False), file=out)
    return 0


def run_exec(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run code in a fresh sandboxed kernel (see ``workbench.modes.code_cli``)."""
    from workbench.modes.code_cli import run_exec as runner

    return runner(args, stdin, out, err)


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Entry point; returns the exit status (1 for a user error, 130 for Ctrl-C).

    The streams default to ``sys.stdin``/``sys.stdout``/``sys.stderr`` as they are at call time, so a
    caller that redirects them (``contextlib.redirect_stdout``, pytest's capsys) gets the output.
    """
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    handlers = {"chat": run_chat, "ask": run_ask, "exec": run_exec}
    try:
        return handlers[args.command](args, stdin, out, err)
    except USER_ERRORS as exc:
        print(f"Error: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=err)
        return 130


__all__ = ["Role", "main"]
