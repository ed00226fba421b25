"""Options shared by the commands that run a model (``chat``, ``ask``, ``serve``) and what they build.

The model options are made from :data:`~workbench.models.spec.SPEC_OPTIONS`, the table that also
builds the sidebar's form and reads the environment: a new model option is one entry there.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Collection
from typing import TYPE_CHECKING, TextIO

from workbench.models.spec import SPEC_OPTIONS, ModelSpec, convert_option

if TYPE_CHECKING:  # the model stack (torch) is imported only by the commands that load a model
    from workbench.chat_model import ChatModel
    from workbench.models.generation import SamplingSettings
    from workbench.modes.chat import ChatSession


def add_model_options(parser: argparse.ArgumentParser, exclude: Collection[str] = ()) -> None:
    """Add one option per ModelSpec field (``--model``, ``--backend``, ``--device``, ...).

    Every option defaults to None (not given), so the environment and then the spec's defaults fill it.

    Args:
        parser: The command's parser.
        exclude: ModelSpec fields left out (``serve`` uses ``--api-key`` for its own key).
    """
    for option in SPEC_OPTIONS:
        if option.field in exclude:
            continue
        default = ModelSpec.__dataclass_fields__[option.field].default
        if isinstance(default, bool):
            parser.add_argument(
                option.flag, dest=option.field, action="store_true", default=None, help=option.help
            )
        elif option.choices is not None:
            parser.add_argument(option.flag, dest=option.field, choices=option.choices, help=option.help)
        else:
            parser.add_argument(
                option.flag,
                dest=option.field,
                metavar=option.flag.lstrip("-").upper(),
                type=functools.partial(convert_option, option.field),
                help=option.help,
            )


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (seconds, limits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def check_generation_options(args: argparse.Namespace) -> None:
    """Check the sampling options given, before any model loads (the checks are ``SamplingSettings``'s).

    Raises:
        SettingsError: Naming the option's setting, its value and the allowed range.
    """
    from workbench.models.generation import SamplingSettings  # no torch: generation.py is light

    SamplingSettings().with_(
        **{name: getattr(args, name, None) for name in SAMPLING_FIELDS},
    )


SAMPLING_FIELDS = ("temperature", "top_p", "max_new_tokens", "repetition_penalty", "seed")
"""The sampling options, by their ``SamplingSettings`` field (and ``argparse`` dest) name."""


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Add the system prompt and the sampling options (unset ones keep the model's defaults)."""
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-new-tokens", type=int, help="upper bound on generated tokens")
    parser.add_argument("--temperature", type=float, help="0 for greedy decoding")
    parser.add_argument("--top-p", type=float, help="nucleus sampling mass")
    parser.add_argument("--repetition-penalty", type=float, help="1.0 for none")
    parser.add_argument("--seed", type=int, help="sampling seed")


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The model the options name; options not given come from the environment (see ``ModelSpec.from_env``)."""
    values = {option.field: getattr(args, option.field, None) for option in SPEC_OPTIONS}
    return ModelSpec.from_env(values.pop("source"), **values)


def load_chat_model(args: argparse.Namespace, err: TextIO) -> ChatModel:
    """Load the model the options name, reporting progress on ``err``.

    Raises:
        WorkbenchError: If the model cannot be loaded (the message says what to do).
    """
    from workbench.chat_model import ChatModel

    return ChatModel.load(
        spec_from_args(args), progress=lambda msg: print(f"[workbench] {msg}", file=err, flush=True)
    )


def settings_from_args(model: ChatModel, args: argparse.Namespace) -> SamplingSettings:
    """The model's default sampling settings, with the options given on the command line."""
    return model.default_settings().with_(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def chat_session_from_args(model: ChatModel, args: argparse.Namespace) -> ChatSession:
    """A chat session with the options' system prompt and sampling settings."""
    from workbench.modes.chat import ChatSession

    return ChatSession(model, system_prompt=args.system or "", settings=settings_from_args(model, args))


def add_tool_selection_options(parser: argparse.ArgumentParser) -> None:
    """``--mcp-config FILE``, ``--tools NAME[,NAME...]`` and ``--yes`` (tool mode, ``tools`` and ``serve``)."""
    parser.add_argument(
        "--mcp-config",
        metavar="FILE",
        help="MCP servers whose tools join the registry, in Claude Desktop's mcpServers format "
        "(default: env WORKBENCH_MCP_CONFIG)",
    )
    parser.add_argument(
        "--tools",
        dest="only_tools",
        metavar="NAME[,NAME...]",
        help="offer only these tools (small models do better with few)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help='allow calls to MCP servers configured with "confirm": true without asking',
    )


def selected_tools(args: argparse.Namespace, names: Collection[str]) -> set[str] | None:
    """The tools ``--tools`` names (None: every tool), checked against those loaded.

    Raises:
        SettingsError: If a name is not a loaded tool (the message lists those that are).
    """
    raw = getattr(args, "only_tools", None)
    if not raw:
        return None
    from workbench.errors import ToolDefinitionError

    wanted = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ToolDefinitionError(
            f"--tools names {', '.join(unknown)}, which no loaded tool is called; the tools are: "
            f"{', '.join(names) or '(none)'}. Run 'python -m workbench tools' to see them and their state."
        )
    return set(wanted)
