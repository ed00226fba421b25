"""Talking to a Jupyter Kernel Gateway (or Enterprise Gateway): its REST API and a kernel's websocket.

Why not the maintained clients (measured here, issue 20):

- ``jupyter_client`` has no websocket transport at all (8.10: ZeroMQ only).
- ``jupyter_server``'s ``GatewayKernelClient`` opens the kernel's websocket without the
  ``Authorization`` header, so a gateway with a token refuses it (``401 Unauthorized`` against
  ``jupyter kernelgateway --KernelGatewayApp.auth_token=...``); its channel queues wait by spinning
  (``await asyncio.sleep(0)`` in a loop: 1.26 s of CPU in a 1.5 s wait); its settings are one
  process-wide singleton; it needs an asyncio loop for every call; and it pulls in jupyter_server
  with nbconvert, about 30 packages, for four REST calls. Its ``GatewayKernelManager`` (REST only)
  does work with a token, but alone it saves nothing.

So this module speaks the documented protocol itself: REST with ``urllib`` and the JSON channel
messages of ``/api/kernels/{id}/channels`` over ``websockets``' threaded client, with messages built by
``jupyter_client.session.Session``. Nothing here knows about executions: :mod:`kernel.gateway` does.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from kernel.errors import KernelError, KernelGatewayError

#: The largest websocket message accepted (a 32 MiB image is ~43 MiB once base64 in JSON), in bytes.
MAX_FRAME_BYTES = 64 * 1024 * 1024
#: The channels whose messages are kept (stdin is never used: ``allow_stdin`` is False).
CHANNELS = ("shell", "iopub", "control")


@dataclass(frozen=True)
class GatewayConfig:
    """Where kernels are started: a Kernel Gateway or Enterprise Gateway, and how.

    Attributes:
        url: The gateway's base URL, ``http(s)://HOST:PORT`` (a path prefix is kept).
        token: Sent as ``Authorization: token ...`` with every request ("" sends none).
        kernel_name: The kernel spec to start ("" lets the gateway pick its default).
        env: ``KERNEL_*`` variables sent with each start request, on top of the limits (Enterprise
            Gateway reads ``KERNEL_MEMORY_LIMIT``, ``KERNEL_CPUS_LIMIT``, ``KERNEL_NAMESPACE``, ...).
        request_timeout: Seconds one REST request may take.
    """

    url: str
    token: str = ""
    kernel_name: str = ""
    env: dict[str, str] = field(default_factory=dict)
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise KernelGatewayError(
                f"The Kernel Gateway URL {self.url!r} is not an http(s) URL; give one such as "
                "http://127.0.0.1:8888."
            )

    @property
    def where(self) -> str:
        """The gateway's URL without its path, for messages (never the token)."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


