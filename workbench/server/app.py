"""The OpenAI-compatible API as a Starlette app, serving the process's one shared model.

Routes: ``GET /health`` (open even with a key; 503 while the model loads), ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/embeddings`` (the embedded e5 embedder: :mod:`workbench.server.embeddings`),
``POST /v1/chat/completions`` and ``POST /v1/completions`` (streamed as
server-sent events ending in ``data: [DONE]``). Requests share the model through its generation lock,
so they are answered one at a time in arrival order; a client that disconnects cancels its generation
at once and the next one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workbench.chat_model import ChatModel
from workbench.errors import ModelBusyError, PromptError, PromptTooLongError, WorkbenchError
from workbench.modes.tool import call_schema
from workbench.server.errors import ApiError, error_body
from workbench.server.generate import CompletionEvent, CompletionRun, Finished, TextPiece
from workbench.server.middleware import ApiKeyMiddleware, RequestLogMiddleware
from workbench.server.openapi import openapi_document
from workbench.server.requests import CompletionParams, read_chat_request, read_text_request
from workbench.server.responses import Envelope, usage_of
from workbench.shared import SharedModel

if TYPE_CHECKING:
    from tools import ToolRegistry

#: Bodies larger than this are refused (413) before they are read.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: A body must arrive within this many seconds of its headers (a client sending it byte by byte, to
#: hold a connection open, is answered 408 and cut off).
BODY_TIMEOUT_S = 30.0
#: How deep JSON may nest in a body (Python's own parser recurses; no request needs more).
MAX_DEPTH = 64


@dataclass
class ServedModel:
    """The model behind the API: its slot, its public id and how its load went.

    Attributes:
        slot: The shared model slot (loaded in the background at start-up).
        id: The id clients send as ``model`` and see in ``/v1/models``.
        created: Unix time the server started (the models' ``created``).
    """

    slot: SharedModel
    id: str
    created: int = 0
    error: str | None = None
    registry: ToolRegistry | None = None

    def __post_init__(self) -> None:
        self.created = self.created or int(time.time())

    def start_loading(self) -> None:
        """Load the model in a background thread (requests get 503 until it is in memory)."""

        def load() -> None:
            try:
                self.slot.get()
            except WorkbenchError as exc:
                self.error = str(exc)

        threading.Thread(target=load, name="workbench-serve-load", daemon=True).start()

    def get(self) -> ChatModel:
        """The loaded model.

        Raises:
            ApiError: 503 while it loads or if its load failed.
        """
        if self.error is not None:
            raise ApiError(503, f"The model could not be loaded: {self.error}", code="model_load_failed")
        if not self.slot.loaded:
            raise ApiError(503, "The model is still loading; retry in a few seconds.", code="model_loading")
        return self.slot.get()

    def answers_to(self, name: str) -> bool:
        """Whether a request's ``model`` names this model (its id or the spec's source)."""
        return name in (self.id, self.slot.spec.source)

    def card(self) -> dict[str, Any]:
        """The model's entry in ``/v1/models``."""
        card: dict[str, Any] = {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": "workbench",
        }
        if self.slot.loaded:
            info = self.slot.get().info
            card["context_length"] = card["max_model_len"] = info.context_length
        return card


def served_model_id(slot: SharedModel) -> str:
    """The id a model is served under: its label without decorations."""
    return slot.spec.label.removesuffix(" (embedded)")


