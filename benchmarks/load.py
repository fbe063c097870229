"""The HTTP load sender: replays requests to the inference logger at their request times.

Each request is a KServe v1 body (``{"instances": [[...]]}``) in CloudEvents binary mode: the request
id in ``ce-id`` and the request time in ``ce-time``, as KServe's own logger sends it. Request ``i`` is
sent once, when the wall clock reaches its request time; a bounded number of requests are in flight at
once (``concurrency``), so when the logger cannot keep up the sender falls behind visibly (``lag_s``)
instead of queueing without bound. No retries: a failed request is counted, not resent.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import aiohttp
import numpy as np

from contract import formats

from streams import iris

CE_SPECVERSION = "1.0"


@dataclass(frozen=True)
class Request:
    request_id: str
    time_ms: int
    instance: Sequence[float]


@dataclass
class ReplayResult:
    """Per request: wall time of the answer (epoch s), response time (s), HTTP status (0: no answer)."""

    answered_at: np.ndarray
    response_s: np.ndarray
    status: np.ndarray
    lag_s: np.ndarray  # how late each request left, against its request time
    errors: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        return (self.status >= 200) & (self.status < 300)

    def success_rate(self) -> Optional[float]:
        return float(self.ok.mean()) if self.status.size else None

    def acked_per_second(self, t0_s: float) -> list[tuple[float, int]]:
        """(seconds since t0, requests acknowledged in that second) for the throughput plot."""
        seconds = np.floor(self.answered_at[self.ok] - t0_s).astype(int)
        if seconds.size == 0:
            return []
        counts = np.bincount(seconds - seconds.min())
        return [(float(seconds.min() + i) + 0.5, int(n)) for i, n in enumerate(counts)]


def cloudevent_headers(request: Request) -> dict[str, str]:
    return {"ce-specversion": CE_SPECVERSION, "ce-id": request.request_id,
            "ce-time": formats.format_rfc3339_ms(request.time_ms), "ce-type": formats.CLOUDEVENT_REQUEST_TYPE,
            "ce-source": iris.SOURCE, "content-type": "application/json"}


def body(request: Request) -> bytes:
    return json.dumps({"instances": [list(request.instance)]}, separators=(",", ":")).encode()


async def _send(session: aiohttp.ClientSession, url: str, request: Request, index: int,
                result: ReplayResult, timeout: aiohttp.ClientTimeout) -> None:
    started = time.time()
    try:
        async with session.post(url, data=body(request), headers=cloudevent_headers(request),
                                timeout=timeout) as response:
            await response.read()
            result.status[index] = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        name = type(err).__name__
        result.errors[name] = result.errors.get(name, 0) + 1
    result.answered_at[index] = time.time()
    result.response_s[index] = result.answered_at[index] - started


async def _replay(url: str, requests: Sequence[Request], concurrency: int, request_timeout_s: float,
                  progress: Optional[Callable[[int], None]], progress_every_s: float) -> ReplayResult:
    n = len(requests)
    result = ReplayResult(answered_at=np.zeros(n), response_s=np.full(n, np.nan), status=np.zeros(n, dtype=np.int32),
                          lag_s=np.zeros(n))
    slots = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    next_progress = time.monotonic() + progress_every_s

    async def bounded(index: int, request: Request) -> None:
        try:
            await _send(session, url, request, index, result, timeout)
        finally:
            slots.release()

    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = set()
        for index, request in enumerate(requests):
            delay = request.time_ms / 1000 - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            result.lag_s[index] = max(0.0, time.time() - request.time_ms / 1000)
            task = asyncio.create_task(bounded(index, request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if progress and time.monotonic() >= next_progress:
                progress(index + 1)
                next_progress += progress_every_s
        if tasks:
            await asyncio.gather(*tasks)
    if progress:
        progress(n)
    return result


def replay(url: str, requests: Sequence[Request], concurrency: int = 64, request_timeout_s: float = 30.0,
           progress: Optional[Callable[[int], None]] = None, progress_every_s: float = 5.0) -> ReplayResult:
    """POST every request to ``url`` at its request time (epoch ms on this machine's clock); ``progress``
    is called with the number of requests sent so far about every ``progress_every_s`` seconds."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return asyncio.run(_replay(url, requests, concurrency, request_timeout_s, progress, progress_every_s))


def send_one(url: str, request: Request, timeout_s: float = 10.0) -> int:
    """POST one request at its request time (at once if that is past); the HTTP status, 0 for no answer."""
    return int(replay(url, [request], concurrency=1, request_timeout_s=timeout_s).status[0])
