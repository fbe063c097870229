"""A daemon thread with a start/stop life cycle, for the harness's samplers and collectors."""
from __future__ import annotations

import threading


class BackgroundWorker:
    """Runs ``self._run()`` in a daemon thread from ``start()``; ``_run`` loops until ``self._stop`` is set.

    A context manager: ``with Worker(...) as worker:`` starts it and stops it (joining up to
    ``join_timeout_s``) on the way out.
    """

    join_timeout_s = 30.0

    def __init__(self, name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.join_timeout_s)
