"""The llama.cpp engine: a GGUF file run in process by llama-cpp-python, on its quantized weights.

Loading maps the file (a fraction of a second, no conversion, no cache to fill) after
:func:`workbench.models.loading.check_gguf` has checked it, since llama.cpp can abort the process on a
malformed file. The chat template and the context length come from the file's metadata; the dialects
render the template through :class:`~workbench.dialects.jinja_template.JinjaChatTemplate`. This path
imports neither torch nor transformers.

Only the decode step lives here; the lock, worker thread, cancel and stats are :class:`SerialBackend`'s.
That is the engine of ``--parallel 1``; by default :meth:`LlamaCppBackend.load` returns the batched engine
(:mod:`workbench.models.llamacpp_batched`), which runs several generations in each ``llama_decode``.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from workbench.dialects.jinja_template import JinjaChatTemplate
from workbench.dialects.template import ChatTemplateSource
from workbench.errors import ModelLoadError, SettingsError
from workbench.models.backend import Capabilities, ModelInfo, PreparedPrompt, SerialBackend
from workbench.models.generation import (
    FinishReason,
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
)
from workbench.models.gguf_check import GGUFInfo
from workbench.models.llamacpp_cpu import llama_errors_to, load_cpu_backend
from workbench.models.llamacpp_grammar import check_schema, json_schema_grammar
from workbench.models.llamacpp_state import ConversationStates, KeptCaches
from workbench.models.llamacpp_tokens import PieceTokenizer, control_token_texts
from workbench.models.llamacpp_vision import MediaPrompt, VisionProjector, evaluate_serial, load_projector
from workbench.models.loading import ProgressCallback, check_gguf, load_error, resolve_source
from workbench.models.prompt_literals import tokenize_pieces
from workbench.models.spec import DEVICES, DTYPES, EMBEDDED, ModelSpec

#: Tokens of recent history the repetition penalty looks at (llama.cpp's default is 64).
PENALTY_LAST_N = 256
#: The default context when the model's is longer: llama.cpp allocates the whole KV cache up front (a
#: 128k-token context of an 8B model would take 16 GB); ``--context`` asks for more.
DEFAULT_MAX_CONTEXT = 8192
#: Generations run together by default, as llama.cpp's own server runs (``--parallel``).
DEFAULT_PARALLEL = 4


def flash_attention() -> bool:
    """Whether to load with flash attention: only with ``WORKBENCH_FLASH_ATTN=1``.

    On this CPU it decodes four slots about 25% faster, but its logits depend on how a prompt is cut
    into batches (up to 0.5 apart), so a kept, restored or shared cache would change greedy answers
    (bench/RESULTS.md, "Flash attention"). Without it they are the same bit for bit. A model llama.cpp
    cannot run with it loads without it.
    """
    return os.environ.get("WORKBENCH_FLASH_ATTN", "0") == "1"


def default_threads(cpu_count: int | None = None) -> int:
    """Decoding threads for this machine, from bench/RESULTS.md's measurements.

    llama.cpp's threads spin while they wait for each other, so one thread held by another process
    stalls them all: on 2 busy cores, 2 threads fell far below 1 thread. A threadpool that does not poll
    and separate batch threads did not help (the spinning is at the barriers inside a step;
    bench/bench_threads.py). One core is left to the app and the rest of the machine, up to 8 threads
    (decoding is bound by memory bandwidth beyond that).
    """
    cores = cpu_count or os.cpu_count() or 1
    return max(1, min(8, cores - 1))


def _special_tokens(llm: Any) -> dict[str, str]:
    """The special tokens a chat template may read (``bos_token``, ``eos_token``), as transformers passes them."""
    tokens: dict[str, str] = {}
    for name, token_id in (("bos_token", llm.token_bos()), ("eos_token", llm.token_eos())):
        if token_id is not None and token_id >= 0:
            tokens[name] = llm._model.token_get_text(token_id)
    return tokens


class LlamaCppBackend(SerialBackend):
    """A GGUF model on llama.cpp, loaded once and shared by every page and session."""

    def __init__(self, spec: ModelSpec, llm: Any, gguf: GGUFInfo, info: ModelInfo) -> None:
        super().__init__(spec, info)
        self.llm = llm
        self.gguf = gguf
        self.capabilities = Capabilities(
            constrained_json=True, prompt_prefix=True, opens_tool_calls=spec.source != EMBEDDED
        )
        self._conversations = ConversationStates(llm, lock=self._lock)
        #: Each conversation's kept KV cache (``forget`` empties them; ``restores`` counts the reuses).
        self.states: KeptCaches = self._conversations
        self._pieces: PieceTokenizer | None = None
        #: Images (issue 26): the multimodal projector, or None; whether the last prompt had images.
        self.projector: VisionProjector | None = None
        self._media_cells = False
        # Free llama.cpp's model when this backend goes, or at exit while the interpreter still works
        # (llama-cpp-python's __del__ at interpreter shutdown fails on half torn-down modules); not while
        # a generation or its settling (after the consumer has its answer) still uses it.
        self._finalizer: weakref.finalize[..., Any] = weakref.finalize(
            self, _close_when_idle, llm, self._lock
        )
        self._template = JinjaChatTemplate(
            gguf.chat_template, _special_tokens(llm), control_texts=control_token_texts(llm)
        )
        import llama_cpp

        self._vocab = llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._default_seed = llama_cpp.LLAMA_DEFAULT_SEED

    @classmethod
    def load(cls, spec: ModelSpec, progress: ProgressCallback | None = None) -> LlamaCppBackend:
        """Check and load a GGUF file.

        Raises:
            ModelError: With a message naming the problem and the fix.
        """
        say = progress or (lambda _msg: None)
        started = time.perf_counter()
        if spec.device not in DEVICES:
            raise ModelLoadError(f"Unknown device {spec.device!r}; choose one of {', '.join(DEVICES)}.")
        if spec.dtype not in DTYPES:
            raise ModelLoadError(f"Unknown dtype {spec.dtype!r}; choose one of {', '.join(DTYPES)}.")
        path = resolve_source(spec, say)
        if path.is_dir():
            raise ModelLoadError(
                f"The llama.cpp backend loads .gguf files and {str(path)!r} is a folder; use --backend "
                "transformers (or auto) for Hugging Face model folders."
            )
        gguf = check_gguf(path)
        if spec.quantize != "none":
            raise ModelLoadError(
                f"--quantize {spec.quantize} is for the transformers backend on a CUDA GPU; {path.name} is "
                f"quantized already ({gguf.file_type}). Leave --quantize at none, or pick a GGUF file with "
                "fewer bits per weight."
            )
        import llama_cpp

        cpu_kernels = load_cpu_backend()
        gpu_build = bool(llama_cpp.llama_supports_gpu_offload())
        if spec.device in ("cuda", "mps") and not gpu_build:
            raise ModelLoadError(
                f"Device {spec.device!r} was asked for but this llama.cpp build has no GPU support; use "
                "--device cpu, --backend transformers, or reinstall llama-cpp-python with "
                "CMAKE_ARGS=-DGGML_CUDA=on (or -DGGML_METAL=on)."
            )
        layers = 0 if spec.device == "cpu" or not gpu_build else spec.n_gpu_layers
        threads = spec.threads if spec.threads > 0 else default_threads()
        context = spec.context if spec.context > 0 else min(gguf.context_length or 4096, DEFAULT_MAX_CONTEXT)
        parallel = spec.parallel if spec.parallel > 0 else DEFAULT_PARALLEL
        say(f"Loading weights from {path} with llama.cpp ({threads} threads, {layers} layers on the GPU)...")
        errors: list[str] = []

        def make(flash: bool) -> Any:
            with llama_errors_to(errors), sequences(parallel):
                return llama_cpp.Llama(
                    model_path=str(path),
                    # Each slot's KV cells are its own stream of ``context`` cells (kv_unified off).
                    n_ctx=context * parallel,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=layers,
                    flash_attn=flash,
                    last_n_tokens_size=PENALTY_LAST_N,
                    verbose=False,
                )

        try:
            try:
                llm = make(flash_attention())
            except ValueError as exc:  # the weights loaded, but not a context with flash attention
                if not flash_attention() or "llama_context" not in str(exc):
                    raise
                errors.clear()
                llm = make(False)
        except (ValueError, RuntimeError, OSError) as exc:
            # llama.cpp's own log says why ("unknown model architecture: 'x'"); the exception does not.
            lines = "".join(errors).strip().splitlines()
            reason = lines[0].rpartition("error loading model: ")[2] if lines else str(exc)
            raise load_error(path, reason) from exc
        try:  # images (issue 26): the model's multimodal projector, if it has one (llamacpp_vision)
            projector = load_projector(spec, path, llm, threads, layers > 0, say)
        except BaseException:
            llm.close()
            raise
        device = "cpu" if layers == 0 else spec.device if spec.device != "auto" else _gpu_name()
        info = ModelInfo(
            label=spec.label,
            source=spec.source,
            loaded_from=str(path),
            backend="llama.cpp",
            device=device,
            dtype=gguf.file_type,
            context_length=int(llm.n_ctx()) // parallel,
            load_seconds=round(time.perf_counter() - started, 2),
            architecture=gguf.architecture,
            quantization="GGUF",
            threads=threads,
            cpu_kernels=cpu_kernels,
            projector=projector.path.name if projector is not None else None,
        )
        backend = cls.made(spec, llm, gguf, info, parallel)
        if projector is not None:  # images (issue 26)
            backend.projector = projector
            backend.capabilities = replace(backend.capabilities, vision=True)
        return backend

    @classmethod
    def made(
        cls, spec: ModelSpec, llm: Any, gguf: GGUFInfo, info: ModelInfo, parallel: int
    ) -> LlamaCppBackend:
        """The engine around a loaded model: this serial one (the batched engine overrides it)."""
        return LlamaCppBackend(spec, llm, gguf, info)

    @property
    def template(self) -> ChatTemplateSource:
        """The GGUF file's chat template, rendered as transformers would."""
        return self._template

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it (``<|im_start|>``) count as one each.

        In pieces (:mod:`~workbench.models.llamacpp_tokens`): llama.cpp alone is quadratic in the number
        of special tokens.
        """
        if self._pieces is None:
            self._pieces = PieceTokenizer(self.llm)
        return self._pieces.tokenize(text.encode("utf-8"))

    def tokenize_prompt(self, request: GenerationRequest) -> list[int]:
        """Token ids of the request's prompt; the messages' control-token texts stay plain text."""
        return tokenize_pieces(
            request.prompt,
            request.literal_spans,
            self.tokenize,
            lambda text: self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False),
        )

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text``."""
        return len(self.tokenize(text))

    def check_json_schema(self, schema: dict[str, Any], *, strict: bool = True) -> None:
        """Check that output can be held to ``schema`` (``strict``: every answer then validates against it).

        Raises:
            GenerationError: Saying what in the schema cannot be held to.
        """
        if strict:
            check_schema(schema)
        json_schema_grammar(schema, self._vocab)

    def default_settings(self) -> SamplingSettings:
        """Sampling defaults: ours for the embedded model, the file's ``general.sampling.*`` where set."""
        if self.spec.source == EMBEDDED:
            # SmolLM2's model card suggests a low temperature; a mild penalty stops loops.
            return SamplingSettings(temperature=0.2, top_p=0.9, max_new_tokens=512, repetition_penalty=1.1)
        meta = self.gguf.metadata
        try:
            return SamplingSettings().with_(
                temperature=meta.get("general.sampling.temp"), top_p=meta.get("general.sampling.top_p")
            )
        except SettingsError:  # values out of range in the file: our defaults are safer than a crash
            return SamplingSettings()

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """Tokenize the prompt and size the reply.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
            ImageInputError: If the request holds images and the model has no projector, or an image is
                unreadable or too large.
        """
        if request.images:  # images (issue 26): text and image chunks through mtmd (llamacpp_vision)
            media = MediaPrompt.of(self.projector, request, self.info.label)
            return PreparedPrompt(media.n_tokens, self.room_for(media.n_tokens, request), media)
        tokens = self.tokenize_prompt(request)
        return PreparedPrompt(len(tokens), self.room_for(len(tokens), request), tokens)

    def after_decode(self) -> None:
        """Settle the answer's cache cells, so that the next turn continues as a fresh prompt would."""
        if not self._media_cells:  # an image prompt's cells are dropped at the next prompt, never settled
            self._conversations.settle()

    def decode(
        self,
        request: GenerationRequest,
        prepared: PreparedPrompt,
        stream: GenerationStream,
        stats: GenerationStats,
    ) -> None:
        """Sample token by token: text to the stream, stop on cancel, end of turn, a stop string or the limit."""
        settings = request.settings
        schema = request.json_schema
        grammar = json_schema_grammar(schema, self._vocab) if schema is not None else None
        self._media_cells = isinstance(prepared.payload, MediaPrompt)  # images (issue 26)
        if self._media_cells:
            prompt = evaluate_serial(self.llm, self._conversations, prepared.payload)
        else:
            self._conversations.evaluate(prepared.payload)
            prompt = prepared.payload
        self.llm.set_seed(settings.seed if settings.seed is not None else self._default_seed)
        greedy = settings.temperature <= 0
        tokens = self.llm.generate(
            prompt,
            temp=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=settings.repetition_penalty,
            grammar=grammar,
            reset=True,
        )
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = request.stop_strings
        longest_stop = max((len(s) for s in stops), default=0)
        stats.finish_reason = FinishReason.LENGTH
        try:
            for token in tokens:
                if self._is_eog(self._vocab, token):
                    stats.finish_reason = FinishReason.EOS
                    break
                stats.new_tokens += 1
                piece = text.decode(self.llm.detokenize([token]))
                self.emit(stream, stats, piece)
                if stream.cancelled:
                    break
                if stops and any(s in stream.text[-(len(piece) + longest_stop) :] for s in stops):
                    stats.finish_reason = FinishReason.STOP_STRING
                    break
                if stats.new_tokens >= prepared.max_new_tokens:
                    break
        finally:
            tokens.close()
        self.emit(stream, stats, text.decode(b"", final=True))


