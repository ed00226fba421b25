"""Any OpenAI-compatible server as a backend: vLLM, llama.cpp's server, Ollama, or another workbench.

The spec names the server and the model: ``openai:http://host:8000/v1#model-name`` (a plain
``http(s)://...`` source works too; without ``#model`` the server's first model is used). The key comes
from the spec (``--api-key``, ``WORKBENCH_API_KEY``, ``OPENAI_API_KEY``) and is never shown.

A chat server takes messages, not a prompt, so the backend sends ``request.messages`` (converted by
:func:`workbench.openai_messages.to_openai`) and cannot continue a forced prefix
(``Capabilities.prompt_prefix`` is False). What the tool loop asks of a prefix-capable engine is done the
server's way, and the answer is written back in the text form the dialect reads:

* a forced call (prefix = the call opener, a JSON schema of the call) goes out as ``tools`` +
  ``tool_choice`` (``required``, or the one named function); the call that comes back is written as the
  JSON the opener expects. A server that ignores ``tool_choice`` (Ollama) or refuses ``tools`` gets the
  tools in the system prompt (Hermes style) and the call's schema as ``response_format``, from then on;
* free replies with tools send ``tools`` with ``tool_choice: auto``; returned calls are appended as
  ``<tool_call>`` blocks;
* constrained JSON goes out as ``response_format: {"type": "json_schema", ...}`` (the portable form).

Stop closes the HTTP stream, which ends the generation on the server. Every failure becomes a
:class:`~workbench.errors.RemoteModelError` saying what happened and what to do; the text received
before it stays in the stream.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import openai
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workbench.dialects.hermes import DEFAULT_SYSTEM, HermesDialect, tools_section
from workbench.dialects.template import ChatTemplateSource
from workbench.errors import ImageInputError, ModelLoadError, ModelNotFoundError, RemoteModelError
from workbench.messages import Message, Role
from workbench.models.backend import Capabilities, ModelInfo
from workbench.models.generation import (
    FinishReason,
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
)
from workbench.models.loading import ProgressCallback
from workbench.models.remote_calls import RemoteExchange, stopped_answering
from workbench.models.remote_profile import ServerProfile, names_any
from workbench.models.spec import REMOTE_PREFIX, ModelSpec
from workbench.openai_messages import to_openai

#: Seconds to wait for the server's next bytes (a queued request may wait long); env overrides it.
READ_TIMEOUT_S = float(600)
CONNECT_TIMEOUT_S = 10.0
_DEFAULT_CONTEXT = 8192

# The template the dialect renders for logs and token estimates (ChatML with Hermes-style calls): the
# server renders the real prompt with its own template.
_TEMPLATE = """{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content or '' }}{% for c in m.tool_calls or [] %}<tool_call>
{{ c.function | tojson }}
</tool_call>{% endfor %}<|im_end|>
{% endfor -%}
{%- if tools %}<|im_start|>tools
{{ tools | tojson }}<|im_end|>
{% endif -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}"""


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote model lives.

    Attributes:
        base_url: The API's base URL, ending in ``/v1`` (or whatever the server uses).
        model: The model id, or None for the server's first.
    """

    base_url: str
    model: str | None


def parse_remote_source(source: str) -> RemoteTarget:
    """Read ``openai:http://host:port/v1#model`` (the ``openai:`` and the ``#model`` are optional).

    Raises:
        ModelLoadError: If the URL is not an http(s) URL with a host.
    """
    url = source.removeprefix(REMOTE_PREFIX).strip()
    url, _, model = url.partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelLoadError(
            f"{source!r} is not a server URL; write openai:http://HOST:PORT/v1#MODEL (the #MODEL is optional)."
        )
    return RemoteTarget(url.rstrip("/"), model.strip() or None)


def with_model(source: str, model: str) -> str:
    """The source naming another model on the same server."""
    return f"{REMOTE_PREFIX}{parse_remote_source(source).base_url}#{model}"


