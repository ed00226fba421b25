"""The llama.cpp engine on the real embedded model: choosing it, its errors, sampling, grammars, KV states.

The behaviour both engines share (answers, Stop, two threads, prompts too long, tools, code) runs on both
through the parametrized ``chat_model`` fixture; this file holds what is particular to llama.cpp.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engines import embedded_spec
from workbench.chat_model import ChatModel
from workbench.errors import ModelLoadError
from workbench.messages import Message, Role
from workbench.models.backends import choose_backend, llama_cpp_installed
from workbench.models.generation import SamplingSettings
from workbench.models.llamacpp_grammar import json_schema_gbnf
from workbench.models.llamacpp_slot import add_token
from workbench.models.loading import embedded_gguf_path
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model

pytestmark = pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed")

ROOT = Path(__file__).resolve().parent.parent
GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=24)
CITY = {
    "type": "object",
    "properties": {"city": {"enum": ["Berlin", "Paris"]}},
    "required": ["city"],
    "additionalProperties": False,
}
CALL_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"const": "calculator"},
        "arguments": {
            "type": "object",
            # Bounded, so that the call ends well within max_new_tokens whatever the model writes in it.
            "properties": {"expression": {"type": "string", "maxLength": 20}},
            "required": ["expression"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llama_model() -> ChatModel:
    return shared_model(embedded_spec("llama.cpp")).get()


@pytest.mark.parametrize(
    ("spec", "engine"),
    [
        (ModelSpec(), "llama.cpp"),
        (ModelSpec(source="/models/qwen2.5-7b-instruct-q4_k_m.GGUF"), "llama.cpp"),
        (ModelSpec(device="cpu"), "llama.cpp"),
        (ModelSpec(source="/models/Qwen2.5-0.5B-Instruct"), "transformers"),
        (ModelSpec(quantize="int8"), "transformers"),
        (ModelSpec(device="cuda"), "transformers"),  # this llama.cpp build has no GPU backend
        (ModelSpec(backend="transformers"), "transformers"),
        (ModelSpec(source="/models/folder", backend="llama.cpp"), "llama.cpp"),
    ],
)
def test_auto_picks_llama_cpp_for_gguf_files_on_the_cpu(spec, engine):
    assert choose_backend(spec) == engine


def test_unknown_backend_is_refused():
    with pytest.raises(
        ModelLoadError, match=r"Unknown backend 'vllm'; choose one of auto, transformers, llama\.cpp"
    ):
        choose_backend(ModelSpec(backend="vllm"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            ModelSpec(backend="llama.cpp", quantize="int4"),
            "--quantize int4 is for the transformers backend on a CUDA GPU; SmolLM2-135M-Instruct.Q4_1.gguf is "
            "quantized already (Q4_1). Leave --quantize at none, or pick a GGUF file with fewer bits per weight.",
        ),
        (
            ModelSpec(backend="llama.cpp", device="cuda"),
            "Device 'cuda' was asked for but this llama.cpp build has no GPU support; use --device cpu, --backend "
            "transformers, or reinstall llama-cpp-python with CMAKE_ARGS=-DGGML_CUDA=on (or -DGGML_METAL=on).",
        ),
        (
            ModelSpec(quantize="int8", device="cpu"),
            "--quantize int8 needs a CUDA GPU (torchao's or bitsandbytes' kernels) and this model runs on cpu. On a "
            "CPU, run a quantized GGUF file (Q4_K_M, Q8_0, ...) with the llama.cpp backend instead: --model "
            "file.gguf --backend llama.cpp.",
        ),
    ],
)
def test_options_that_cannot_apply_say_what_to_do(spec, message):
    with pytest.raises(ModelLoadError) as info:
        ChatModel.load(spec)
    assert str(info.value) == message


def test_a_folder_on_llama_cpp_says_to_use_transformers(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 8)
    with pytest.raises(
        ModelLoadError, match=r"loads \.gguf files and .* is a folder; use --backend transformers"
    ):
        ChatModel.load(ModelSpec(source=str(tmp_path), backend="llama.cpp"))


def test_an_unknown_architecture_gets_llama_cpps_reason(tmp_path):
    data = bytearray(embedded_gguf_path().read_bytes())
    key = b"general.architecture" + (8).to_bytes(4, "little") + (5).to_bytes(8, "little") + b"llama"
    start = data.index(key) + len(key) - 5
    data[start : start + 5] = b"xxxxx"
    path = tmp_path / "other.gguf"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError) as info:
        ChatModel.load(ModelSpec(source=str(path), backend="llama.cpp"))
    assert str(info.value) == (
        f"Could not load the model from {path}: unknown model architecture: 'xxxxx'. The files may be corrupt, "
        "truncated or of an unsupported architecture; check them or choose another model."
    )


def test_a_bad_file_leaves_the_loaded_model_working(llama_model, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(embedded_gguf_path().read_bytes()[: 4 << 20])
    with pytest.raises(ModelLoadError, match="it is truncated"):
        ChatModel.load(ModelSpec(source=str(broken), backend="llama.cpp"))
    # Exact on purpose (a schema holds the answer to two cities): the model still answers as it did.
    question = Message(Role.USER, "Which city is the capital of France? Answer in JSON.")
    assert llama_model.stream([question], GREEDY, json_schema=CITY).result(timeout=120) == '{"city":"Paris"}'


def test_the_llama_cpp_path_imports_neither_torch_nor_transformers():
    code = (
        "import sys, json\n"
        "from workbench.chat_model import ChatModel\n"
        "from workbench.models.generation import SamplingSettings\n"
        "from workbench.models.spec import ModelSpec\n"
        "model = ChatModel.load(ModelSpec())\n"
        "reply, _ = model.chat('Which city is the capital of France?', "
        "settings=SamplingSettings(temperature=0.0, max_new_tokens=12))\n"
        "print(json.dumps({'backend': model.info.backend, 'reply': reply, "
        "'loaded': sorted(m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "llama.cpp"
    assert result["reply"].strip()  # which words is this 135M model's greedy pick, which changes with the CPU
    assert result["loaded"] == []


def test_the_sidebar_line_names_engine_precision_threads_and_kernels(llama_model):
    info = llama_model.info
    threads = f"{info.threads} thread{'s' if info.threads > 1 else ''}"
    assert info.cpu_kernels  # the portable build's variant (zen4, haswell, ...) or built-in
    assert info.summary() == (
        "**SmolLM2-135M-Instruct (embedded)** · llama.cpp · cpu · Q4_1 · GGUF · "
        f"{threads} · {info.cpu_kernels} kernels · context 8192"
    )
    assert info.to_dict()["backend"] == "llama.cpp" and info.load_seconds < 10


def test_stop_strings_end_the_reply(llama_model):
    # The schema writes the days (the model's own list would be its greedy pick, which changes with the CPU).
    stream = llama_model.stream(
        [Message(Role.USER, "List the days of the week.")],
        GREEDY.with_(max_new_tokens=60),
        stop_strings=("Wednesday",),
        json_schema={"enum": ["Monday Tuesday Wednesday Thursday Friday"]},
    )
    text = stream.result(timeout=120)
    assert stream.stats.finish_reason == "stop_string"
    assert "Tuesday" in text and text.endswith("Wednesday") and "Thursday" not in text


def test_a_seed_repeats_a_sampled_reply(llama_model):
    settings = SamplingSettings(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=1234)
    messages = [Message(Role.USER, "Write a short poem about the sea.")]
    first = llama_model.stream(messages, settings).result()
    second = llama_model.stream(messages, settings).result()
    others = {llama_model.stream(messages, settings.with_(seed=seed)).result() for seed in (1, 2, 3)}
    assert first == second
    assert len(others | {first}) > 1


def test_schema_constrained_output_is_compact_json(llama_model):
    grammar = json_schema_gbnf(CALL_SCHEMA)
    assert 'space ::= ""' in grammar
    stream = llama_model.stream(
        [Message(Role.USER, "What is the sum of 1234 and 4321? Call the calculator.")],
        GREEDY.with_(max_new_tokens=60),
        json_schema=CALL_SCHEMA,
    )
    text = stream.result(timeout=120)
    call = json.loads(text)
    assert call["name"] == "calculator" and isinstance(call["arguments"]["expression"], str)
    assert text == json.dumps(call, separators=(",", ":"))
    assert stream.stats.finish_reason == "eos"


def run_turns(model, conversations, questions, order):
    """Ask each conversation's questions in ``order`` (names); return each one's replies."""
    histories = {name: list(history) for name, history in conversations.items()}
    replies: dict[str, list[str]] = {name: [] for name in conversations}
    for name in order:
        histories[name].append(Message(Role.USER, questions[name][len(replies[name])]))
        text = model.stream(histories[name], GREEDY).result(timeout=120)
        replies[name].append(text)
        histories[name].append(model.dialect.parse(text))
    return replies


def test_two_conversations_taking_turns_get_what_each_gets_alone(llama_model):
    """Each conversation's KV cache is saved when the other one runs and restored for its next turn.

    The reference is each conversation run alone (its cache kept between turns, as llama.cpp does): a
    prompt evaluated in one batch can differ in the last bits from one evaluated in two, so a run from
    scratch is not the reference; the restored cache must give exactly what the kept one gives.
    """
    backend = llama_model.backend
    conversations = {
        "a": [Message(Role.SYSTEM, "You are a geography teacher. " * 12)],
        "b": [Message(Role.SYSTEM, "You are a cooking teacher. " * 12)],
    }
    questions = {
        "a": ["Which city is the capital of France?", "And of Germany?"],
        "b": ["Name a fruit.", "And a vegetable?"],
    }
    alone = {}
    for name in conversations:
        backend.states.forget()
        alone.update(run_turns(llama_model, {name: conversations[name]}, questions, [name, name]))
    backend.states.forget()
    restores = backend.states.restores
    taking_turns = run_turns(llama_model, conversations, questions, ["a", "b", "a", "b"])
    assert backend.states.restores >= restores + 2  # each second turn found its own conversation's cache
    assert taking_turns == alone


def fresh_replies(model: ChatModel, system: str, questions: list[str]) -> list[str]:
    """Each turn's greedy reply with the cache emptied first: every prompt evaluated from its first token."""
    history = [Message(Role.SYSTEM, system)]
    replies = []
    for question in questions:
        history.append(Message(Role.USER, question))
        model.backend.states.forget()  # type: ignore[attr-defined]
        text = model.stream(history, GREEDY).result(timeout=120)
        replies.append(text)
        history.append(model.dialect.parse(text))
    return replies