class GatewayRest:
    """The gateway's REST API for one kernel's life: start, model, interrupt, delete.

    Args:
        config: The gateway.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._base = config.url.rstrip("/")

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 0.0
    ) -> Any:
        """Send one request; return its decoded JSON body (None when empty, or for a 404).

        ``timeout`` overrides the configured ``request_timeout`` (seconds) when positive.

        Raises:
            KernelGatewayError: If the gateway cannot be reached, refuses the token or answers an error.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.config.token:
            request.add_header("Authorization", f"token {self.config.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.config.request_timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise self.refusal(error.code, error.read(2000).decode("utf-8", "replace")) from None
        except (urllib.error.URLError, OSError) as error:
            raise self.unreachable(getattr(error, "reason", error)) from None
        return json.loads(raw) if raw.strip() else None

    def refusal(self, status: int, detail: str = "") -> KernelGatewayError:
        """The error for an HTTP error status from the gateway."""
        where = self.config.where
        reason = _reason(detail)
        if status == 401:
            return KernelGatewayError(
                f"The Kernel Gateway at {where} refused the token (HTTP 401). Set "
                "WORKBENCH_KERNEL_GATEWAY_TOKEN to the gateway's token (its --KernelGatewayApp.auth_token "
                "or KG_AUTH_TOKEN), then try again."
            )
        if status == 403:  # Enterprise Gateway refuses some users (root by default), whatever the token
            return KernelGatewayError(
                f"The Kernel Gateway at {where} refused the request (HTTP 403{': ' + reason if reason else ''}). "
                "Check WORKBENCH_KERNEL_GATEWAY_TOKEN; an Enterprise Gateway also needs KERNEL_USERNAME set, in "
                "the app's environment, to a user it allows."
            )
        return KernelGatewayError(
            f"The Kernel Gateway at {where} answered HTTP {status}{': ' + reason if reason else ''}. "
            "Check the gateway's log and its kernel specs (WORKBENCH_KERNEL_GATEWAY_KERNEL), then try again."
        )

    def unreachable(self, reason: object) -> KernelGatewayError:
        """The error for a gateway that does not answer."""
        return KernelGatewayError(
            f"The Kernel Gateway at {self.config.where} cannot be reached ({reason}). Check that it runs "
            "and that WORKBENCH_KERNEL_GATEWAY is right, then try again."
        )


def _reason(detail: str) -> str:
    """The ``message`` or ``reason`` of a Jupyter error body, else its first line."""
    with contextlib.suppress(ValueError, AttributeError):
        body = json.loads(detail)
        return str(body.get("message") or body.get("reason") or "")[:300]
    return detail.strip().splitlines()[0][:300] if detail.strip() else ""


def _request(code: str, silent: bool, expressions: dict[str, str] | None = None) -> dict[str, Any]:
    """The content of an ``execute_request`` the app makes for itself (no history, no stdin)."""
    return {"code": code, "silent": silent, "store_history": False, "user_expressions": expressions or {},
            "allow_stdin": False, "stop_on_error": False}  # fmt: skip


class KernelChannels:
    """One websocket to a kernel on the gateway, its messages sorted into a queue per channel.

    A reader thread receives; sends come from any thread. ``closed`` is set once the connection is
    gone, whoever closed it, and ``close_reason`` says why.

    Args:
        rest: The gateway (its URL and token).
        kernel_id: The kernel's id on the gateway.
        session: Builds the messages; its id is sent, so the gateway keeps messages for a reconnect.
        open_timeout: Seconds the websocket handshake may take.

    Raises:
        KernelGatewayError: If the websocket cannot be opened.
    """

    def __init__(self, rest: GatewayRest, kernel_id: str, session: Session, open_timeout: float) -> None:
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        self.session = session
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {name: queue.Queue() for name in CHANNELS}
        self.closed = threading.Event()
        self.close_reason = ""
        parts = urllib.parse.urlsplit(rest.config.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path.rstrip("/") + f"/api/kernels/{urllib.parse.quote(kernel_id)}/channels"
        url = urllib.parse.urlunsplit((scheme, parts.netloc, path, f"session_id={session.session}", ""))
        headers = {"Authorization": f"token {rest.config.token}"} if rest.config.token else {}
        self._stack = contextlib.ExitStack()
        try:
            # Entered as a context manager (closed by close()), as websockets 16+ asks of its sync client.
            self._socket = self._stack.enter_context(
                connect(
                    url,
                    additional_headers=headers,
                    open_timeout=open_timeout,
                    max_size=MAX_FRAME_BYTES,
                    compression=None,  # base64 images and file chunks barely compress; loopback needs none
                    ping_interval=20,
                    ping_timeout=20,
                )
            )
        except InvalidStatus as error:
            raise rest.refusal(error.response.status_code) from None
        except (OSError, TimeoutError) as error:
            raise rest.unreachable(error) from None
        except Exception as error:  # a handshake the gateway botched
            raise rest.unreachable(f"{type(error).__name__}: {error}") from None
        with contextlib.suppress(OSError):  # small requests go out at once (Nagle cost ~40 ms per round trip)
            self._socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = threading.Thread(target=self._read, name="gateway-channels", daemon=True)
        self._reader.start()

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Send a request on ``channel``; return its message id.

        Raises:
            KernelGatewayError: If the websocket is closed.
        """
        msg = self.session.msg(msg_type, content)
        msg["channel"] = channel
        msg["buffers"] = []
        try:
            self._quick_ack()
            self._socket.send(json.dumps(msg, default=json_default))
        except Exception as error:
            self.closed.set()
            raise KernelGatewayError(
                f"The connection to the kernel on the gateway was lost ({type(error).__name__})."
            ) from error
        return str(msg["header"]["msg_id"])

    def get(self, channel: str, timeout: float) -> dict[str, Any]:
        """The next message of ``channel``, waiting up to ``timeout`` seconds.

        Raises:
            queue.Empty: If none came in time.
        """
        return self.queues[channel].get(timeout=timeout)

    def wait_ready(self, timeout: float) -> str:
        """Ask for ``kernel_info`` until the kernel answers; return "" once it did, else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed.is_set():
            msg_id = self.send("shell", "kernel_info_request", {})
            with contextlib.suppress(queue.Empty):
                while True:
                    if self.get("shell", 1.0).get("parent_header", {}).get("msg_id") == msg_id:
                        return ""
        return self.close_reason or "no reply"

    def run_quietly(self, code: str, timeout: float) -> str:
        """Run ``code`` without history; return what it printed to stdout once the kernel is idle.

        Raises:
            KernelError: If the code raised.
            TimeoutError: If the kernel was not idle within ``timeout`` seconds, or the connection closed.
        """
        msg_id = self.send("shell", "execute_request", _request(code, silent=False))
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.get("iopub", 0.1)
            except queue.Empty:
                if self.closed.is_set():
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            body = msg.get("content", {})
            if msg["msg_type"] == "stream" and body.get("name") == "stdout":
                printed.append(str(body.get("text", "")))
            elif msg["msg_type"] == "error":
                raise KernelError(
                    f"The kernel failed an internal request: {body.get('ename')}: {body.get('evalue')}."
                )
            elif msg["msg_type"] == "status" and body.get("execution_state") == "idle":
                return "".join(printed)
        raise TimeoutError

    def evaluate(self, expression: str, timeout: float) -> str:
        """The ``text/plain`` of ``expression``, from the execute reply's ``user_expressions`` (silent, no history).

        The reply comes on the shell channel, which the gateway does not rate-limit as it does IOPub.

        Raises:
            KernelError: If the expression raised.
            TimeoutError: If no reply came within ``timeout`` seconds, or the connection closed.
        """
        msg_id = self.send(
            "shell", "execute_request", _request("", silent=True, expressions={"value": expression})
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed.is_set():
            with contextlib.suppress(queue.Empty):
                reply = self.get("shell", 0.1)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    value = reply.get("content", {}).get("user_expressions", {}).get("value", {})
                    if value.get("status") != "ok":
                        raise KernelError(
                            f"The kernel failed a file request: {value.get('ename')}: {value.get('evalue')}. "
                            "Restart the kernel and try again."
                        )
                    return str(value.get("data", {}).get("text/plain", ""))
        raise TimeoutError

    def close(self) -> None:
        """Close the websocket (the reader thread ends with it)."""
        with contextlib.suppress(Exception):
            self._stack.close()
        self.closed.set()

    def _quick_ack(self) -> None:
        """Acknowledge the gateway's next segments at once (Linux; reset by the kernel after a while).

        The gateway's websocket does not set TCP_NODELAY, so after its first small message of a reply it
        waits for our ACK, which Linux delays up to 40 ms: a round trip of ``execute("1")`` took ~48 ms
        instead of a few.
        """
        if hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                self._socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosedOK

        try:
            while True:
                try:
                    raw = self._socket.recv()
                except ConnectionClosedOK:
                    break
                self._quick_ack()
                msg = json.loads(raw)
                channel = msg.get("channel")
                if channel in self.queues:
                    msg.setdefault("msg_type", msg.get("header", {}).get("msg_type", ""))
                    self.queues[channel].put(msg)
            self.close_reason = "the gateway closed the connection"
        except Exception as error:
            self.close_reason = f"{type(error).__name__}: {error}"
        finally:
            self.closed.set()
