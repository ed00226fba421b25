"""The tool host: user tool files are imported and called in a process of their own.

A file that calls ``os._exit``, crashes, hangs at import or in a call, or eats memory takes down only
the host; the app goes on. :class:`ToolHost` starts ``python -m tools.host_main`` (see there for the
protocol), names the file that killed or hung it, and starts a fresh host without that file. A call
past its time limit is stopped by killing the host, which is restarted for the next call.

Calls to one host run one at a time. Memory per host: ``WORKBENCH_TOOL_MEMORY_MB`` (default 4096).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tools.errors import ToolRaisedError, ToolTimeoutError
from workbench.errors import ToolDefinitionError

DEFAULT_IMPORT_TIMEOUT_S = 20.0
DEFAULT_CALL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0


@dataclass
class HostedFile:
    """What the host found in one file: tool descriptions (dicts) and error messages."""

    source: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class HostDied(Exception):
    """The host process ended or was killed (internal: turned into a tool error or a load error)."""


class ToolHost:
    """One tool-host process, restarted on demand, and the folders it has loaded.

    Args:
        import_timeout: Seconds one file may take to import before the host is killed and the file skipped.
        on_progress: Told the file being imported (None when loading is over), for a status line.
    """

    def __init__(
        self,
        *,
        import_timeout: float = DEFAULT_IMPORT_TIMEOUT_S,
        on_progress: Callable[[str | None], None] | None = None,
    ) -> None:
        self.import_timeout = import_timeout
        self._on_progress = on_progress or (lambda _: None)
        self._paths: list[str] = []
        self._skip: dict[str, str] = {}  # culprit file -> why it is skipped
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.RLock()
        self._closed = False

    # --- process ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The host process's id, or None when none runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _start(self) -> None:
        if self._closed:
            raise HostDied("the tool host was closed")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = str(Path(__file__).resolve().parents[1])  # this checkout's tools and workbench come first
        env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.host_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
            start_new_session=True,  # its own process group: killing it kills what a tool started
        )
        replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(
            target=_read_replies, args=(process.stdout, replies), name="tool-host-reader", daemon=True
        ).start()
        self._process, self._replies = process, replies
        self._expect("ready", START_TIMEOUT_S)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.kill()
        with contextlib.suppress(Exception):
            process.wait(timeout=5)
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(Exception):
                if pipe is not None:
                    pipe.close()

    def close(self) -> None:
        """Stop the host for good (waits for a call in progress)."""
        with self._lock:
            self._closed = True
            self._kill()

    def _send(self, request: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            raise HostDied(self._death())
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except (OSError, ValueError):
            raise HostDied(self._death()) from None

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if reply is None:
            raise HostDied(self._death())
        return reply

    def _expect(self, event: str, timeout: float) -> dict[str, Any]:
        reply = self._receive(timeout)
        if reply.get("event") != event:
            raise HostDied(f"the tool host answered {reply!r} instead of {event!r}")
        return reply

    def _death(self) -> str:
        process = self._process
        if process is None:
            return "the tool host was not running"
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)
        code = process.returncode
        if code is None:
            return "the tool host stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"the tool host was killed by {signal.Signals(-code).name}"
        return f"the tool host exited with code {code}"

    # --- loading ------------------------------------------------------------------------------
    def load(self, path: Path) -> list[HostedFile]:
        """Import the ``*.py`` files of a folder (or one file) in the host; one result per file.

        A file that kills or hangs the host becomes a result with an error naming it; the host is
        restarted without it and the rest of the folder still loads.
        """
        with self._lock:
            results: dict[str, HostedFile] = {}
            while True:
                current: str | None = None
                try:
                    if self._process is None or self._process.poll() is not None:
                        self._kill()
                        self._start()
                        self._replay()
                    self._send({"op": "load", "path": str(path), "skip": list(self._skip), "schemas": True})
                    while True:
                        reply = self._receive(self.import_timeout if current else START_TIMEOUT_S)
                        if reply["event"] == "importing":
                            current = reply["file"]
                            self._on_progress(current)
                        elif reply["event"] == "file":
                            results[reply["source"]] = HostedFile(
                                reply["source"], reply["tools"], reply["errors"]
                            )
                        elif reply["event"] == "done":
                            break
                except (HostDied, TimeoutError) as exc:
                    if current is None:
                        raise ToolDefinitionError(
                            f"The tool host could not start ({exc}); the tools of {path} are not loaded."
                        ) from None
                    self._skip_culprit(current, exc)
                    results[current] = HostedFile(current, [], [self._skip[current]])
                    continue
                finally:
                    self._on_progress(None)
                if str(path) not in self._paths:
                    self._paths.append(str(path))
                return [results[source] for source in sorted(results)]

    def _skip_culprit(self, file: str, exc: Exception) -> None:
        if isinstance(exc, TimeoutError):
            why = (
                f"{file}: importing it took longer than {self.import_timeout:g} s, so the tool loader was "
                "stopped and the file skipped. Move slow work out of the import (into the tool's call), "
                "then reload."
            )
        else:
            why = (
                f"{file}: importing it killed the tool loader ({exc}), so the file was skipped; the app "
                "and the other tools are fine. Remove what ends the process (os._exit, a crash), then reload."
            )
        self._skip[file] = why
        self._kill()

    def _replay(self) -> None:
        """Import again, without describing them, the folders a previous host had loaded."""
        for path in self._paths:
            self._send({"op": "load", "path": path, "skip": list(self._skip), "schemas": False})
            current = None
            while True:
                try:
                    reply = self._receive(self.import_timeout)
                except (HostDied, TimeoutError) as exc:
                    if current is None:
                        raise HostDied("the tool host stopped answering") from None
                    self._skip_culprit(current, exc)
                    self._start()
                    self._replay()
                    return
                if reply["event"] == "importing":
                    current = reply["file"]
                elif reply["event"] == "done":
                    break

    # --- calling ------------------------------------------------------------------------------
    def call(self, source: str, name: str, arguments: dict[str, Any], timeout: float) -> str:
        """Run one tool call in the host and return its result as text.

        Raises:
            ToolRaisedError: If the tool raised, or ended the host (which is restarted for the next call).
            ToolTimeoutError: If it ran past ``timeout``; the host is killed, so the call really stops.
        """
        with self._lock:
            try:
                if self._process is None or self._process.poll() is not None:
                    self._kill()
                    self._start()
                    self._replay()
                self._send({"op": "call", "source": source, "name": name, "arguments": arguments})
                reply = self._receive(timeout)
            except TimeoutError:
                self._kill()
                raise ToolTimeoutError(
                    f"The tool {name!r} did not finish within its limit of {timeout:g} seconds and was "
                    "stopped. Try simpler arguments, or answer without this tool."
                ) from None
            except HostDied as exc:
                self._kill()
                raise ToolRaisedError(
                    f"The tool {name!r} ended its process ({exc}); it was restarted for the next call. "
                    "Try other arguments, or answer without this tool."
                ) from None
            if reply["event"] == "result":
                return str(reply["text"])
            detail = reply.get("message") or "(no message)"
            raise ToolRaisedError(f"The tool {name!r} failed with {reply.get('type')}: {detail}")


def _read_replies(stream: IO[str], replies: queue.Queue[dict[str, Any] | None]) -> None:
    for line in stream:
        with contextlib.suppress(json.JSONDecodeError):
            replies.put(json.loads(line))
    replies.put(None)


class HostedTool:
    """The callable a :class:`~tools.spec.ToolSpec` holds for a tool that lives in the host.

    Calling it runs the tool in the host (with the registry's default limit); the registry's calls go
    through :meth:`run` with their own limit.
    """

    def __init__(self, host: ToolHost, source: str, name: str, key: str) -> None:
        self.host = host
        self.source = source
        self.__name__ = name
        self.key = key

    def run(self, arguments: dict[str, Any], timeout: float) -> str:
        """Run the tool in the host; see :meth:`ToolHost.call`."""
        return self.host.call(self.source, self.__name__, arguments, timeout)

    def __call__(self, **arguments: Any) -> str:
        """Run the tool in the host with the default limit."""
        return self.run(arguments, DEFAULT_CALL_TIMEOUT_S)

    def __repr__(self) -> str:
        return f"<tool {self.__name__!r} in the tool host, from {self.source}>"