@pytest.mark.parametrize("settled", [True, False], ids=["answers settled", "settling skipped"])
def test_greedy_is_the_same_from_a_kept_cache_as_afresh(llama_model, monkeypatch, settled):
    """A turn continued from the cache (the previous turns' cells kept) answers as the same prompt afresh.

    The kept cells include the previous answers, decoded one token at a time, and the second ask of
    the same conversation finds its whole prompt cached: both must give the fresh prompt's text. The
    answers are settled after delivery, or (when another generation waits) not: then the next prompt
    evaluates them itself.
    """
    system = "You are a helpful assistant who answers in one short sentence."
    questions = ["Name a colour.", "Name another one.", "And a third?"]
    afresh = fresh_replies(llama_model, system, questions)
    if not settled:
        monkeypatch.setattr(llama_model.backend, "after_decode", lambda: None)
    llama_model.backend.states.forget()
    kept = run_turns(llama_model, {"a": [Message(Role.SYSTEM, system)]}, {"a": questions}, ["a"] * 3)["a"]
    assert kept == afresh
    history = [Message(Role.SYSTEM, system), Message(Role.USER, questions[0])]
    again = [llama_model.stream(history, GREEDY).result(timeout=120) for _ in range(2)]
    assert again == [afresh[0], afresh[0]]  # the same messages, their prompt cached whole the second time


