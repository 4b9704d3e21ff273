"""The shared asyncio helpers: background tasks, the wake-up and the keyed lock."""

from __future__ import annotations

import asyncio
import gc

import pytest

from zapgate.aio import BackgroundTasks, KeyedLock, Wakeup
from zapgate.pipeline.base import PollingLoop


async def test_keyed_lock_hands_one_lock_per_key_while_in_use() -> None:
    locks = KeyedLock()
    first = locks("a")
    assert locks("a") is first
    assert locks("b") is not first


async def test_keyed_lock_serializes_one_key_only() -> None:
    locks = KeyedLock()
    order: list[str] = []

    async def hold(key: str, tag: str, pause: float) -> None:
        async with locks(key):
            order.append(f"{tag}+")
            await asyncio.sleep(pause)
            order.append(f"{tag}-")

    await asyncio.gather(hold("a", "a1", 0.05), hold("a", "a2", 0), hold("b", "b1", 0))
    # a2 waits for a1; b1 does not wait for anyone.
    assert order.index("a1-") < order.index("a2+")
    assert order.index("b1+") < order.index("a1-")


async def test_keyed_lock_never_grows_with_keys_no_longer_used() -> None:
    locks = KeyedLock()
    for i in range(1000):
        async with locks(f"send:u{i}"):
            await asyncio.sleep(0)
    gc.collect()
    assert len(locks) == 0


async def test_keyed_lock_keeps_the_lock_a_waiter_is_queued_on() -> None:
    """The old worker popped a lock on delete while a waiter held it, so a new caller got
    a second lock and ran beside the old one. A waiter must keep the one lock alive."""
    locks = KeyedLock()
    inside: list[str] = []
    holder_entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks("k"):
            holder_entered.set()
            inside.append("holder")
            await release.wait()
            assert inside == ["holder"]  # nobody else got in meanwhile
            inside.remove("holder")

    async def late() -> None:
        async with locks("k"):
            assert inside == []

    task = asyncio.create_task(holder())
    await holder_entered.wait()
    gc.collect()
    waiter = asyncio.create_task(late())
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(task, waiter)
    gc.collect()
    assert len(locks) == 0


async def test_background_tasks_one_failure_does_not_cancel_the_others() -> None:
    tasks = BackgroundTasks()
    done = asyncio.Event()

    async def fail() -> None:
        raise RuntimeError("boom")

    async def slow() -> None:
        await asyncio.sleep(0.05)
        done.set()

    tasks.create(fail(), name="test:fail")
    tasks.create(slow(), name="test:slow")
    await asyncio.wait_for(done.wait(), 2)
    await tasks.close()
    assert len(tasks) == 0


async def test_a_wakeup_never_swallows_a_cancel() -> None:
    """A loop closed just after it was woken must end: with asyncio.wait_for (Python
    3.11) the cancel was lost, the polling loop went round again, and `zapgate serve`
    never stopped on SIGTERM (seen in CI)."""
    wakeup = Wakeup()
    waiting = asyncio.create_task(wakeup.wait(30))
    await asyncio.sleep(0)
    wakeup.set()  # the waiter is due to wake in the next round...
    waiting.cancel()  # ...and is cancelled in this one
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_polling_loop_closes_right_after_a_wake() -> None:
    ticks = 0

    class Counter(PollingLoop):
        name = "test"
        failure = "tick failed"

        async def tick(self) -> None:
            nonlocal ticks
            ticks += 1

    loop = Counter(interval=30)
    loop.start()
    await asyncio.sleep(0.01)
    loop.wake()
    async with asyncio.timeout(5):
        await loop.close()
    assert ticks >= 1
