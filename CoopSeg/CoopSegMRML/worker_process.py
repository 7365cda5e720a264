"""One run of the CoopSegLib worker command in its own process, driven by the GUI's timer without Qt.

``WorkerProcess(args).start()`` launches the command (inside Slicer through ``slicer.util.launchConsoleProcess``,
which merges stderr into stdout); a reader thread only moves its output lines into a queue, so it needs no GIL time
worth speaking of. The GUI calls ``poll()`` from a QTimer: it drains the queue without blocking and returns the
``Status``. ``cancel()`` kills the process at once and the state is CANCELLED from then on, even if the worker had
already finished: nothing of a cancelled run is ever imported. ``close()`` removes the run's temporary folder.

Inside Slicer, PythonSlicer is a launcher that runs python-real as its child on the same stdout pipe: killing the
launcher alone leaves the child running and the pipe open. So the worker starts in a process group of its own
(a new session on POSIX, CREATE_NEW_PROCESS_GROUP on Windows) and ``cancel`` kills the whole group (killpg; taskkill
/T on Windows; psutil is not part of Slicer's Python). Nothing on the calling (GUI) thread waits for more than
STOP_WAIT seconds: the reader thread closes the pipe itself when the output ends.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from CoopSegLib.inference.worker import DONE, ERROR, PROGRESS, parse_event

RUNNING, FINISHED, FAILED, CANCELLED = "running", "finished", "failed", "cancelled"
LOG_LINES = 200  # the worker's last lines kept for the error details
_END = object()  # the reader's end-of-output mark
STOP_WAIT = 0.5  # seconds cancel() waits for the killed launcher to be reaped; never longer
UNDECODABLE = "(a worker output line that is not UTF-8 text was skipped)"

Launcher = Callable[[List[str], Dict[str, str]], Any]  # (args, environment update) -> a Popen-like process


@dataclass(frozen=True)
class Status:
    state: str
    fraction: float
    message: str


def own_group_options() -> Dict[str, Any]:
    """Popen arguments that start a process in a process group of its own (so its whole tree can be killed), with
    no console window on Windows (as slicer.util.launchConsoleProcess hides it)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def launch_subprocess(args: List[str], environment: Dict[str, str],
                      base_environment: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """What slicer.util.launchConsoleProcess does (text output, stderr merged into stdout), in a process group of
    its own; ``environment`` updates ``base_environment`` (default: this process's)."""
    env = dict(os.environ if base_environment is None else base_environment, **environment)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            **own_group_options())


def own_group(process: Any) -> bool:
    """Whether ``process`` (just started) leads a process group of its own (POSIX; always False on Windows)."""
    try:
        return os.name != "nt" and os.getpgid(process.pid) == process.pid
    except (ProcessLookupError, PermissionError, AttributeError):
        return False


def kill_tree(process: Any, group: bool) -> None:
    """Kill ``process`` and every process it started (``group``: it leads its own POSIX process group), without
    waiting for them; also when the launcher itself has already ended and left its children."""
    if os.name == "nt":
        # taskkill /T ends the children too; not waited for (it runs beside us and ends by itself).
        subprocess.Popen(["taskkill", "/F", "/T", "/PID", str(process.pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, creationflags=subprocess.CREATE_NO_WINDOW)
    else:
        if group:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # the group has gone already
                pass
    if process.poll() is None:
        process.kill()


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
        self._group = False

    # --- running ----------------------------------------------------------------------------------------------
    def start(self) -> "WorkerProcess":
        try:
            self.process = self._launch(self.args, self.environment)
        except OSError as error:
            self.close()
            raise OSError(f"could not start the CoopSeg worker ({self.args[0]}): {error}") from error
        self._group = own_group(self.process)
        self._reader = threading.Thread(target=self._read, name="CoopSeg worker output", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        """Move output lines into the queue; a line that is not UTF-8 is skipped (noted in the log), not fatal.
        Closes the pipe at the end of the output, here rather than on the GUI thread, where closing a pipe that this
        thread reads would wait for it."""
        stdout = self.process.stdout
        stream = getattr(stdout, "buffer", stdout)  # bytes, so one bad line cannot break the decoding of the rest
        try:
            for line in stream:
                if isinstance(line, bytes):
                    try:
                        line = line.decode("utf-8")
                    except UnicodeDecodeError:
                        line = UNDECODABLE + "\n"
                self._lines.put(line)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            self._lines.put(_END)
            try:
                stdout.close()
            except (OSError, ValueError):
                pass

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
            returncode = self.process.poll()  # the output ended; the process may need a moment more to exit
            if returncode is not None:
                self._finish(returncode)
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
        """Kill the worker's whole process tree; waits at most STOP_WAIT seconds (to reap the launcher)."""
        if self.process is None:
            return
        if self.process.poll() is None or self._group:
            kill_tree(self.process, self._group)
        try:
            self.process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            pass

    def _reader_alive(self) -> bool:
        """Whether some process of the tree may still hold the output pipe (the launcher may have ended first)."""
        return self._reader is not None and self._reader.is_alive()

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
        if self.process is not None and (self.process.poll() is None or self._reader_alive()):
            self._stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
