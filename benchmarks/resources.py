"""CPU seconds and peak RSS of a process tree (a job's JVM and Python workers, or the logger), sampled.

Every ``interval_s`` a thread walks the tree under each root pid (psutil, recursive children) and sums
the resident set sizes; the peak of that sum is the tree's peak RSS. CPU seconds are the last
user + system time seen per process, summed, so a worker that exits keeps the time it had used
at its last sample (up to ``interval_s`` of its CPU can be missed).
"""
from __future__ import annotations

from typing import Callable, Iterable

import psutil

from benchmarks.background import BackgroundWorker

MB = 2**20


class ProcessTreeSampler(BackgroundWorker):
    def __init__(self, root_pids: Callable[[], Iterable[int]], interval_s: float = 0.5):
        """``root_pids`` is asked at every sample, so roots that start later (cluster daemons) are seen."""
        super().__init__("process-sampler")
        self._root_pids = root_pids
        self.interval_s = interval_s
        self.peak_rss_bytes = 0
        self._cpu_by_pid: dict[tuple[int, float], float] = {}

    def _tree(self) -> list[psutil.Process]:
        processes = {}
        for pid in self._root_pids():
            try:
                root = psutil.Process(pid)
                for process in [root, *root.children(recursive=True)]:
                    processes[process.pid] = process
            except psutil.Error:
                continue
        return list(processes.values())

    def sample(self) -> None:
        rss = 0
        for process in self._tree():
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    cpu = process.cpu_times()
                    # keyed by (pid, start time): a reused pid is another process
                    self._cpu_by_pid[(process.pid, process.create_time())] = cpu.user + cpu.system
            except psutil.Error:
                continue
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu_by_pid.values())

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / MB