def server_models(source: str, api_key: str = "") -> list[str]:
    """The ids the server of a remote source lists (``GET /v1/models``), for the sidebar to pick from.

    Raises:
        ModelError: If the server cannot be reached or answers badly.
    """
    target = parse_remote_source(source)
    client = _client(target, api_key, read_timeout=CONNECT_TIMEOUT_S)
    return [card.id for card in _model_cards(client, target) if isinstance(getattr(card, "id", None), str)]


def _client(target: RemoteTarget, api_key: str, read_timeout: float) -> openai.OpenAI:
    key = api_key or os.environ.get("WORKBENCH_API_KEY") or os.environ.get("OPENAI_API_KEY") or "none"
    return openai.OpenAI(
        base_url=target.base_url,
        api_key=key,
        timeout=openai.Timeout(read_timeout, connect=CONNECT_TIMEOUT_S),
        max_retries=0,
    )


def _model_cards(client: openai.OpenAI, target: RemoteTarget) -> list[Any]:
    try:
        raw = client.models.with_raw_response.list()
        if "json" not in raw.headers.get("content-type", ""):
            raise json.JSONDecodeError("not JSON", raw.text[:40], 0)
        return list(raw.parse())
    except Exception as exc:
        raise remote_error(exc, target.base_url, target.model, loading=True) from exc


