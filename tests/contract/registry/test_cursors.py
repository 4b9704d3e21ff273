"""registry.cursors: how far each worker journal was applied."""

from __future__ import annotations

import asyncio

from zapgate.registry import Registry


async def test_worker_cursors(registry: Registry) -> None:
    assert await registry.cursors.get("http://w1:5001") == 0
    await registry.cursors.set("http://w1:5001", 17)
    assert await registry.cursors.get("http://w1:5001") == 17
    await registry.cursors.set("http://w1:5001", 42)
    assert await registry.cursors.get("http://w1:5001") == 42
    assert await registry.cursors.get("http://w2:5001") == 0
    big = 2**40  # journals outlive 32-bit counters
    await asyncio.gather(*(registry.cursors.set(f"w{i}", big + i) for i in range(10)))
    assert [await registry.cursors.get(f"w{i}") for i in range(10)] == [big + i for i in range(10)]
