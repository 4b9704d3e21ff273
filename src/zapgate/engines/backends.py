"""What the engines of one worker share, built once from Settings by whoever builds the
worker (`zapgate serve`, `zapgate worker`) and closed with it: the knobs every engine
honours, the link to the simulated network (sim engine) and whatsmeow's Go-side runtime
(its configuration and the threads that make short calls into Go).

Nothing here imports an engine's SDK: a worker that never hosts a real session never
loads neonize."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from zapgate.config import Settings
from zapgate.engines.base import EngineOptions
from zapgate.simnet.client import SimLink, make_sim_link


@dataclass(frozen=True, slots=True)
class WhatsmeowConfig:
    """The whatsmeow engine's knobs (ZAPGATE_WHATSMEOW_*)."""

    store: str | None = None
    proxy: str | None = None
    reconnect_base: float = 1.0
    reconnect_cap: float = 60.0
    max_failures: int = 12
    start_wait: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsmeowConfig:
        store = settings.whatsmeow_store
        url = settings.database_url
        if store is None and url and url.startswith("postgres"):
            store = url
        if store is not None and store.lower() == "sqlite":
            store = None
        if store is not None:
            # The Go side speaks lib/pq URLs, not SQLAlchemy's dialect+driver form.
            store = re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgres://", store)
        return cls(
            store=store,
            proxy=settings.whatsmeow_proxy or None,
            reconnect_base=settings.whatsmeow_reconnect_base,
            reconnect_cap=settings.whatsmeow_reconnect_cap,
            max_failures=settings.whatsmeow_max_failures,
        )


class WhatsmeowRuntime:
    """whatsmeow's Go side as one worker uses it: the configuration, and a pool of threads
    for the short blocking calls into Go (send, pair code, logout, stop, joins), a pool of
    its own so they never queue behind, or starve, the loop's default executor. (The lock
    over Go's maps is one per process, like the maps: see engines/whatsmeow/bridge.py.)"""

    def __init__(self, config: WhatsmeowConfig | None = None, *, call_threads: int = 32) -> None:
        self.config = config or WhatsmeowConfig()
        self.calls = ThreadPoolExecutor(
            max_workers=call_threads, thread_name_prefix="zapgate-wa-call"
        )

    def close(self) -> None:
        # No wait: a call stuck in Go must not hold up the worker's shutdown.
        self.calls.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineBackends:
    """Everything the engines of one worker share. `sim` is None where no simulated network
    was built (the sim engine then refuses to start)."""

    options: EngineOptions = field(default_factory=EngineOptions)
    sim: SimLink | None = None
    whatsmeow: WhatsmeowRuntime = field(default_factory=WhatsmeowRuntime)

    @classmethod
    def build(cls, settings: Settings, data_dir: Path) -> EngineBackends:
        return cls(
            options=EngineOptions(
                qr_first_ttl=settings.qr_first_ttl,
                qr_ttl=settings.qr_ttl,
                qr_max_rotations=settings.qr_max_rotations,
            ),
            sim=make_sim_link(settings.simnet_url, data_dir / "simnet.json"),
            whatsmeow=WhatsmeowRuntime(WhatsmeowConfig.from_settings(settings)),
        )

    async def aclose(self) -> None:
        self.whatsmeow.close()
        if self.sim is not None:
            await self.sim.aclose()
