"""The OpenAI-compatible API as a Starlette app, serving the process's one shared model.

Routes: ``GET /health`` (open even with a key; 503 while the model loads), ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (streamed as
server-sent events ending in ``data: [DONE]``). Requests share the model through its generation lock,
so they are answered one at a time in arrival order; a client that disconnects cancels its generation
at once and the next one starts.
"""

from __future__ import annotations

import asyncio
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
from workbench.errors import PromptError, PromptTooLongError, WorkbenchError
from workbench.server.errors import ApiError, error_body
from workbench.server.generate import CompletionEvent, CompletionRun, Finished, TextPiece
from workbench.server.middleware import ApiKeyMiddleware, RequestLogMiddleware
from workbench.server.requests import CompletionParams, read_chat_request, read_text_request
from workbench.server.responses import Envelope, usage_of
from workbench.shared import SharedModel

if TYPE_CHECKING:
    from tools import ToolRegistry

#: Bodies larger than this are refused (413) before they are read.
MAX_BODY_BYTES = 8 * 1024 * 1024


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
) -> Starlette:
    """Build the API app for one shared model.

    Args:
        slot: The model to serve (loaded in the background unless it is already).
        model_id: The id clients use (default: the model's label).
        api_key: If set, every route but ``/health`` needs ``Authorization: Bearer <key>``.
        cors_origins: Browser origins allowed to call the API (``*`` for any).
        registry: Tools whose schemas ``GET /v1/tools`` lists (for clients to send as ``tools``).
        load: Start loading the model at once.
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
    ]
    handlers: dict[Any, Callable[..., Any]] = {HTTPException: _http_error, Exception: _unexpected_error}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.served = served
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


async def _chat(served: ServedModel, request: Request) -> Response:
    return await _complete(served, request, chat=True)


async def _text(served: ServedModel, request: Request) -> Response:
    return await _complete(served, request, chat=False)


async def _complete(served: ServedModel, request: Request, *, chat: bool) -> Response:
    body = await _json_body(request)
    if isinstance(body, dict) and isinstance(body.get("model"), str) and not served.answers_to(body["model"]):
        raise _unknown_model(served, body["model"])
    model = served.get()
    read = read_chat_request if chat else read_text_request
    params = read(body, model.default_settings())
    if params.json_schema is not None and not model.capabilities.constrained_json:
        raise ApiError(400, "This model cannot hold its output to a JSON schema.", param="response_format")
    run = CompletionRun(model, params)
    try:
        await asyncio.to_thread(run.start)
    except PromptTooLongError as exc:
        raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from exc
    except PromptError as exc:
        raise ApiError(400, str(exc), param="messages") from exc
    envelope = Envelope(served.id, chat=chat)
    if params.stream:
        return EventSourceResponse(_stream(run, params, envelope, request), sep="\n", ping=15)
    finished = await _collect(run, request)
    request.state.usage = usage_of(finished)
    return JSONResponse(envelope.response(finished))


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


async def _collect(run: CompletionRun, request: Request) -> Finished:
    """Wait for the whole answer, cancelling it if the client disconnects meanwhile."""

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        run.cancel()

    watcher = asyncio.create_task(watch())
    try:
        async for event in _events(run):
            if isinstance(event, Finished):
                return event
    except WorkbenchError as exc:
        raise ApiError(500, f"Generation failed: {exc}", code="generation_failed") from exc
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
        yield _data(error_body(500, f"Generation failed: {exc}", code="generation_failed"))
    yield "[DONE]"


def _data(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# --- errors -------------------------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is over {MAX_BODY_BYTES // 1024 // 1024} MB.")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is over {MAX_BODY_BYTES // 1024 // 1024} MB.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from exc


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
