"""A model that speaks in messages: a text backend plus the dialect of its family.

Mode loops, the CLI and the pages use this class only; they never touch a tokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from workbench.dialects import Dialect, dialect_for
from workbench.errors import EmptyPromptError, ImageInputError, SettingsError
from workbench.messages import Message, Role
from workbench.models.backend import Backend, Capabilities, ModelInfo
from workbench.models.backends import load_backend
from workbench.models.generation import GenerationRequest, GenerationStream, SamplingSettings
from workbench.models.loading import ProgressCallback
from workbench.models.prompt_literals import Literals, control_texts
from workbench.models.spec import ModelSpec
from workbench.prompt_images import PromptImages, prompt_images


class ChatModel:
    """A loaded model with its dialect.

    Attributes:
        backend: What generates text (any :class:`~workbench.models.backend.Backend`).
        dialect: How conversations are rendered and replies parsed.
    """

    def __init__(self, backend: Backend, dialect: Dialect | None = None) -> None:
        self.backend = backend
        self.dialect = dialect or dialect_for(backend.template)
        #: The texts of the model's control tokens, which messages may not write (read once).
        self._control_texts: tuple[str, ...] | None = None

    @classmethod
    def load(cls, spec: ModelSpec | None = None, progress: ProgressCallback | None = None) -> ChatModel:
        """Load a model and pick its dialect.

        Raises:
            ModelError: If the model cannot be found, loaded or has no chat template.
        """
        return cls(load_backend(spec or ModelSpec.from_env(), progress))

    @property
    def info(self) -> ModelInfo:
        """What is loaded, where, in which dtype."""
        return self.backend.info

    @property
    def capabilities(self) -> Capabilities:
        """What the engine can do (constrained JSON, prompt prefixes, ...)."""
        return self.backend.capabilities

    def default_settings(self) -> SamplingSettings:
        """Sampling defaults suited to this model."""
        return self.backend.default_settings()

    def stream(
        self,
        messages: list[Message],
        settings: SamplingSettings | Mapping[str, Any] | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        prefix: str = "",
        stop_strings: tuple[str, ...] = (),
        json_schema: dict[str, Any] | None = None,
        dialect: Dialect | None = None,
    ) -> GenerationStream:
        """Start the assistant's next turn and return its stream of text.

        Args:
            messages: The conversation so far.
            settings: Sampling settings (the model's defaults if None; a dict changes some of them).
            tools: Tool schemas to render into the prompt.
            prefix: Text forced at the start of the reply (already part of the prompt, not streamed).
            stop_strings: Extra strings that end the turn.
            json_schema: Constrain the generated text to this JSON schema.
            dialect: Render with another dialect than the model's own (tool formats).

        Raises:
            PromptError: If the conversation cannot be rendered or does not fit the context.
            ImageInputError: If a user's message holds images and the model cannot read them.
        """
        return self.backend.start(
            self.request(
                messages,
                settings,
                tools=tools,
                prefix=prefix,
                stop_strings=stop_strings,
                json_schema=json_schema,
                dialect=dialect,
            )
        )

    def request(
        self,
        messages: list[Message],
        settings: SamplingSettings | Mapping[str, Any] | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        prefix: str = "",
        stop_strings: tuple[str, ...] = (),
        json_schema: dict[str, Any] | None = None,
        dialect: Dialect | None = None,
    ) -> GenerationRequest:
        """The request :meth:`stream` starts: the rendered prompt and how to continue it (same arguments).

        Control-token texts written in the messages (``<|im_start|>``) are marked in
        ``literal_spans``, so the engine tokenizes them as plain text: a message cannot forge a turn.

        Raises:
            PromptError: If the conversation cannot be rendered.
            ImageInputError: If a user's message holds images and the model cannot read them.
        """
        use = dialect or self.dialect
        prepared = self._prompt_images(messages)
        if self._control_texts is None:
            self._control_texts = control_texts(self.backend.template)
        literals = Literals(self._control_texts)
        rendered, spans = literals.restore(use.render(literals.escape_messages(prepared.marked), tools=tools))
        return GenerationRequest(
            prompt=rendered + prefix,
            literal_spans=spans,
            images=prepared.images,
            settings=self._settings(settings),
            stop_strings=tuple(dict.fromkeys(use.stop_strings + stop_strings)),
            json_schema=json_schema,
            messages=prepared.sent,
            tools=tools,
            prefix=prefix,
        )

    def _prompt_images(self, messages: list[Message]) -> PromptImages:
        """The conversation made ready for this model (:func:`workbench.prompt_images.prompt_images`).

        A vision model gets every user image and the latest output images (plots, tool images), checked;
        a text-only model gets the text (output images are named there) and refuses a user's images.
        For a vision model a marker typed by anyone is removed, so the prompt holds one per image given.

        Raises:
            ImageInputError: If a user's message holds images and the model has no ``vision``.
        """
        if not self.backend.capabilities.vision:
            if any(m.role is Role.USER and m.images for m in messages):
                raise text_only_refusal(self.backend.info.label)
            return PromptImages(list(messages), [], list(messages))
        return prompt_images(messages)

    def _settings(self, settings: SamplingSettings | Mapping[str, Any] | None) -> SamplingSettings:
        """The settings to use: the defaults, the given ones, or the defaults changed by a dict.

        Raises:
            SettingsError: If a value is out of range, a key is no setting, or ``settings`` is neither.
        """
        if settings is None:
            return self.default_settings()
        if isinstance(settings, SamplingSettings):
            return settings
        if isinstance(settings, Mapping):
            known = {f.name for f in fields(SamplingSettings)}
            unknown = sorted(str(k) for k in settings if k not in known)
            if unknown:
                raise SettingsError(
                    f"Unknown sampling setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}."
                )
            return replace(self.default_settings(), **settings)
        raise SettingsError(
            f"settings must be a SamplingSettings or a dict of its fields, not {type(settings).__name__}."
        )

    def chat(
        self,
        query: str,
        history: list[Message] | None = None,
        *,
        system: str | None = None,
        settings: SamplingSettings | Mapping[str, Any] | None = None,
        images: Sequence[bytes | str | os.PathLike[str]] = (),
    ) -> tuple[str, list[Message]]:
        """Run one chat turn and return the reply and the updated history (ChatGLM's ``model.chat``).

        Args:
            query: The user's message.
            history: Earlier messages (not modified).
            system: A system prompt, used when the history has none.
            settings: Sampling settings, or a dict changing some of the model's defaults
                (``{"temperature": 0}``).
            images: Images sent with the message, as file paths or bytes (PNG, JPEG, WebP, GIF), for a
                vision model (``model.capabilities.vision``); they are kept as PNG on the message.

        Raises:
            SettingsError: If a setting is out of range (checked before anything is generated).
            EmptyPromptError: If ``query`` is blank.
            PromptTooLongError: If the conversation no longer fits the context.
            ImageInputError: If an image is unreadable or too large, or the model reads text only.
        """
        if not query.strip():
            raise EmptyPromptError("The message is empty; type something to send.")
        from workbench.images import load_image

        pictures = [load_image(image, f"image {n}") for n, image in enumerate(images, 1)]
        messages = list(history or [])
        if system and not any(m.role is Role.SYSTEM for m in messages):
            messages.insert(0, Message(Role.SYSTEM, system))
        messages.append(Message(Role.USER, query, images=pictures))
        stream = self.stream(messages, settings)
        text = stream.result()
        reply = self.dialect.parse(text)
        reply.stats = stream.stats.to_dict()
        messages.append(reply)
        return reply.content, messages


def text_only_refusal(label: str) -> ImageInputError:
    """The error for images sent to a text-only model (``label`` names it), with what to do instead."""
    return ImageInputError(
        f"{label} reads text only, and this conversation holds images. Remove the images, or load a vision "
        "model (a GGUF with its --mmproj file, an image-text model from transformers, or a server whose model "
        "reads images)."
    )