def create_app(
    slot: SharedModel,
    *,
    model_id: str | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    registry: ToolRegistry | None = None,
    load: bool = True,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> Starlette:
    """Build the API app for one shared model.

    Args:
        slot: The model to serve (loaded in the background unless it is already).
        model_id: The id clients use (default: the model's label).
        api_key: If set, every route but ``/health`` needs ``Authorization: Bearer <key>``.
        cors_origins: Browser origins allowed to call the API (``*`` for any).
        registry: Tools whose schemas ``GET /v1/tools`` lists (for clients to send as ``tools``).
        load: Start loading the model at once.
        body_timeout_s: Seconds a request body may take to arrive (408 after that).
    """
    served = ServedModel(slot, model_id or served_model_id(slot))
    if load and not slot.loaded:
        served.start_loading()
    middleware = [Middleware(RequestLogMiddleware)]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],
            )
        )
    if api_key:
        middleware.append(Middleware(ApiKeyMiddleware, api_key=api_key, open_paths=("/health",)))
    routes = [
        Route("/health", _route(served, _health), methods=["GET"]),
        Route("/v1/models", _route(served, _models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _route(served, _model), methods=["GET"]),
        Route("/v1/chat/completions", _route(served, _chat), methods=["POST"]),
        Route("/v1/tools", _route(served, _tools), methods=["GET"]),
        Route("/v1/completions", _route(served, _text), methods=["POST"]),
        Route("/v1/embeddings", _route(served, _embeddings), methods=["POST"]),
        Route("/openapi.json", _route(served, _openapi), methods=["GET"]),
    ]
    handlers: dict[Any, Callable[..., Any]] = {HTTPException: _http_error, Exception: _unexpected_error}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.served = served
    app.state.body_timeout_s = body_timeout_s
    served.registry = registry
    return app


Handler = Callable[[ServedModel, Request], Any]


def _route(served: ServedModel, handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(served, request)
            return response
        except ApiError as exc:
            headers = {"Retry-After": "5"} if exc.status == 503 else None
            return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    return endpoint


# --- routes -------------------------------------------------------------------------------------
async def _health(served: ServedModel, request: Request) -> Response:
    if served.error is not None:
        return JSONResponse({"status": "error", "error": served.error}, status_code=503)
    if not served.slot.loaded:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ok", "model": served.id})


async def _models(served: ServedModel, request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [served.card()]})


async def _model(served: ServedModel, request: Request) -> Response:
    name = request.path_params["model_id"]
    if not served.answers_to(name):
        raise _unknown_model(served, name)
    return JSONResponse(served.card())


async def _tools(served: ServedModel, request: Request) -> Response:
    schemas = served.registry.schemas() if served.registry is not None else []
    return JSONResponse({"object": "list", "data": schemas})


async def _openapi(served: ServedModel, request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _chat(served: ServedModel, request: Request) -> Response:
    return await _complete(served, request, chat=True)


async def _text(served: ServedModel, request: Request) -> Response:
    return await _complete(served, request, chat=False)


async def _embeddings(served: ServedModel, request: Request) -> Response:
    """The embedded embedder (see :mod:`workbench.server.embeddings`); needs no chat model."""
    from workbench.server.embeddings import embeddings_response

    body = await _json_body(request)
    return JSONResponse(await _in_worker(embeddings_response, body))


async def _complete(served: ServedModel, request: Request, *, chat: bool) -> Response:
    body = await _json_body(request)
    if isinstance(body, dict) and isinstance(body.get("model"), str) and not served.answers_to(body["model"]):
        raise _unknown_model(served, body["model"])
    model = served.get()
    read = read_chat_request if chat else read_text_request
    params = read(body, model.default_settings())
    if not chat and not model.capabilities.prompt_prefix:
        raise ApiError(
            400,
            "This model runs on a chat server, which cannot continue a raw prompt; use /v1/chat/completions.",
        )
    if params.json_schema is not None and not model.capabilities.constrained_json:
        raise ApiError(400, "This model cannot hold its output to a JSON schema.", param="response_format")
    await _in_worker(_check_schemas, model, params)
    run = CompletionRun(model, params)
    field = "messages" if chat else "prompt"
    # A client that leaves while its prompt is read cancels the run: it then never takes the model.
    watcher = asyncio.create_task(_cancel_on_disconnect(run, request))
    try:
        await _in_worker(run.start)
    except PromptTooLongError as exc:
        raise ApiError(400, str(exc), param=field, code="context_length_exceeded") from exc
    except ModelBusyError as exc:  # every slot busy, the queue full: 503 with Retry-After
        raise ApiError(503, str(exc), code="server_busy") from exc
    except PromptError as exc:
        raise ApiError(400, str(exc), param=field) from exc
    except asyncio.CancelledError:  # the server stops: the prompt still being read must not start
        run.cancel()
        raise
    finally:
        watcher.cancel()
    envelope = Envelope(served.id, chat=chat)
    if params.stream:
        return EventSourceResponse(_stream(run, params, envelope, request), sep="\n", ping=15)
    finished = await _collect(run, request)
    request.state.usage = usage_of(finished)
    return JSONResponse(envelope.response(finished))


async def _in_worker(function: Callable[..., Any], *args: Any) -> Any:
    """Run blocking work in a daemon thread (not asyncio's pool, which the interpreter waits for at exit).

    So a stopped server exits at once, whatever a request is doing (see :func:`workbench.server.serve.serve`).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = function(*args), None
        except BaseException as exc:  # reported to the awaiting request
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the event loop is gone (server shutdown)
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="workbench-serve-prepare", daemon=True).start()
    return await future


# --- streaming ----------------------------------------------------------------------------------
_END = object()


async def _events(run: CompletionRun) -> AsyncIterator[CompletionEvent]:
    """The run's events from its worker thread; leaving early (a disconnect) cancels the generation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutdown)
            run.cancel()

    def work() -> None:
        try:
            for event in run.events():
                put(event)
        except BaseException as exc:  # reported to the async side
            put(exc)
        put(_END)

    threading.Thread(target=work, name="workbench-serve-run", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, TextPiece | Finished)
            yield item
    finally:
        run.cancel()  # no-op when it ended; stops the model at once when the client left


async def _cancel_on_disconnect(run: CompletionRun, request: Request) -> None:
    """Cancel ``run`` when the client disconnects (the body has been read: nothing else can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    run.cancel()


async def _collect(run: CompletionRun, request: Request) -> Finished:
    """Wait for the whole answer, cancelling it if the client disconnects meanwhile."""
    watcher = asyncio.create_task(_cancel_on_disconnect(run, request))
    try:
        async for event in _events(run):
            if isinstance(event, Finished):
                return event
    except WorkbenchError as exc:  # its message says "Generation failed: ..." itself
        raise ApiError(500, str(exc), code="generation_failed") from exc
    finally:
        watcher.cancel()
    raise ApiError(500, "The generation ended without an answer.", code="generation_failed")


async def _stream(
    run: CompletionRun, params: CompletionParams, envelope: Envelope, request: Request
) -> AsyncIterator[str]:
    usage = params.include_usage
    if envelope.chat:
        yield _data(envelope.chunk({"role": "assistant", "content": ""}, usage=usage))
    try:
        async for event in _events(run):
            if isinstance(event, TextPiece):
                piece: dict[str, Any] | str = {"content": event.text} if envelope.chat else event.text
                yield _data(envelope.chunk(piece, usage=usage))
            else:
                request.state.usage = usage_of(event)
                for chunk in envelope.closing_chunks(event, usage):
                    yield _data(chunk)
    except WorkbenchError as exc:  # headers are sent: report in the stream, as OpenAI does
        yield _data(error_body(500, str(exc), code="generation_failed"))
    yield "[DONE]"


def _data(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _check_schemas(model: ChatModel, params: CompletionParams) -> None:
    """Refuse (400) a schema the engine cannot hold output to, before anything is generated.

    A response format must hold strictly (every answer validates against it); tools' schemas need only
    make a grammar, as their arguments are validated when a tool runs.
    """
    check = getattr(model.backend, "check_json_schema", None)
    if check is None:
        return
    schemas: list[tuple[str, dict[str, Any], bool]] = []
    if params.json_schema is not None:
        schemas.append(("response_format", params.json_schema, True))
    if params.tools and model.dialect.tool_call_open:
        schemas += [("tools", call_schema([tool]), False) for tool in params.tools]
    for param, schema, strict in schemas:
        try:
            check(schema, strict=strict)
        except WorkbenchError as exc:
            raise ApiError(400, f"The schema in '{param}' cannot be used: {exc}", param=param) from exc


# --- errors -------------------------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    too_big = ApiError(413, f"The request body is over {MAX_BODY_BYTES // 1024 // 1024} MB.")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_big
            chunks.append(chunk)

    timeout = float(request.app.state.body_timeout_s)
    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError as exc:
        raise ApiError(408, f"The request body did not arrive within {timeout:g} s.") from exc
    try:
        body = json.loads(b"".join(chunks), parse_constant=_not_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise ApiError(400, f"The request body nests deeper than {MAX_DEPTH} levels.") from exc
    _check_values(body)
    return body


def _not_json(constant: str) -> Any:
    """Python's parser takes ``NaN`` and ``Infinity``; JSON has neither."""
    raise json.JSONDecodeError(f"{constant} is not a JSON value", constant, 0)


def _check_values(body: Any) -> None:
    r"""Refuse JSON nested over :data:`MAX_DEPTH` levels or holding strings that are not Unicode text.

    ``json.loads`` accepts ``"\ud800"`` (half of a UTF-16 pair), which no encoder can write back; both
    are refused here, naming the top-level field, rather than failing deep inside.
    """
    stack: list[tuple[Any, int, str | None]] = [(body, 0, None)]
    while stack:
        value, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(400, f"'{field}' nests deeper than {MAX_DEPTH} levels.", param=field)
        if isinstance(value, str):
            if not _is_text(value):
                raise ApiError(
                    400,
                    f"'{field}' holds a lone UTF-16 surrogate (such as \\ud800), which is not text.",
                    param=field,
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    raise ApiError(
                        400, "A key holds a lone UTF-16 surrogate, which is not text.", param=field
                    )
                stack.append((item, depth + 1, field or key))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, field) for item in value)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unknown_model(served: ServedModel, name: str) -> ApiError:
    return ApiError(
        404,
        f"The model {name!r} does not exist here; this server serves {served.id!r} (see GET /v1/models).",
        param="model",
        code="model_not_found",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {
        404: f"No route {request.url.path}.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }
    body = error_body(exc.status_code, message.get(exc.status_code, str(exc.detail)))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body(500, f"Internal error: {exc}"), status_code=500)
