"""Images on the llama.cpp engine: a GGUF model with its multimodal projector, through llama.cpp's mtmd.

A vision GGUF comes as two files: the text model, and its *multimodal projector* (``mmproj*.gguf``: the
image encoder and the projection into the text model's embeddings). ``--mmproj FILE`` names the projector;
without it, the one ``mmproj*.gguf`` file beside the model is used (``--mmproj none`` loads the text model
alone). With a projector the engine has ``capabilities.vision``.

A request's images arrive as :attr:`GenerationRequest.images`, each marked once in its prompt by
:data:`~workbench.models.generation.IMAGE_MARKER` (mtmd's own marker). :meth:`VisionProjector.prompt`
checks each image with Pillow (size limits, decompression bombs, junk) and decodes it to RGB pixels
itself, so llama.cpp's own image decoder never sees a user's file; mtmd then cuts the prompt into text
and image chunks (:class:`MediaPrompt`), whose token count includes every image's tokens.

The messages' control-token texts stay plain text here too (:mod:`~workbench.models.prompt_literals`):
the prompt goes to mtmd in parts (``mtmd_tokenize_from_parts``, :func:`prompt_parts`), the request's
``literal_spans`` with special tokens *not* parsed, the template's text with them parsed, and an image
where each marker was. Without literal spans these are the very parts ``mtmd_tokenize`` cuts the prompt
into at its markers, so such a prompt gets the same chunks as ever.

The engines evaluate such a prompt whole through ``mtmd_helper_eval_chunks`` into one sequence (the
serial engine's, or the slot's in :mod:`workbench.models.llamacpp_slots`), before the generation samples
its first token; the image encoder runs then, and the batched engine's other slots wait for it. An image
prompt's cache cells are never kept or reused (their tokens are not text that a later prompt could
match): they are dropped when the generation ends. A conversation with images is evaluated whole each turn.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import GenerationError, ImageInputError, ModelLoadError
from workbench.models.generation import IMAGE_MARKER, GenerationRequest
from workbench.models.gguf_check import GGUFFormatError, read_gguf
from workbench.models.prompt_literals import Span, tokenize_pieces
from workbench.models.spec import EMBEDDED, ModelSpec

logger = logging.getLogger(__name__)

#: ``--mmproj none``: load the text model alone, even with a projector beside it.
NO_MMPROJ = "none"
#: The token id recorded for an image's cells (never a real token, so never matched by a later prompt).
MEDIA_CELL = -1
#: The GGUF architecture of projector files (``general.architecture``).
PROJECTOR_ARCHITECTURE = "clip"


def find_mmproj(spec: ModelSpec, model: Path) -> Path | None:
    """The projector file for a model: ``--mmproj``'s, else the one ``mmproj*.gguf`` beside the model.

    Raises:
        ModelLoadError: If ``--mmproj`` names no file, or several projectors lie beside the model.
    """
    given = spec.mmproj.strip()
    if given.lower() == NO_MMPROJ:
        return None
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ModelLoadError(
                f"The multimodal projector {given!r} (--mmproj) is not a file. Give the mmproj .gguf file "
                "that belongs to the model, or leave --mmproj empty."
            )
        return path
    if spec.source == EMBEDDED:
        return None
    found = sorted(
        p
        for p in (model.parent.iterdir() if model.parent.is_dir() else [])
        if _is_projector_name(p.name) and p.is_file() and p.resolve() != model.resolve()
    )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelLoadError(
            f"Several multimodal projectors lie beside {model.name} ({names}). Choose one with --mmproj FILE, "
            "or --mmproj none to load the model for text only."
        )
    return found[0] if found else None


def _is_projector_name(name: str) -> bool:
    """Whether a file name reads like a projector's (``mmproj*.gguf``, in any case)."""
    lower = name.lower()
    return lower.startswith("mmproj") and lower.endswith(".gguf")


