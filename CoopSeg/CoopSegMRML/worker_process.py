"""One run of the CoopSegLib worker command in its own process, driven by the GUI's timer without Qt.

``WorkerProcess(args).start()`` launches the command (inside Slicer through ``slicer.util.launchConsoleProcess``,
which merges stderr into stdout); a reader thread only moves its output lines into a queue, so it needs no GIL time
worth speaking of. The GUI calls ``poll()`` from a QTimer: it drains the queue without blocking and returns the
``Status``. ``cancel()`` kills the process at once and the state is CANCELLED from then on, even if the worker had
already finished: nothing of a cancelled run is ever imported. ``close()`` removes the run's temporary folder.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from CoopSegLib.inference.worker import DONE, ERROR, PROGRESS, parse_event

RUNNING, FINISHED, FAILED, CANCELLED = "running", "finished", "failed", "cancelled"
LOG_LINES = 200  # the worker's last lines kept for the error details
_END = object()  # the reader's end-of-output mark

Launcher = Callable[[List[str], Dict[str, str]], Any]  # (args, environment update) -> a Popen-like process


@dataclass(frozen=True)
class Status:
    state: str
    fraction: float
    message: str


def launch_subprocess(args: List[str], environment: Dict[str, str]) -> subprocess.Popen:
    """What slicer.util.launchConsoleProcess does outside Slicer: text output, stderr merged into stdout."""
    env = dict(os.environ, **environment)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


class WorkerProcess:
    """The worker command ``args`` run once; ``folder`` (if given) is removed by ``close``."""

    def __init__(self, args: List[str], environment: Optional[Dict[str, str]] = None,
                 launch: Optional[Launcher] = None, folder: Optional[str] = None) -> None:
        self.args = list(args)
        self.environment = dict(environment or {})
        self._launch = launch or launch_subprocess
        self.folder = folder
        self.process: Any = None
        self.result: Optional[Dict[str, Any]] = None  # the "done" event, once FINISHED
        self._lines: "queue.Queue[Any]" = queue.Queue()
        self._log: deque = deque(maxlen=LOG_LINES)
        self._reader: Optional[threading.Thread] = None
        self._status = Status(RUNNING, 0.0, "starting")
        self._error: Optional[str] = None
        self._ended = False

    # --- running ----------------------------------------------------------------------------------------------
    def start(self) -> "WorkerProcess":
        try:
            self.process = self._launch(self.args, self.environment)
        except OSError as error:
            self.close()
            raise OSError(f"could not start the CoopSeg worker ({self.args[0]}): {error}") from error
        self._reader = threading.Thread(target=self._read, name="CoopSeg worker output", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        try:
            for line in self.process.stdout:
                self._lines.put(line)
        except (OSError, ValueError):  # the pipe was closed under us (cancel)
            pass
        finally:
            self._lines.put(_END)

    def poll(self) -> Status:
        """Take in what the worker wrote since the last call (never waits) and return the state."""
        if self._status.state != RUNNING:
            return self._status
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is _END:
                self._ended = True
                break
            self._take(line)
        if self._ended:
            self.process.wait()
            self._finish(self.process.returncode)
        return self._status

    def _take(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            self._log.append(line.rstrip("\n"))
        elif event["event"] == PROGRESS:
            fraction = max(self._status.fraction, min(1.0, float(event.get("fraction", 0.0))))
            self._status = Status(RUNNING, fraction, str(event.get("message", "")))
        elif event["event"] == DONE:
            self.result = event
        elif event["event"] == ERROR:
            self._error = str(event.get("message", "")) or "the worker reported an error"

    def _finish(self, returncode: int) -> None:
        if returncode == 0 and self.result is not None:
            self._status = Status(FINISHED, 1.0, "done")
            return
        self.result = None
        if self._error is None:
            last = next((line for line in reversed(self._log) if line.strip()), "")
            self._error = (f"the CoopSeg worker stopped unexpectedly (exit status {returncode})"
                           + (f": {last.strip()}" if last else ""))
        self._status = Status(FAILED, self._status.fraction, self._error)
        self.close()

    def wait(self, timeout: Optional[float] = None) -> Status:
        """Block until the worker ends (scripts and tests; the GUI polls instead)."""
        if self.process is not None and self._status.state == RUNNING:
            self.process.wait(timeout)
            if self._reader is not None:
                self._reader.join(timeout)
        return self.poll()

    def cancel(self) -> Status:
        """Kill the worker (if still running), discard any result and remove the temporary folder."""
        if self._status.state in (RUNNING, FINISHED):
            self._status = Status(CANCELLED, self._status.fraction, "cancelled")
            self.result = None
        self._stop()
        self.close()
        return self._status

    def _stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self._reader is not None:
            self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def running(self) -> bool:
        """Whether the worker's process is still alive."""
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> str:
        """The worker's last output lines that were not events (warnings, a traceback): the error's details."""
        return "\n".join(self._log)

    def close(self) -> None:
        """Stop the worker if it still runs and remove the temporary folder; safe to call more than once."""
        if self.process is not None and self.process.poll() is None:
            self._stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