@contextlib.contextmanager
def sequences(parallel: int) -> Iterator[None]:
    """Make the ``llama_cpp.Llama`` built inside hold ``parallel`` sequences, each with its own KV cells.

    llama-cpp-python's ``Llama`` takes neither ``n_seq_max`` nor ``kv_unified``; it reads the context's
    defaults from ``llama_context_default_params``, which this wraps while the model loads.
    """
    if parallel <= 1:
        yield
        return
    import llama_cpp.llama as llama_module

    low = llama_module.llama_cpp
    original = low.llama_context_default_params

    def with_sequences() -> Any:
        params = original()
        params.n_seq_max = parallel
        params.kv_unified = False
        return params

    with _PATCH_LOCK:
        low.llama_context_default_params = with_sequences
        try:
            yield
        finally:
            low.llama_context_default_params = original


_PATCH_LOCK = threading.Lock()


def _close_when_idle(llm: Any, lock: threading.Lock, wait_s: float = 10.0) -> None:
    """Free the model once the generation holding ``lock`` has ended (a stuck one: after ``wait_s``)."""
    if lock.acquire(timeout=wait_s):
        try:
            llm.close()
        finally:
            lock.release()
    # else: leave it to the process's end rather than free memory a running decode uses


def _gpu_name() -> str:
    return "mps" if sys.platform == "darwin" else "cuda"
