"""Asyncio helpers shared by every layer: background tasks that are never lost, a wake-up
for polling loops, and one keyed lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Coroutine, Hashable
from typing import Any

logger = logging.getLogger(__name__)


class BackgroundTasks:
    """Owns a set of named background tasks; `close()` cancels and awaits them all.

    Every task is named, referenced until done, and its failure is logged (the mautrix
    `background_task.create` idea). Unlike `asyncio.TaskGroup`, one task failing never
    cancels the others: each is a separate background job."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def create(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Wakeup:
    """Lets a polling loop sleep until its next tick, or until someone has news."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the inner result
        # when a cancel meets a wake-up in the same round (gh-86296), and a loop closed
        # just after a wake() then ran forever, and its process never stopped.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()


class KeyedLock:
    """One asyncio.Lock per key. An entry vanishes once nobody holds or awaits its lock (a
    weak map: a waiter keeps the lock alive), so a key is never handed two locks and the
    map never grows with keys no longer used (mautrix's `async_getter_lock` idea)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def __call__(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def __len__(self) -> int:
        return len(self._locks)
