"""Which images of a conversation a vision model is given, and where each stands in the prompt.

Two kinds of message hold images: a user's (checked when they came in, :mod:`workbench.images`; every one
is given) and an observation's (a plot the code interpreter drew, an image an MCP tool returned). The
second kind was written by the kernel or a tool server, neither trusted: each is checked again by the
same rules (:func:`workbench.images.output_image`) before a model sees it, and only the latest
:data:`MAX_OUTPUT_IMAGES` of them go with a request (each image costs hundreds of prompt tokens). Every
output image left out is named in its observation's text, with why, so the model knows it exists.

A text-only model gets the text alone: an observation's images never make it refuse (its text already
says ``[image 1: 640x480]``); a user's images do (:func:`workbench.chat_model.text_only_refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workbench.images import output_image
from workbench.messages import Message, Role
from workbench.models.generation import IMAGE_MARKER

MAX_OUTPUT_IMAGES = 4
"""The most images of tool and code outputs one request gives a vision model: the latest ones."""


@dataclass
class PromptImages:
    """A conversation made ready for a vision model.

    Attributes:
        marked: The messages to render: each image's :data:`IMAGE_MARKER` before a user's text and after
            an observation's, typed markers removed, notes on output images left out.
        images: The images, in the order their markers stand in the prompt.
        sent: The same messages without markers, each holding exactly the images given (checked PNG for
            outputs) and the notes: what a chat server is sent (``GenerationRequest.messages``).
    """

    marked: list[Message]
    images: list[bytes]
    sent: list[Message]


def prompt_images(messages: list[Message], max_output_images: int = MAX_OUTPUT_IMAGES) -> PromptImages:
    """Mark the images of ``messages`` for a vision model (see the module's notes); ``messages`` are not changed.

    Args:
        messages: The conversation.
        max_output_images: How many of the latest observation images to give (0: none).
    """
    chosen = _latest_outputs(messages, max_output_images)
    marked: list[Message] = []
    sent: list[Message] = []
    images: list[bytes] = []
    for index, message in enumerate(messages):
        content = message.content.replace(IMAGE_MARKER, "")
        given = list(message.images)
        notes: list[str] = []
        if message.role is Role.OBSERVATION and message.images:
            given = []
            for number, data in enumerate(message.images, 1):
                if (index, number) not in chosen:
                    notes.append(
                        f"[image {number} of this output is not shown to you: only the latest "
                        f"{max_output_images} output images go with each request]"
                    )
                    continue
                png, problem = output_image(data)
                if png is None:
                    notes.append(f"[image {number} of this output is not shown to you: {problem}]")
                else:
                    given.append(png)
        elif message.role is not Role.USER:
            given = []  # an assistant's or a system message's images are not input (none are made today)
        text = "\n".join([content, *notes]) if notes else content
        images.extend(given)
        if message.role is Role.USER:
            marked_text = (IMAGE_MARKER + "\n") * len(given) + text
        else:
            marked_text = text + "".join("\n" + IMAGE_MARKER for _ in given)
        marked.append(_with(message, marked_text, message.images))
        sent.append(_with(message, text, given))
    return PromptImages(marked, images, sent)


def _latest_outputs(messages: list[Message], limit: int) -> set[tuple[int, int]]:
    """(message index, image number from 1) of the latest ``limit`` observation images."""
    found = [
        (index, number)
        for index, message in enumerate(messages)
        if message.role is Role.OBSERVATION
        for number in range(1, len(message.images) + 1)
    ]
    return set(found[-limit:]) if limit > 0 else set()


def _with(message: Message, content: str, images: list[bytes]) -> Message:
    """``message`` itself if nothing changes, else a copy with this content and these images."""
    if content == message.content and images == message.images:
        return message
    return replace(message, content=content, images=images)
