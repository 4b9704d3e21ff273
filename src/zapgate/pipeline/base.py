"""What every background loop of the web tier is: started once, woken when there is news,
closed once. Cluster leases will plug in here: a loop takes (and renews) the lease for
its work before a tick, and `close()` gives it back."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

from zapgate.aio import BackgroundTasks, Wakeup


class Loop(Protocol):
    """A background loop. `start()` creates its tasks (building one runs nothing),
    `wake()` asks for its next round at once, and `close()` cancels and awaits every task
    it made and releases what it holds."""

    def start(self) -> None: ...

    def wake(self) -> None: ...

    async def close(self) -> None: ...


class PollingLoop(ABC):
    """A loop that runs `tick()` every `interval` seconds, or at once when woken. A failed
    tick is logged and the loop goes on. Work a tick hands off runs on `self.tasks`, so
    `close()` cancels it with the loop."""

    name: ClassVar[str]  # names the loop's task: "{name}:scanner"
    failure: ClassVar[str]  # logged when a tick fails

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.tasks = BackgroundTasks()
        self._wake = Wakeup()

    def start(self) -> None:
        self.tasks.create(self._run(), name=f"{self.name}:scanner")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self.tasks.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                logging.getLogger(type(self).__module__).exception(self.failure)
            await self._wake.wait(self.interval)

    @abstractmethod
    async def tick(self) -> None: ...
