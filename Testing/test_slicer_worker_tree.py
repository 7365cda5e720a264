"""Cancel stops the worker's whole process tree, as it runs inside Slicer: PythonSlicer is a launcher that runs
python-real as its child on the same stdout pipe. Here a launcher-like parent process starts the "worker" (a real
Python child sharing its stdout) and waits for it, as CTK's launcher does. Also: a line that is not UTF-8 is
skipped without ending the reader."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from slicer_helpers import slicer  # noqa: F401  (puts the module's Qt-free package on the path)

from CoopSegMRML.worker_process import CANCELLED, FINISHED, RUNNING, UNDECODABLE, WorkerProcess

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the process checks read /proc (POSIX)")

# The launcher: start the worker as a child sharing stdout, write the child's pid, wait for it (like CTK's).
LAUNCHER = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', sys.argv[2]]); "
            "open(sys.argv[1], 'w').write(str(child.pid)); sys.exit(child.wait())")
WORKER = ("import json, time; print(json.dumps({'event': 'progress', 'fraction': 0.2, 'message': 'working'}), "
          "flush=True); time.sleep(300)")
# A worker that leaves the launcher's process group (setsid), so no group kill reaches it: cancel must still return.
ESCAPING_WORKER = "import os; os.setsid(); " + WORKER


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def gone_soon(pid: int, within: float = 10.0) -> bool:
    """SIGKILL takes effect asynchronously: give the kernel a moment (a bound, not a timing measurement)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def started_under_launcher(tmp_path, worker: str):
    pid_file = tmp_path / "child.pid"
    process = WorkerProcess([sys.executable, "-c", LAUNCHER, str(pid_file), worker], folder=str(tmp_path / "run"))
    os.makedirs(process.folder)
    process.start()
    deadline = time.monotonic() + 60
    while process.poll().message != "working":  # the child's progress came through the launcher's pipe
        assert time.monotonic() < deadline, process.log
        time.sleep(0.02)
    return process, int(pid_file.read_text())


def cancel_in_thread(process: WorkerProcess):
    """Cancel on another thread and report whether it returned (a hang fails the test instead of freezing it)."""
    statuses = []
    thread = threading.Thread(target=lambda: statuses.append(process.cancel()), daemon=True)
    thread.start()
    thread.join(30)
    return statuses


def test_cancel_kills_the_launcher_and_its_child_and_the_pipe_closes(tmp_path):
    process, child = started_under_launcher(tmp_path, WORKER)
    launcher = process.process.pid
    assert alive(launcher) and alive(child) and child != launcher
    statuses = cancel_in_thread(process)
    assert statuses and statuses[0].state == CANCELLED  # it returned
    assert gone_soon(child) and gone_soon(launcher)  # no process of the tree is left
    process._reader.join(30)
    assert not process._reader.is_alive()  # nothing holds the pipe open any more: the reader saw its end
    assert not os.path.exists(process.folder)
    assert process.poll().state == CANCELLED


def test_cancel_returns_even_when_a_child_escapes_the_group(tmp_path):
    process, child = started_under_launcher(tmp_path, ESCAPING_WORKER)
    try:
        statuses = cancel_in_thread(process)
        assert statuses and statuses[0].state == CANCELLED  # returned, though the escaped child keeps the pipe
        assert gone_soon(process.process.pid)  # the launcher is gone
        assert alive(child) and process._reader.is_alive()  # ... the escapee is not: cancel did not wait for it
    finally:
        os.kill(child, 9)
    process._reader.join(30)
    assert not process._reader.is_alive()


def test_a_line_that_is_not_utf8_is_skipped_and_the_run_finishes(tmp_path):
    worker = ("import json, sys; out = sys.stdout.buffer; out.write(b'caf\\xe9 \\xff\\n'); "
              "out.write((json.dumps({'event': 'progress', 'fraction': 0.5, 'message': 'half'}) + '\\n').encode()); "
              "out.write((json.dumps({'event': 'done', 'device': 'cpu', 'files': {}}) + '\\n').encode()); "
              "out.flush()")
    process = WorkerProcess([sys.executable, "-c", worker]).start()
    deadline = time.monotonic() + 60
    while process.poll().state == RUNNING:
        assert time.monotonic() < deadline, process.log
        time.sleep(0.02)
    assert process.poll().state == FINISHED, process.log
    assert process.result == {"event": "done", "device": "cpu", "files": {}}
    assert UNDECODABLE in process.log