def load_projector(
    spec: ModelSpec, model: Path, llm: Any, threads: int, use_gpu: bool, say: Callable[[str], None]
) -> VisionProjector | None:
    """The model's projector loaded on ``llm``, or None when it has none (see :func:`find_mmproj`).

    Raises:
        ModelLoadError: Naming the projector file: not a GGUF file, truncated, not a projector, made for
            another model, or no image encoder in it.
    """
    path = find_mmproj(spec, model)
    if path is None:
        return None
    found = "" if spec.mmproj.strip() else " (found beside the model)"
    fix = "Give the mmproj file made for this model with --mmproj FILE" + (
        ", or --mmproj none to load it for text only." if found else "."
    )
    try:
        info = read_gguf(path)
    except (GGUFFormatError, OSError) as exc:
        raise ModelLoadError(f"The multimodal projector {path}{found} is unusable: {exc}. {fix}") from exc
    if info.architecture != PROJECTOR_ARCHITECTURE:
        raise ModelLoadError(
            f"{path} is not a multimodal projector{found}: its architecture is {info.architecture!r}, not "
            f"{PROJECTOR_ARCHITECTURE!r} (a model file, not its mmproj?). {fix}"
        )
    try:
        from llama_cpp import mtmd_cpp
    except (ImportError, OSError, RuntimeError) as exc:  # a build without libmtmd (LLAVA_BUILD=OFF)
        raise ModelLoadError(
            f"This llama-cpp-python has no multimodal library (libmtmd), so {path.name} cannot be used "
            "(images). Rebuild it with scripts/setup.sh, or load the model with --mmproj none."
        ) from exc
    say(f"Loading the multimodal projector {path.name}...")
    params = mtmd_cpp.mtmd_context_params_default()
    params.use_gpu = use_gpu
    params.print_timings = False
    params.n_threads = threads
    params.media_marker = IMAGE_MARKER.encode()
    errors: list[str] = []
    with mtmd_errors_to(errors):
        ctx = mtmd_cpp.mtmd_init_from_file(str(path).encode(), llm.model, params)
    if not ctx:
        reason = " ".join(line.strip() for line in errors if line.strip()) or "llama.cpp could not read it"
        raise ModelLoadError(f"Could not load the multimodal projector {path}{found}: {reason[:300]}. {fix}")
    if not mtmd_cpp.mtmd_support_vision(ctx):
        mtmd_cpp.mtmd_free(ctx)
        raise ModelLoadError(
            f"The multimodal projector {path}{found} has no image encoder (audio only?). {fix}"
        )
    projector = VisionProjector(ctx, path)
    llm._stack.callback(projector.close)  # freed by Llama.close(), before the model it reads
    return projector


class VisionProjector:
    """A loaded projector (mtmd's context) on one model; thread-safe (one mtmd call at a time).

    Args:
        ctx: The ``mtmd_context`` pointer.
        path: The projector file.
    """

    def __init__(self, ctx: Any, path: Path) -> None:
        from llama_cpp import mtmd_cpp

        self.path = path
        self._mtmd = mtmd_cpp
        self._ctx = ctx
        self.lock = threading.Lock()
        self._finalizer = weakref.finalize(self, mtmd_cpp.mtmd_free, ctx)

    def close(self) -> None:
        """Free the projector (call it before the model is freed)."""
        with self.lock:
            self._finalizer()

    def prompt(self, text: str, images: list[bytes], literal_spans: Sequence[Span] = ()) -> MediaPrompt:
        """Cut a prompt into text and image chunks, each image checked and decoded by Pillow first.

        Args:
            text: The prompt, each image marked once by :data:`IMAGE_MARKER`.
            images: The images, in the markers' order.
            literal_spans: Spans of ``text`` tokenized as plain text (the messages' control-token texts).

        Raises:
            ImageInputError: If an image is unreadable or too large, or the markers do not match the images.
        """
        markers = text.count(IMAGE_MARKER)
        if markers != len(images):
            raise ImageInputError(
                f"The prompt marks {markers} image(s) but the request holds {len(images)}; each image is marked "
                f"once by {IMAGE_MARKER} (ChatModel does it)."
            )
        pixels = [rgb_pixels(image, index) for index, image in enumerate(images, 1)]
        mtmd = self._mtmd
        with self.lock:
            if not self._finalizer.alive:
                raise GenerationError("The model was unloaded; load it again.")
            bitmaps = [mtmd.mtmd_bitmap_init(w, h, (ctypes.c_uint8 * len(data)).from_buffer_copy(data))
                       for w, h, data in pixels]  # fmt: skip
            chunks = mtmd.mtmd_input_chunks_init()
            try:
                if not chunks or not all(bitmaps):
                    raise GenerationError("llama.cpp could not allocate the image input (out of memory?).")
                parts = []
                pending = iter(bitmaps)
                for piece in prompt_parts(text, literal_spans):
                    part = mtmd.mtmd_input_part()
                    if piece is None:
                        part.bitmap = next(pending)
                    else:
                        encoded = piece[0].encode("utf-8")
                        inp = mtmd.mtmd_input_text()  # the part keeps it (and the bytes) alive
                        inp.text, inp.text_len = encoded, len(encoded)
                        inp.add_special, inp.parse_special = False, piece[1]
                        part.text = ctypes.pointer(inp)
                    parts.append(ctypes.pointer(part))
                array = (ctypes.POINTER(mtmd.mtmd_input_part) * max(1, len(parts)))(*parts)
                # No BOS, as the engine tokenizes text.
                status = mtmd.mtmd_tokenize_from_parts(self._ctx, chunks, array, len(parts), False)
                if status != 0:
                    problem = (
                        "the image markers do not match" if status == 1 else "an image could not be prepared"
                    )
                    raise ImageInputError(
                        f"llama.cpp could not read the images: {problem} (status {status})."
                    )
                prompt = MediaPrompt(self, chunks, int(mtmd.mtmd_helper_get_n_tokens(chunks)),
                                     int(mtmd.mtmd_helper_get_n_pos(chunks)))  # fmt: skip
                chunks = None  # the prompt frees them
                return prompt
            finally:
                for bitmap in bitmaps:
                    if bitmap:
                        mtmd.mtmd_bitmap_free(bitmap)
                if chunks:
                    mtmd.mtmd_input_chunks_free(chunks)


