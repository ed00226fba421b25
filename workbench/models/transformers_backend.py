"""The transformers engine: a Hugging Face model (or a GGUF file converted by transformers) in process.

It runs on every device torch supports (cuda, mps, cpu) and is the fallback for every model. Only the
decode step lives here; the lock, worker thread, cancel and stats loop are :class:`SerialBackend`'s.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import torch
from transformers import (
    BatchEncoding,
    BatchFeature,
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextStreamer,
)

from workbench.dialects.template import ChatTemplateSource
from workbench.errors import ImageInputError, ModelLoadError, SettingsError
from workbench.images import open_image
from workbench.models.backend import Capabilities, ModelInfo, PreparedPrompt, SerialBackend
from workbench.models.constrained import JsonGrammar
from workbench.models.devices import resolve_device, resolve_dtype
from workbench.models.generation import (
    IMAGE_MARKER,
    FinishReason,
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
)
from workbench.models.loading import (
    ProgressCallback,
    is_image_text_config,
    load_processor,
    load_tokenizer_and_model,
    quantization_library,
)
from workbench.models.prompt_literals import tokenize_pieces
from workbench.models.spec import EMBEDDED, ModelSpec
from workbench.models.transformers_vision import (
    PartsTemplate,
    image_placeholder,
    literal_sentinels,
    reads_only_parts,
    splice_literals,
)

KV_CACHE_ENV = "WORKBENCH_KV_CACHE"
COMPILE_ENV = "WORKBENCH_COMPILE"
# transformers sizes a static cache to at least the largest one asked for before (GenerationConfig's
# max_cache_len, where it has one): rounding up to these buckets keeps one size, and one compiled graph,
# for most conversations.
_MIN_STATIC_CACHE = 512
# Sentinels tried for the literal spans beside images before the request is refused (see _vision_inputs).
_SENTINEL_TRIES = 3


def kv_cache_choice(device: str, env: dict[str, str] | None = None, *, static_ok: bool = True) -> str:
    """The KV cache a model on ``device`` decodes with: ``WORKBENCH_KV_CACHE``, else static on CUDA.

    A static cache (preallocated, fixed shapes) is what lets CUDA run a compiled decode step (5x plain
    ``generate`` on an H200); on a CPU it saves nothing and is used only when asked for (tests). ``auto``
    keeps the dynamic cache for a model that transformers cannot compile (``static_ok`` false: models
    with their own code, such as ChatGLM3, may not take a static cache at all).

    Raises:
        ModelLoadError: For a value other than auto, static or dynamic.
    """
    wanted = (os.environ if env is None else env).get(KV_CACHE_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "static", "dynamic"):
        raise ModelLoadError(f"{KV_CACHE_ENV}={wanted!r} is not a KV cache; choose auto, static or dynamic.")
    if wanted == "auto":
        return "static" if device == "cuda" and static_ok else "dynamic"
    return wanted


def compile_choice(device: str, env: dict[str, str] | None = None) -> bool:
    """Whether a static-cache decode is compiled: on CUDA unless ``WORKBENCH_COMPILE=0``; never elsewhere.

    On a CPU (or MPS) compiling costs minutes and pays little for one token at a time.
    """
    wanted = (os.environ if env is None else env).get(COMPILE_ENV, "auto").strip().lower()
    return device == "cuda" and wanted not in ("0", "false", "no", "off")


def static_cache_size(needed: int, context: int) -> int:
    """The static cache's length for ``needed`` tokens: the next power of two from 512, within the context."""
    size = _MIN_STATIC_CACHE
    while size < needed:
        size *= 2
    return max(needed, min(size, context))


_HAS_MAX_CACHE_LEN = hasattr(GenerationConfig(), "max_cache_len")


