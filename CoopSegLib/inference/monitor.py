"""Progress reports and cancellation for long work: what a GUI passes in to watch and stop a segmentation.

``progress(fraction, message)`` receives fractions that never decrease and end at 1.0. ``cancel`` is either a
callable returning True when the work should stop, or anything with ``is_set()`` (a ``threading.Event``); it is
polled between steps, and a positive answer raises ``Cancelled``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from CoopSegLib.errors import CoopSegError

ProgressCallback = Callable[[float, str], None]


class Cancelled(CoopSegError):
    """The caller cancelled the work; nothing was produced."""


def _as_predicate(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return cancel
    raise TypeError(f"cancel must be a callable or have is_set() (e.g. threading.Event), not {type(cancel).__name__}")


class Monitor:
    """Reports monotone progress to an optional callback and raises ``Cancelled`` when the caller asks to stop."""

    def __init__(self, progress: Optional[ProgressCallback] = None, cancel: Any = None) -> None:
        self._progress = progress
        self._cancelled = _as_predicate(cancel)
        self.fraction = 0.0

    def check(self) -> None:
        """Raise ``Cancelled`` if the caller has asked to stop."""
        if self._cancelled():
            raise Cancelled("cancelled")

    def within(self, start: float, stop: float, prefix: str = "") -> "Monitor":
        """A monitor for one part of the work: its fractions 0-1 land on [start, stop] of this one's, its messages
        get ``prefix``; it shares this one's cancellation."""
        return Monitor(lambda fraction, message: self.report(start + (stop - start) * fraction, prefix + message),
                       self._cancelled)

    def report(self, fraction: float, message: str) -> None:
        """Check for cancellation, then report ``fraction`` (clamped so reports never go backwards)."""
        self.check()
        self.fraction = min(1.0, max(self.fraction, float(fraction)))
        if self._progress is not None:
            self._progress(self.fraction, message)
