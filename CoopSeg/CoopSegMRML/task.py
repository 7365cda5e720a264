"""Long work off the GUI thread: a worker thread with progress, cancel and a state the GUI polls.

The work itself (a callable taking ``progress(fraction, message)`` and a cancel ``threading.Event``) must not touch
MRML: the scene belongs to the GUI thread, which polls ``status()`` (e.g. from a QTimer) and, once the state is
FINISHED, turns ``result`` into nodes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from CoopSegLib.inference import Cancelled

RUNNING, FINISHED, FAILED, CANCELLED = "running", "finished", "failed", "cancelled"


@dataclass(frozen=True)
class Status:
    state: str
    fraction: float
    message: str


class BackgroundTask:
    """Runs ``work(progress, cancel)`` in a daemon thread; ``result`` or ``error`` holds the outcome."""

    def __init__(self, work: Callable[[Callable[[float, str], None], threading.Event], Any]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._status = Status(RUNNING, 0.0, "starting")
        self.cancel_event = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="CoopSeg worker", daemon=True)

    def start(self) -> "BackgroundTask":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check; the state becomes CANCELLED when it has."""
        self.cancel_event.set()

    def join(self, timeout: Optional[float] = None) -> Status:
        self._thread.join(timeout)
        return self.status()

    def status(self) -> Status:
        with self._lock:
            return self._status

    def _set(self, state: str, fraction: float, message: str) -> None:
        with self._lock:
            self._status = Status(state, fraction, message)

    def _progress(self, fraction: float, message: str) -> None:
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")
        self._set(RUNNING, fraction, message)

    def _run(self) -> None:
        try:
            self.result = self._work(self._progress, self.cancel_event)
        except Cancelled:
            self._set(CANCELLED, self.status().fraction, "cancelled")
        except BaseException as error:  # reported to the GUI thread, which shows it: never lost in the thread
            self.error = error
            self._set(FAILED, self.status().fraction, str(error) or type(error).__name__)
        else:
            if self.cancel_event.is_set():  # cancelled after the last check: the caller asked for nothing
                self.result = None
                self._set(CANCELLED, 1.0, "cancelled")
            else:
                self._set(FINISHED, 1.0, "done")
