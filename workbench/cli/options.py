"""Options shared by the commands that run a model (``chat`` and ``ask``) and what they build.

The model options become a :class:`ModelSpec` in :func:`spec_from_args` only: a new model option is
one argument in :func:`add_model_options` and one keyword there.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from workbench.models.spec import DEVICES, DTYPES, ModelSpec

if TYPE_CHECKING:  # the model stack (torch) is imported only by the commands that load a model
    from workbench.chat_model import ChatModel
    from workbench.models.generation import SamplingSettings
    from workbench.modes.chat import ChatSession


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose the model: ``--model``, ``--device``, ``--dtype``, ``--trust-remote-code``."""
    parser.add_argument("--model", help="embedded (default), a Hugging Face model folder or a .gguf file")
    parser.add_argument("--device", choices=DEVICES, help="where to run the model (default auto)")
    parser.add_argument("--dtype", choices=DTYPES, help="precision (default auto)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="allow the model folder's own code to run (ChatGLM3 needs it)",
    )


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
    return ModelSpec.from_env(
        args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code
    )


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
