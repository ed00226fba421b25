"""Downloads that run beside the app: one background thread per model name, watched and stoppable.

The sidebar starts a :class:`DownloadJob` and redraws its progress (bytes, MB/s, time left) every half
second; a click elsewhere on the page does not interrupt it, and Stop sets its cancel flag, which
:func:`workbench.models.hub.pull` checks at each chunk. Jobs are process-wide (module level, not
``st.cache_resource``, which any browser can empty): two sessions asking for one name share one download.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from workbench.errors import DownloadCancelled, WorkbenchError
from workbench.models.hub import mb, pull

RUNNING, DONE, FAILED, STOPPED = "running", "done", "failed", "stopped"


@dataclass
class DownloadJob:
    """One model's download in a background thread.

    Attributes:
        name: The model name as given.
        state: ``running``, ``done``, ``failed`` or ``stopped``.
        total: Bytes of the whole model; ``done_bytes`` of them are on disk (cached ones included).
        notes: The steps ``pull`` reported (size, quantization chosen, where it went).
        error: What went wrong, for ``failed`` and ``stopped``.
        path: The path to load, once ``done``.
    """

    name: str
    trust_remote_code: bool = False
    state: str = RUNNING
    total: int = 0
    done_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    error: str = ""
    path: str = ""
    canonical: str = ""
    started: float = field(default_factory=time.monotonic)
    _fetched: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event)

    # DownloadWatch
    def planned(self, total: int, cached: int) -> None:
        """The size of the download and what the cache holds already."""
        self.total, self.done_bytes, self.started = total, cached, time.monotonic()

    def advanced(self, nbytes: int) -> None:
        """More bytes arrived."""
        self.done_bytes += nbytes
        self._fetched += nbytes

    def cancelled(self) -> bool:
        """Whether Stop was pressed."""
        return self._cancel.is_set()

    def stop(self) -> None:
        """Ask the download to stop at its next chunk (the files completed so far stay cached)."""
        self._cancel.set()

    @property
    def fraction(self) -> float:
        """How much of the model is on disk, 0 to 1."""
        return min(1.0, self.done_bytes / self.total) if self.total else 0.0

    @property
    def rate(self) -> float:
        """Bytes per second fetched since the download began."""
        elapsed = time.monotonic() - self.started
        return self._fetched / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        """One line for the progress bar: ``45.1 MB / 98.4 MB, 12.3 MB/s, 4 s left``."""
        if not self.total:
            return f"{self.name}: asking the Hub for its files..."
        line = f"{self.canonical or self.name}: {mb(self.done_bytes)} / {mb(self.total)}"
        rate = self.rate
        if rate > 0 and self.state == RUNNING:
            left = (self.total - self.done_bytes) / rate
            line += f", {rate / 1e6:.1f} MB/s, {left:.0f} s left"
        return line

    def run(self) -> None:
        """The thread's body: pull the model, record how it ended."""
        try:
            result = pull(
                self.name, trust_remote_code=self.trust_remote_code, progress=self._note, watch=self
            )
        except DownloadCancelled as exc:
            self.error, self.state = str(exc), STOPPED
        except WorkbenchError as exc:
            self.error, self.state = str(exc), FAILED
        except Exception as exc:  # a bug must not vanish in a thread: show it as a failure
            self.error, self.state = f"{type(exc).__name__}: {exc}", FAILED
        else:
            self.path, self.canonical, self.state = str(result.path), result.name, DONE

    def _note(self, line: str) -> None:
        self.notes.append(line)
        if ": " in line and " file(s), " in line:
            self.canonical = line.split(": ", 1)[0]


_jobs: dict[str, DownloadJob] = {}
_lock = threading.Lock()


def start_download(name: str, trust_remote_code: bool = False) -> DownloadJob:
    """Start downloading a model name in the background, or return the download of it already running."""
    key = name.strip()
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.state == RUNNING:
            return job
        job = DownloadJob(key, trust_remote_code)
        _jobs[key] = job
        threading.Thread(target=job.run, name=f"download {key}", daemon=True).start()
        return job


def download_job(name: str) -> DownloadJob | None:
    """The latest download of a name, running or ended, or None."""
    with _lock:
        return _jobs.get(name.strip())