def prompt_parts(text: str, literal_spans: Sequence[Span] = ()) -> list[tuple[str, bool] | None]:
    """The parts mtmd gets for a prompt: ``(text, parse_special)``, or None for an image (a marker).

    The literal spans are text with special tokens not parsed, the rest text with them parsed; every
    :data:`IMAGE_MARKER` is an image (:meth:`VisionProjector.prompt` checks there is one for each). Empty
    texts are left out.
    """
    parts: list[tuple[str, bool] | None] = []
    pieces = tokenize_pieces(text, literal_spans, lambda t: [(t, True)], lambda t: [(t, False)])
    for piece, parse_special in pieces:
        for index, between in enumerate(piece.split(IMAGE_MARKER)):
            if index:
                parts.append(None)
            if between:
                parts.append((between, parse_special))
    return parts


@dataclass(eq=False)
class MediaPrompt:
    """A prompt with images, cut by mtmd into text and image chunks; a :class:`PreparedPrompt`'s payload.

    Attributes:
        projector: The projector that made it.
        chunks: mtmd's chunks (freed by :meth:`close`, or when the prompt is dropped).
        n_tokens: Tokens of the whole prompt, each image's included (the KV cells it takes).
        n_pos: Positions it takes (fewer than ``n_tokens`` for models that place an image in 2D).
    """

    projector: VisionProjector
    chunks: Any
    n_tokens: int
    n_pos: int
    _finalizer: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, self.projector._mtmd.mtmd_input_chunks_free, self.chunks)

    @classmethod
    def of(cls, projector: VisionProjector | None, request: GenerationRequest, label: str) -> MediaPrompt:
        """The request's prompt and images cut into chunks by the model's projector.

        Raises:
            ImageInputError: If the model has no projector, or an image is unreadable or too large.
        """
        if projector is None:
            raise ImageInputError(
                f"{label} reads text only (no multimodal projector was loaded with it), and the request holds "
                "images. Remove the images, or load the model with its mmproj file (--mmproj FILE)."
            )
        return projector.prompt(request.prompt, request.images, request.literal_spans)

    def close(self) -> None:
        """Free the chunks (once evaluated, or when the request is dropped)."""
        self._finalizer()

    def evaluate(self, ctx: Any, seq: int, n_batch: int) -> int:
        """Evaluate the whole prompt into sequence ``seq`` from position 0, logits of its last token kept.

        The caller has emptied the sequence; the next sampling reads the logits at index -1 (the last
        output). Frees the chunks.

        Returns:
            The next position (``n_pos``): where the first generated token goes.

        Raises:
            GenerationError: If llama.cpp could not encode an image or evaluate a batch.
        """
        from llama_cpp import llama_cpp

        projector = self.projector
        mtmd = projector._mtmd
        with projector.lock:
            if not self._finalizer.alive or not projector._finalizer.alive:
                raise GenerationError("The image prompt was freed already (the model was unloaded?).")
            n_chunks = int(mtmd.mtmd_input_chunks_size(self.chunks))
            last = mtmd.mtmd_input_chunks_get(self.chunks, n_chunks - 1) if n_chunks else None
            if not last or mtmd.mtmd_input_chunk_get_type(last) != mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                raise GenerationError(
                    "An image prompt must end with text (the chat template's reply header)."
                )
            new_n_past = llama_cpp.llama_pos(0)
            errors: list[str] = []
            with mtmd_errors_to(errors):
                status = mtmd.mtmd_helper_eval_chunks(
                    projector._ctx, ctx, self.chunks, 0, seq, n_batch, True, ctypes.byref(new_n_past)
                )
            self._finalizer()
        if status != 0:
            reason = " ".join(line.strip() for line in errors if line.strip())
            raise GenerationError(
                f"llama.cpp could not evaluate the image prompt (status {status}). {reason}".strip()
            )
        return int(new_n_past.value)