def test_greedy_is_the_same_after_another_conversation_ran(llama_model):
    """A conversation whose first turn follows another's keeps the shared template head, and answers alike."""
    system = "You are a helpful assistant who answers in one short sentence."
    afresh = fresh_replies(llama_model, system, ["Name a fruit."])
    fresh_replies(llama_model, system, ["Name a vegetable."])  # leaves its cells (the same system block)
    after_other = llama_model.stream(
        [Message(Role.SYSTEM, system), Message(Role.USER, "Name a fruit.")], GREEDY
    ).result(timeout=120)
    assert after_other == afresh[0]


@pytest.mark.parametrize(
    ("start", "end", "size", "cuts"),
    [
        (0, 5, 512, [(0, 5)]),
        (0, 513, 512, [(0, 511), (511, 513)]),  # never a last batch of one token
        (10, 12, 512, [(10, 12)]),
        (0, 1024, 512, [(0, 512), (512, 1024)]),
        (0, 1, 512, [(0, 1)]),  # a one-token prompt is one token
        (3, 3, 512, []),
    ],
)
def test_batches_never_leave_a_single_token(start, end, size, cuts):
    from workbench.models.llamacpp_state import batches

    assert batches(start, end, size) == cuts


def prompt_logits(scheduler: Any, tokens: list[int], cuts: list[tuple[int, int]]) -> np.ndarray:
    """The last token's logits after evaluating ``tokens`` in a free slot's sequence, cut as ``cuts``."""
    import llama_cpp

    ctx = scheduler.llm.ctx
    memory = llama_cpp.llama_get_memory(ctx)
    seq = scheduler.slots[-1].seq
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    try:
        llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
        for start, stop in cuts:
            for n, pos in enumerate(range(start, stop)):
                add_token(batch, n, tokens[pos], pos, seq, pos == len(tokens) - 1)
            batch.n_tokens = stop - start
            assert llama_cpp.llama_decode(ctx, batch) == 0
        vocab = llama_cpp.llama_vocab_n_tokens(scheduler.llm._model.vocab)
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(vocab,)).copy()
    finally:
        llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
        llama_cpp.llama_batch_free(batch)


