"""Images in the message box (Chat, Tool and Code pages): uploaded, checked, shown in the user's bubble.

UI only: checking and normalising an image is :func:`workbench.images.prepare_image`'s; a text-only model's
refusal is :class:`~workbench.chat_model.ChatModel`'s. Images sent without a question wait for the next
message (shown above the box, with a button to drop them). A message the model refused (images on a
text-only model) is not lost: its text stays on the page with **Send again** (after loading a vision
model) and **Discard**, and its images keep waiting. Each page keeps its own waiting images (``page``: the
page's key, ``chat``, ``tool``, ``code``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import streamlit as st

from kernel.outputs import image_problem
from pages._common import show_error, show_markdown
from workbench.conversation import Conversation
from workbench.errors import USER_ERRORS, BranchError, ImageInputError
from workbench.images import IMAGE_EXTENSIONS, prepare_image
from workbench.messages import Message, Role
from workbench.safe_markdown import images_as_links

IMAGE_TYPES = list(IMAGE_EXTENSIONS)
"""What the chat input accepts as images (png, jpg, jpeg, webp, gif)."""

_PENDING = "{}_pending_images"
_UNSENT = "{}_unsent_text"
T = TypeVar("T")


def split_uploads(uploads: list[Any]) -> tuple[list[Any], list[Any]]:
    """The uploads that are images (by their name's ending), and the others (documents)."""
    images = [u for u in uploads if str(u.name).rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS]
    return images, [u for u in uploads if u not in images]


def add_images(uploads: list[Any], page: str = "chat") -> None:
    """Check each uploaded image and keep it (as PNG) for the next message; a bad one is refused by name."""
    pending = pending_images(page)
    for upload in uploads:
        try:
            pending.append(prepare_image(upload.getvalue(), str(upload.name)))
        except ImageInputError as exc:
            show_error(exc)


def pending_images(page: str = "chat") -> list[bytes]:
    """The images that go with the next message (PNG bytes)."""
    return st.session_state.setdefault(_PENDING.format(page), [])


def sent(page: str = "chat") -> None:
    """The message went: its images are the history's now, and no unsent text is kept."""
    st.session_state[_PENDING.format(page)] = []
    st.session_state.pop(_UNSENT.format(page), None)


def unsent_controls(sending: bool, page: str = "chat") -> str | None:
    """Draw the waiting images and a refused message; return its text when **Send again** is clicked.

    Args:
        sending: A message goes out in this run (its images are drawn in its bubble, not here).
    """
    pending = pending_images(page)
    if pending and not sending:
        with st.container(border=True):
            many = "s" if len(pending) > 1 else ""
            st.caption(f"{len(pending)} image{many} waiting to go with your next message")
            show_thumbnails(pending)
            if st.button("Remove the images", key=f"{page}_drop_images"):
                st.session_state[_PENDING.format(page)] = []
                st.rerun()
    unsent = st.session_state.get(_UNSENT.format(page))
    if not unsent or sending:
        return None
    text, error = unsent
    st.error(images_as_links(error))
    kept = "; its images are kept" if pending_images(page) else ""
    st.caption(f"Your message was not sent{kept}:")
    st.code(text, language=None, wrap_lines=True)
    left, right = st.columns(2)
    if right.button("Discard", key=f"{page}_discard_unsent", use_container_width=True):
        st.session_state.pop(_UNSENT.format(page), None)
        st.rerun()
    if left.button("Send again", key=f"{page}_send_unsent", use_container_width=True):
        return str(text)
    return None


def show_thumbnails(images: list[bytes], width: int = 160) -> None:
    """Images side by side; one that cannot be drawn is a note, never an exception on the page."""
    for column, png in zip(st.columns(min(len(images), 4) or 1), images, strict=False):
        with column:
            show_image(png, width)
    for png in images[4:]:
        show_image(png, width)


def show_image(png: bytes, width: int | Literal["content"] = 240) -> None:
    """One image, or a note when it is too big or unreadable: never an exception on the page (checked
    again: a saved conversation, an import or a kernel may hold anything)."""
    problem = image_problem(png)
    if not problem:
        try:
            st.image(png, width=width)
            return
        except Exception as error:  # whatever Pillow or Streamlit make of a hostile image
            problem = f"it could not be drawn ({type(error).__name__})"
    st.warning(f"Image not shown: {problem}.")


def show_message_images(message: Message) -> None:
    """The images of a user's message, in its bubble."""
    if message.images:
        show_thumbnails(message.images, width=240)


def refused(exc: Exception, text: str, page: str = "chat") -> None:
    """Keep a message the model refused (its text and why) and draw the page again, where it shows."""
    st.session_state[_UNSENT.format(page)] = (text, str(exc))
    st.rerun()


def keep_if_taken_back(history: Conversation, asked: Message | None, exc: Exception, page: str) -> None:
    """After a turn failed: keep the user's message on the page if the session took it back.

    The Tool and Code loops take back a message nothing was answered for (too long for the context,
    every slot busy); its text then waits with **Send again** and **Discard**, its images too, as a
    refused message does on the Chat page. A message still in the history is left alone.
    """
    if asked is None or asked.role is not Role.USER:
        return
    try:
        history.get(asked.id)
    except BranchError:
        st.session_state[_PENDING.format(page)] = list(asked.images)
        refused(exc, asked.content, page)


def message_box_prompt(given: Any, page: str, sending: bool = False) -> str | None:
    """What to send from a ``st.chat_input(accept_file=...)`` (its images kept for it), or a refused message.

    Draws the images waiting and a refused message's controls (:func:`unsent_controls`). Images alone wait
    for the next message. Other files are left to the page (documents).
    """
    prompt: str | None = None
    if given is not None:
        add_images(split_uploads(list(given.files))[0], page)
        if given.text or not given.files:
            prompt = given.text
    again = unsent_controls(sending=sending or prompt is not None, page=page)
    return again if prompt is None else prompt


def send_with_images(page: str, prompt: str, send: Callable[[str, list[bytes]], T]) -> T | None:
    """Draw the user's bubble and send ``prompt`` with the page's waiting images; None if it was refused.

    A refusal of a message with images (a text-only model) keeps its text and images on the page
    (:func:`refused`); another error is shown.
    """
    images = list(pending_images(page))
    with st.chat_message("user"):
        show_message_images(Message(Role.USER, prompt, images=images))
        show_markdown(prompt)
    try:
        result = send(prompt, images)
    except USER_ERRORS as exc:
        if images or isinstance(exc, ImageInputError):
            refused(exc, prompt, page)
        show_error(exc)
        return None
    sent(page)
    return result