def rgb_pixels(image: bytes, index: int = 1) -> tuple[int, int, bytes]:
    """An image's width, height and RGB bytes, checked and decoded as every engine's are (at most 2048 px a side).

    Raises:
        ImageInputError: If the image is unreadable, a decompression bomb or over Pillow's pixel limit.
    """
    from workbench.images import open_image

    picture = open_image(image, f"Image {index}")
    return picture.width, picture.height, picture.tobytes()


# --- mtmd's log: errors collected while loading and evaluating, the rest to Python's logging ----------
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level
_ERROR, _CONTINUED = 4, 5
_collectors: list[list[str]] = []
_last_level = [0]
_callback: Any = None


def _log(level: int, text: bytes, user_data: Any) -> None:
    """The log callback of mtmd: errors to the innermost collector, everything to ``logger`` (debug for info)."""
    message = text.decode("utf-8", errors="replace")
    if level == _CONTINUED:
        level = _last_level[0]
    else:
        _last_level[0] = level
    if level == _ERROR and _collectors:
        _collectors[-1].append(message)
    logger.log(_LOG_LEVELS.get(level, logging.DEBUG), "mtmd: %s", message.rstrip())


@contextmanager
def mtmd_errors_to(errors: list[str]) -> Iterator[None]:
    """Collect mtmd's error log lines (its calls return only a status); mtmd's log stays quiet on stderr."""
    global _callback
    from llama_cpp import llama_cpp, mtmd_cpp

    if _callback is None:  # kept for the process's life: llama.cpp holds the pointer
        _callback = llama_cpp.llama_log_callback(_log)
        mtmd_cpp.mtmd_log_set(_callback, ctypes.c_void_p(0))
        mtmd_cpp.mtmd_helper_log_set(_callback, ctypes.c_void_p(0))
    _collectors.append(errors)
    try:
        yield
    finally:
        _collectors.remove(errors)


def evaluate_serial(llm: Any, states: Any, media: MediaPrompt) -> list[int]:
    """Evaluate an image prompt into the serial engine's sequence; return the prompt to ``generate``.

    The live cache is saved first when it is worth keeping (another conversation's), then emptied; the
    prompt's cells are recorded as :data:`MEDIA_CELL` and left unsettled, so none is ever reused. The
    returned prompt equals what the model holds, so ``Llama.generate`` samples from the logits at once.

    Args:
        llm: The ``llama_cpp.Llama``.
        states: Its :class:`~workbench.models.llamacpp_state.ConversationStates`.
        media: The prompt.
    """
    from llama_cpp import llama_cpp

    states.prepare_for([])  # saves the live cache if it holds a conversation worth keeping
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
    llm.n_tokens = 0
    states.settled = 0
    n_past = media.evaluate(llm.ctx, 0, llm.n_batch)
    llm.input_ids[:n_past] = MEDIA_CELL
    llm.n_tokens = n_past
    llm._requires_eval = False  # the last logits are the prompt's own
    return [MEDIA_CELL] * n_past