def test_a_prompts_logits_do_not_depend_on_how_it_is_cut_into_batches(llama_model):
    """What every kept, restored or shared cache rests on, bit for bit (no flash attention: see its loader).

    Greedy texts alone would miss a difference too small to flip a token on these prompts.
    """
    scheduler = llama_model.backend.scheduler
    tokens = llama_model.backend.tokenize("The quick brown fox jumps over the lazy dog. " * 12)
    end = len(tokens)
    with scheduler.step_lock:
        whole = prompt_logits(scheduler, tokens, [(0, end)])
        for cuts in ([(0, end - 2), (end - 2, end)], [(0, 64), (64, end)], [(0, 32), (32, 96), (96, end)]):
            assert np.array_equal(prompt_logits(scheduler, tokens, cuts), whole), cuts


def test_flash_attention_is_there_for_those_who_ask(monkeypatch):
    monkeypatch.setenv("WORKBENCH_FLASH_ATTN", "1")
    model = ChatModel.load(embedded_spec("llama.cpp").replace(parallel=2))
    import llama_cpp

    llm = model.backend.scheduler.llm  # type: ignore[attr-defined]
    assert llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    question = Message(Role.USER, "What is the capital of France? Answer in JSON.")
    assert model.stream([question], GREEDY, json_schema=CITY).result(timeout=120) == '{"city":"Paris"}'
