"""Helpers for tests that run the job as a subprocess in its own process group."""
from __future__ import annotations

import os
import signal
import subprocess
import time


def stop_group(proc: subprocess.Popen) -> None:
    """End the process's whole group (the JVM and the Python workers too): TERM, then KILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def live_start_ms() -> int:
    """A start time for a stream sent to the job on Kafka: an hour ago, on a whole minute (a live job
    dead-letters request times more than ``window.max_future_skew`` ahead of the wall clock)."""
    return (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000
