"""A small pool of worker threads for the SES API's one hop per request.

Every request does its synchronous work (signature check, store call, encoding) in one worker thread, so
the event loop never waits on SQLite. ``anyio.to_thread.run_sync`` costs ~60 us of CPU per hop here
(cancel scopes, limiter, per-call bookkeeping); this pool, a C ``SimpleQueue`` and one
``call_soon_threadsafe`` per result, ~20 us (measured on the dev box with a realistic handler). At 1,000+
requests/s that is a few percent of a core. Threads start lazily and are daemons; ``close`` stops them.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Enough that reads keep flowing while several writes wait on SQLite's write lock (a CLI import in another
# process can hold it for a batch); idle threads only sit in SimpleQueue.get.
DEFAULT_THREADS = 16
_STOP = None


class WorkerPool:
    def __init__(self, threads: int = DEFAULT_THREADS, name: str = "sesapi") -> None:
        self._size = threads
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            loop, future, call = job
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
                loop.call_soon_threadsafe(_set_exception, future, exc)
            else:
                loop.call_soon_threadsafe(_set_result, future, result)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(*args)`` in a worker thread and return its result (or raise its exception)."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, (lambda: call(*args)) if args else call))
        return await future

    def close(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(_STOP)
        for thread in threads:
            thread.join()


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)
