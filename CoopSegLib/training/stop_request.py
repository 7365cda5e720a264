"""Ctrl-C (SIGINT) and SIGTERM end a training run cleanly: the step in progress finishes, a checkpoint is written.

The handler only records the request; the loop checks it between steps, so a checkpoint never holds a half-done
optimiser update. A second Ctrl-C interrupts at once (KeyboardInterrupt) for a user who does not want to wait.
SIGTERM is what torchrun and cluster schedulers send before killing a job.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class StopRequest:
    """Context manager installing the handlers (main thread only; elsewhere it never fires)."""

    def __init__(self) -> None:
        self.requested: Optional[str] = None  # the signal's name once one arrived
        self._previous: Dict[int, Any] = {}

    def _handle(self, number: int, frame: Optional[FrameType]) -> None:
        if self.requested is not None and number == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.requested = signal.Signals(number).name

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


def ignore_interrupts_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: workers leave Ctrl-C to the main process, which stops between steps."""
    from CoopSegLib.data.slices import seed_worker

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed_worker(worker_id)
