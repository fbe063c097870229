"""Child processes of the tests, the benchmarks and the local services: waiting, and stopping them.

One way to stop a process: `terminate` (SIGTERM, then SIGKILL once the grace period has passed), for a
single process or for its whole process group (a job: its JVM and its Python workers); `stop_group` does
that for a `subprocess.Popen` started with ``start_new_session=True`` and reaps it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional


class ServiceError(RuntimeError):
    """A local service or process that is missing, failed to start, or failed to stop."""


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str,
               failed: Callable[[], Optional[str]] = lambda: None, interval_s: float = 0.2) -> None:
    """Poll ``ready()`` until it is true; raise if ``failed()`` returns a reason or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        reason = failed()
        if reason:
            raise ServiceError(f"{what}: {reason}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def terminate(pid: int, timeout_s: float = 30.0, group: bool = False) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``timeout_s``; with ``group``, to the whole
    process group that ``pid`` leads."""
    send = os.killpg if group else os.kill
    if not pid_alive(pid):
        return
    try:
        send(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            send(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 10, f"process {pid} after SIGKILL")
    except ProcessLookupError:  # it ended between the look and the signal
        return


def stop_group(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """End the process's whole group (the JVM and the Python workers too) by `terminate`, and reap it."""
    if proc.poll() is None:
        terminate(proc.pid, timeout_s, group=True)
    proc.wait(timeout=10)


def live_start_ms() -> int:
    """A start time for a stream sent to the job on Kafka: an hour ago, on a whole minute (a live job
    dead-letters request times more than ``window.max_future_skew`` ahead of the wall clock)."""
    return (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000