class RemoteTemplate:
    """A ChatML template with Hermes-style calls: what the dialect renders and parses for a remote model."""

    chat_template = _TEMPLATE

    def __init__(self) -> None:
        self._template = ImmutableSandboxedEnvironment().from_string(_TEMPLATE)

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render a conversation (used for logs and token estimates only)."""
        return self._template.render(
            messages=conversation, tools=tools, add_generation_prompt=add_generation_prompt
        )


class RemoteBackend:
    """A model behind an OpenAI-compatible server (see the module's notes).

    Attributes:
        spec: What was asked for.
        info: The server and model (``device`` is ``remote``, ``loaded_from`` the URL).
        capabilities: Constrained JSON (as ``response_format``), no prompt prefixes.
        target: The server's base URL and the model id.
    """

    # Code is forced as a call of the interpreter tool (see remote_forced), not by a prefix. Whether the
    # server's model reads images is not known up front: they are sent (image_url parts), and a refusal is
    # reported naming the model (:func:`images_refused`).
    capabilities = Capabilities(
        constrained_json=True, prompt_prefix=False, opens_tool_calls=True, forces_code=True, vision=True
    )

    def __init__(self, spec: ModelSpec, client: Any, target: RemoteTarget, info: ModelInfo) -> None:
        self.spec = spec
        self.info = info
        self.target = target
        self.client = client
        self._template = RemoteTemplate()
        # What this server accepts (forced calls, tools, null content), learned as it answers.
        self.profile = ServerProfile()

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return self.target.base_url

    @property
    def model_id(self) -> str:
        """The model's id on the server."""
        return self.target.model or ""

    @classmethod
    def load(cls, spec: ModelSpec, progress: ProgressCallback | None = None) -> RemoteBackend:
        """Connect to the server and check that it serves the model.

        Raises:
            ModelError: If the server cannot be reached, refuses the key, or lacks the model.
        """
        started = time.perf_counter()
        target = parse_remote_source(spec.source)
        if progress:
            progress(f"connecting to {target.base_url}")
        read_timeout = float(os.environ.get("WORKBENCH_REMOTE_TIMEOUT", READ_TIMEOUT_S))
        client = _client(target, spec.api_key, read_timeout)
        cards = _model_cards(client, target)
        ids = [card.id for card in cards if isinstance(getattr(card, "id", None), str)]
        if target.model is None:
            if not ids:
                raise ModelNotFoundError(
                    f"The server at {target.base_url} lists no model; name one: openai:{target.base_url}#MODEL."
                )
            target = RemoteTarget(target.base_url, ids[0])
        elif ids and target.model not in ids:
            raise ModelNotFoundError(
                f"The server at {target.base_url} has no model {target.model!r}; it serves: {', '.join(ids)}."
            )
        card = next((c for c in cards if getattr(c, "id", None) == target.model), None)
        info = ModelInfo(
            label=str(target.model),
            source=spec.source,
            loaded_from=target.base_url,
            backend="remote",
            device="remote",
            dtype="server",
            context_length=_context_length(card),
            load_seconds=round(time.perf_counter() - started, 2),
            architecture=str(getattr(card, "owned_by", None) or "remote"),
        )
        return cls(spec, client, target, info)

    # --- the Backend protocol ------------------------------------------------------------------
    @property
    def template(self) -> ChatTemplateSource:
        """A ChatML template with Hermes-style calls (the server applies the model's real one)."""
        return self._template

    @property
    def context_length(self) -> int:
        """The context window the server reports (8192 if it says nothing)."""
        return self.info.context_length

    def count_tokens(self, text: str) -> int:
        """An estimate (four characters a token): the tokenizer lives on the server."""
        return max(1, len(text) // 4) if text else 0

    def default_settings(self) -> SamplingSettings:
        """The usual defaults (the server's model card may suggest others)."""
        return SamplingSettings()

    def start(self, request: GenerationRequest) -> GenerationStream:
        """Send the request in a worker thread and return the stream of the answer."""
        stream = GenerationStream()
        stream.stats = GenerationStats(prompt_tokens=self.count_tokens(request.prompt))
        thread = threading.Thread(
            target=self._run, args=(request, stream), name="workbench-remote", daemon=True
        )
        thread.start()
        return stream

    # --- the worker ----------------------------------------------------------------------------
    def _run(self, request: GenerationRequest, stream: GenerationStream) -> None:
        stats = stream.stats
        exchange = RemoteExchange(self, request, stream, stats)
        error: BaseException | None = None
        try:
            try:
                exchange.run()
            except openai.APIStatusError as exc:
                if not self._output_images_refused(exc, request, stream):
                    raise
                exchange.run()  # again, the outputs' images as notes (see openai_messages)
            if stream.cancelled:
                stats.finish_reason = FinishReason.CANCELLED
        except Exception as exc:  # reported to the consumer through the stream
            if stream.cancelled:  # closing the HTTP stream on Stop breaks the read: not an error
                stats.finish_reason = FinishReason.CANCELLED
            else:
                error = remote_error(exc, self.target.base_url, self.target.model, received=bool(stream.text))
                if request.images and not stream.text and isinstance(exc, openai.APIStatusError):
                    error = images_refused(error, self.target.model)
                elif isinstance(exc, ImageInputError):  # said in full already (hermes_messages)
                    error = exc
                stats.finish_reason = FinishReason.ERROR
        stats.seconds = round(time.perf_counter() - exchange.started, 3)
        stream.finish(stats, error)

    def _output_images_refused(
        self, exc: openai.APIStatusError, request: GenerationRequest, stream: GenerationStream
    ) -> bool:
        """Whether the server refused only the images of tool or code outputs (remembered: not sent again).

        A text-only model on a server refuses any image part; the user sent none here (a plot of the Code
        mode, an MCP tool's image), so the request is worth sending again with the images as notes.
        """
        if stream.text or stream.cancelled or self.profile.output_images is False:
            return False
        if any(m.role is Role.USER and m.images for m in request.messages):
            return False
        if not any(m.role is Role.OBSERVATION and m.images for m in request.messages):
            return False
        if not names_any(exc, ("image", "multimodal", "vision", "mmproj")):
            return False
        self.profile.output_images = False
        return True

    # --- building requests ---------------------------------------------------------------------
    def status_line(self) -> str:
        """What this server was seen to accept, for the sidebar ("" until something is known)."""
        return self.profile.summary()

    def hermes_messages(self, messages: list[Message], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The conversation with the tools (if any) in the system prompt, calls and results as text (Hermes style).

        Raises:
            ImageInputError: If a user's message holds images: this text form cannot carry them, and they
                are never dropped silently.
        """
        if any(m.role is Role.USER and m.images for m in messages):
            raise ImageInputError(
                f"The server at {self.target.base_url} takes no tools itself, so they would go into the prompt "
                "as text, which cannot carry this conversation's images. Ask without tools, or use a server "
                "with tool support."
            )
        messages = [_output_images_as_note(m, "results go to this server as text") for m in messages]
        if not tools:
            return HermesDialect(self._template).to_template_messages(messages)
        rest = list(messages)
        head = rest.pop(0).content.strip() if rest and rest[0].role is Role.SYSTEM else ""
        system = Message(Role.SYSTEM, f"{head or DEFAULT_SYSTEM}\n\n{tools_section(tools)}")
        return HermesDialect(self._template).to_template_messages([system, *rest])

    def openai_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat messages, outputs' images as ``user`` messages after their results.

        Once the server's model refused them (:attr:`ServerProfile.output_images`), a note stands for them.
        """
        if self.profile.output_images is False:
            messages = [_output_images_as_note(m, "this server's model refused images") for m in messages]
        return to_openai(messages, output_images=True)


def _output_images_as_note(message: Message, why: str) -> Message:
    """An observation whose images cannot be sent, with a note saying so (and ``why``) instead."""
    if message.role is not Role.OBSERVATION or not message.images:
        return message
    note = f"[{len(message.images)} image(s) of this output cannot be shown to you: {why}]"
    return replace(message, content=f"{message.content}\n{note}".strip(), images=[])


def _context_length(card: Any) -> int:
    extra = getattr(card, "model_extra", None) or {}
    for key in ("context_length", "max_model_len", "context_window", "n_ctx"):
        value = extra.get(key)
        if isinstance(value, int) and value > 0:
            return value
    meta = extra.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
        return int(meta["n_ctx_train"])
    return _DEFAULT_CONTEXT


def remote_error(
    exc: BaseException, url: str, model: str | None, *, loading: bool = False, received: bool = False
) -> RemoteModelError:
    """A clear error for whatever went wrong talking to the server."""
    if isinstance(exc, RemoteModelError):
        return exc
    kept = " The partial answer is kept." if received else ""
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return RemoteModelError(
            f"The server at {url} refused the API key ({exc.status_code}). Give the right key with --api-key, "
            "WORKBENCH_API_KEY or OPENAI_API_KEY."
        )
    if isinstance(exc, openai.NotFoundError):
        what = f"the model {model!r}" if model else "the OpenAI API"
        return RemoteModelError(
            f"The server at {url} does not have {what} (404). Check the URL (it usually ends in /v1) and the "
            "model name (GET /v1/models lists them)."
        )
    if isinstance(exc, openai.APITimeoutError):
        return RemoteModelError(
            f"The server at {url} did not answer in time.{kept} Check that it is running and not overloaded, "
            "or raise WORKBENCH_REMOTE_TIMEOUT (seconds)."
        )
    if received and isinstance(exc, openai.APIConnectionError):
        return RemoteModelError(stopped_answering(url, received=True))
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return RemoteModelError(
            f"Cannot reach the server at {url} ({cause}). Check the URL and that the server is running."
        )
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | UnicodeDecodeError):
        return RemoteModelError(
            f"The server at {url} answered something that is not OpenAI-style JSON.{kept} Check that the URL "
            "points at an OpenAI-compatible API (it usually ends in /v1)."
        )
    if isinstance(exc, openai.APIStatusError):
        detail = _sentence(_error_message(exc))
        return RemoteModelError(f"The server at {url} answered {exc.status_code}: {detail}{kept}")
    return RemoteModelError(f"Talking to the server at {url} failed: {_sentence(str(exc))}{kept}")


def images_refused(error: RemoteModelError, model: str | None) -> ImageInputError:
    """The error for a server that refused a request holding images: its model may read text only."""
    return ImageInputError(
        f"The model {model!r} refused a message with images: {error} It may read text only; remove the "
        "images, or choose a model that reads images (a vision model) on that server."
    )


def _sentence(text: str) -> str:
    """A message ending in one full stop (a server's own may end in one already)."""
    text = " ".join(text.split()) or "no details"
    return text if text.endswith((".", "!", "?")) else text + "."


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return str(getattr(exc, "message", exc))