class _CancelCriterion(StoppingCriteria):
    """Stops generation as soon as the stream is cancelled (checked after every token)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
        return self.event.is_set()


class _StopStringCriterion(StoppingCriteria):
    """Stops once the generated text contains a stop string, by decoding only the last few tokens.

    transformers' own ``stop_strings`` builds a table over the whole vocabulary for every call (0.92 s
    of a 3.2 s call for SmolLM2's 49,152 tokens, measured on an H200; its cache missed); this costs one
    decode of a short window per token instead.
    """

    def __init__(self, tokenizer: Any, stop_strings: tuple[str, ...], prompt_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = stop_strings
        self.prompt_tokens = prompt_tokens
        # A token decodes to at least one character, or to a part of one UTF-8 character (byte fallback,
        # at most 4 bytes): this many tokens always hold the longest stop string, with one to spare.
        self.window = 4 * max(len(s) for s in stop_strings) + 1

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
        start = max(self.prompt_tokens, int(input_ids.shape[1]) - self.window)
        tail = self.tokenizer.decode(input_ids[0, start:].tolist(), skip_special_tokens=False)
        return any(s in tail for s in self.stop_strings)


class _StreamWriter(TextStreamer):
    """Feeds decoded text into the stream from the generating thread itself."""

    def __init__(
        self, backend: TransformersBackend, target: GenerationStream, stats: GenerationStats
    ) -> None:
        super().__init__(backend.tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.backend = backend
        self.target = target
        self.stats = stats

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.backend.emit(self.target, self.stats, text)


class TransformersBackend(SerialBackend):
    """A transformers model and its tokenizer, loaded once and shared by every page and session."""

    def __init__(
        self, spec: ModelSpec, tokenizer: Any, model: Any, info: ModelInfo, processor: Any = None
    ) -> None:
        super().__init__(spec, info)
        self.tokenizer = tokenizer
        self.model = model
        self.processor = processor  # an image-text model's: images and text in, input ids and pixels out
        self.image_placeholder = image_placeholder(processor) if processor is not None else ""
        self.image_token = str(getattr(processor, "image_token", "") or "") if processor is not None else ""
        self._template: ChatTemplateSource = tokenizer
        if processor is not None and reads_only_parts(tokenizer):
            self._template = PartsTemplate(tokenizer)
        self.capabilities = Capabilities(
            opens_tool_calls=spec.source != EMBEDDED, vision=processor is not None
        )
        self._grammar = JsonGrammar(tokenizer, int(model.config.get_text_config().vocab_size))
        static_ok = bool(getattr(model, "_can_compile_fullgraph", False))
        self.kv_cache = kv_cache_choice(info.device, static_ok=static_ok)  # "static" or "dynamic"
        self.compile = compile_choice(info.device)

    @classmethod
    def load(cls, spec: ModelSpec, progress: ProgressCallback | None = None) -> TransformersBackend:
        """Load a model (see :func:`workbench.models.loading.load_tokenizer_and_model`).

        Raises:
            ModelError: With a message naming the problem and the fix.
        """
        started = time.perf_counter()
        device = resolve_device(spec.device)
        dtype = resolve_dtype(spec.dtype, device)
        tokenizer, model, folder = load_tokenizer_and_model(spec, device, dtype, progress)
        processor = None
        if is_image_text_config(model.config):
            processor = load_processor(folder, spec)
            tokenizer = processor.tokenizer  # the processor's, with its image tokens
            if not getattr(tokenizer, "chat_template", None) and getattr(processor, "chat_template", None):
                tokenizer.chat_template = processor.chat_template
        config = model.config.get_text_config()
        context = int(
            getattr(config, "max_position_embeddings", 0) or getattr(config, "seq_length", 0) or 2048
        )
        info = ModelInfo(
            label=spec.label,
            source=spec.source,
            loaded_from=folder,
            backend="transformers",
            device=device,
            dtype=str(dtype).removeprefix("torch."),
            context_length=context,
            load_seconds=round(time.perf_counter() - started, 2),
            architecture=(getattr(model.config, "architectures", None) or [model.config.model_type])[0],
            quantization=f"{quantization_library()} {spec.quantize}" if spec.quantize != "none" else None,
        )
        return cls(spec, tokenizer, model, info, processor)

    @property
    def template(self) -> ChatTemplateSource:
        """The tokenizer: it renders its own chat template (content parts where a VLM's reads only those)."""
        return self._template

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` (special tokens in the text count as one each)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def default_settings(self) -> SamplingSettings:
        """Sampling defaults for this model: its generation_config where set, else ours."""
        if self.spec.source == EMBEDDED:
            # SmolLM2's model card suggests a low temperature; a mild penalty stops loops.
            return SamplingSettings(temperature=0.2, top_p=0.9, max_new_tokens=512, repetition_penalty=1.1)
        config = getattr(self.model, "generation_config", None)
        base = SamplingSettings()
        if config is None:
            return base
        try:
            return base.with_(
                temperature=getattr(config, "temperature", None) if getattr(config, "do_sample", False) else None,
                top_p=getattr(config, "top_p", None),
                repetition_penalty=getattr(config, "repetition_penalty", None),
            )
        except SettingsError:  # a generation_config out of range: our defaults are safer than a crash
            return base

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """Tokenize the prompt (and, on an image-text model, process its images) and size the reply.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
            ImageInputError: If the request holds images and this model reads text only, or an image
                cannot be decoded, or the processor cannot keep a message's control-token text plain
                beside images.
        """
        if request.images:
            inputs = self._vision_inputs(request)
        else:
            self._check_markers(request)
            inputs = self._text_inputs(request)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        return PreparedPrompt(prompt_tokens, self.room_for(prompt_tokens, request), inputs)

    def _text_inputs(self, request: GenerationRequest) -> Any:
        """The inputs for a prompt without images, its literal spans as plain text.

        With literal spans, an image-text model's prompt is tokenized by its processor's tokenizer as any
        model's (the processor would parse the messages' control-token texts with the rest); without, it
        goes through the processor as ever (some add per-token inputs, such as Qwen2-VL's token types).
        """
        text = self._template_text(request.prompt)
        if not request.literal_spans and self.processor is not None:
            return self.processor(text=[text], return_tensors="pt", add_special_tokens=False)
        if not request.literal_spans:
            return self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        ids = tokenize_pieces(
            request.prompt,
            request.literal_spans,
            lambda text: list(
                self.tokenizer(self._template_text(text), add_special_tokens=False)["input_ids"]
            ),
            self._plain_ids,
        )
        return BatchEncoding(
            {
                "input_ids": torch.tensor([ids], dtype=torch.long),
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            }
        )

    def _template_text(self, text: str) -> str:
        """Text to tokenize with special tokens parsed, less an image-text model's own image token.

        That token typed in a message would stand for an image that is not there (where the tokenizer marks
        it special it is in a literal span anyway, and never reaches this).
        """
        return text.replace(self.image_token, "") if self.image_token else text

    def _plain_ids(self, text: str) -> list[int]:
        """The ids of a literal span: its control-token texts as plain text."""
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def _check_markers(self, request: GenerationRequest) -> None:
        """Check an image-text model's prompt marks as many images as the request holds.

        Raises:
            ImageInputError: If the request holds images and this model reads text only, or the counts differ.
        """
        if self.processor is None:
            if request.images:
                raise ImageInputError(f"{self.info.label} reads text only; it cannot read the images sent.")
            return
        count = request.prompt.count(IMAGE_MARKER)
        if count != len(request.images):
            raise ImageInputError(
                f"The prompt marks {count} images but {len(request.images)} were given; each image needs "
                f"one {IMAGE_MARKER} in the prompt."
            )

    def _vision_inputs(self, request: GenerationRequest) -> Any:
        """The processor's inputs: each :data:`IMAGE_MARKER` becomes the model's own image placeholder.

        The literal spans stay plain text: the processor reads each as a sentinel token, whose id is then
        replaced by the span's plain-text ids (see :mod:`~workbench.models.transformers_vision`).

        Raises:
            ImageInputError: If the images do not match the markers, cannot be read, or the processor cannot
                keep the messages' control-token texts plain.
        """
        self._check_markers(request)
        images = [open_image(data, f"image {n}") for n, data in enumerate(request.images, 1)]
        pieces = tokenize_pieces(
            request.prompt,
            request.literal_spans,
            lambda text: [(self._template_text(text).replace(IMAGE_MARKER, self.image_placeholder), False)],
            lambda text: [(text, True)],
        )
        if not request.literal_spans:
            return self._process(pieces[0][0], images)
        template = "".join(text for text, literal in pieces if not literal)
        literals = [self._plain_ids(text) for text, literal in pieces if literal]
        for sentinel, sentinel_id in literal_sentinels(self.processor, template)[:_SENTINEL_TRIES]:
            inputs = self._process("".join(sentinel if literal else text for text, literal in pieces), images)
            spliced = splice_literals(inputs, sentinel_id, literals)
            if spliced is None:
                continue  # the sentinel did not come back once for each span: try the next one
            # The image tokens must be the processor's: a span whose plain text is a piece of the vocabulary
            # equal to the image token (a SentencePiece ``<image>``) would stand for an image not there.
            if self._image_tokens(spliced) != self._image_tokens(inputs):
                break
            return BatchFeature(spliced)
        typed = ", ".join(sorted({text for text, literal in pieces if literal}))
        raise ImageInputError(
            f"{self.info.label}'s processor cannot keep the control-token text typed in the messages "
            f"({typed}) as plain text beside images. Remove that text from the messages, or send them "
            "without images."
        )

    def _image_tokens(self, inputs: Any) -> int:
        """How many of the model's image tokens ``inputs`` hold."""
        if not self.image_token:
            return 0
        image_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        return int((inputs["input_ids"] == image_id).sum())

    def _process(self, text: str, images: list[Any]) -> Any:
        """Run the processor on one prompt and its images."""
        try:
            return self.processor(text=[text], images=[images], return_tensors="pt", add_special_tokens=False)
        except ValueError as exc:  # the processor's own checks (image tokens and images that do not pair)
            raise ImageInputError(f"{self.info.label}'s processor refused the images: {exc}") from exc

    def check_json_schema(self, schema: dict[str, Any], *, strict: bool = True) -> None:
        """Check that xgrammar can compile ``schema`` (it holds output to every keyword it compiles).

        Raises:
            GenerationError: If it cannot.
        """
        self._grammar.logits_processor(schema)

    def decode(
        self,
        request: GenerationRequest,
        prepared: PreparedPrompt,
        stream: GenerationStream,
        stats: GenerationStats,
    ) -> None:
        """Run ``model.generate`` with a streamer, the cancel criterion and the schema constraint."""
        settings = request.settings
        processors = LogitsProcessorList()
        if request.json_schema is not None:
            processors.append(self._grammar.logits_processor(request.json_schema))
        criteria = StoppingCriteriaList([_CancelCriterion(stream.cancel_event)])
        if request.stop_strings:
            criteria.append(
                _StopStringCriterion(self.tokenizer, request.stop_strings, prepared.prompt_tokens)
            )
        kwargs: dict[str, Any] = {
            **{k: self._on_device(v) for k, v in prepared.payload.items()},
            "max_new_tokens": prepared.max_new_tokens,
            "streamer": _StreamWriter(self, stream, stats),
            "stopping_criteria": criteria,
            "logits_processor": processors,
            "repetition_penalty": settings.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if self.kv_cache == "static":
            kwargs["cache_implementation"] = "static"
            if _HAS_MAX_CACHE_LEN:
                needed = prepared.prompt_tokens + prepared.max_new_tokens
                kwargs["max_cache_len"] = static_cache_size(needed, self.context_length)
        # transformers compiles a static-cache decode by itself on CUDA and MPS: only where it pays.
        kwargs["disable_compile"] = not (self.kv_cache == "static" and self.compile)
        if settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self.model.generate(**kwargs)
        sequence = output[0]
        stats.new_tokens = int(sequence.shape[0]) - stats.prompt_tokens
        last = int(sequence[-1]) if stats.new_tokens else None
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        if last in eos_ids:
            stats.finish_reason = FinishReason.EOS
        elif request.stop_strings and any(s in stream.text for s in request.stop_strings):
            stats.finish_reason = FinishReason.STOP_STRING
        elif stats.new_tokens >= prepared.max_new_tokens:
            stats.finish_reason = FinishReason.LENGTH

    def _on_device(self, value: Any) -> Any:
        """A tensor of the inputs on the model's device; pixel values also in the model's dtype."""
        if not isinstance(value, torch.Tensor):
            return value
        if value.is_floating_point():
            return value.to(self.model.device, dtype=self.model.dtype)
        return value.to(self.model.device)
