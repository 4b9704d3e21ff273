"""What the engines of one worker share, built once from Settings by whoever builds the
worker (`zapgate serve`, `zapgate worker`) and closed with it: the knobs every engine
honours, the link to the simulated network (sim engine) and whatsmeow's runtime (its
configuration and the host processes that run its neonize clients).

Nothing here imports an engine's SDK: a worker that never hosts a real session never
loads neonize."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zapgate.config import Settings
from zapgate.engines.base import EngineOptions
from zapgate.simnet.client import SimLink, make_sim_link

if TYPE_CHECKING:
    from zapgate.engines.whatsmeow.procs import HostPool


@dataclass(frozen=True, slots=True)
class WhatsmeowConfig:
    """The whatsmeow engine's knobs (ZAPGATE_WHATSMEOW_*)."""

    store: str | None = None
    proxy: str | None = None
    reconnect_base: float = 1.0
    reconnect_cap: float = 60.0
    start_wait: float = 10.0
    # Linked sessions per shared host process (1: every session in a process of its own).
    sessions_per_host: int = 25
    # Development and tests only: `module:attribute` of another neonize client factory
    # for the hosts, and what their environment needs to import it.
    client_factory: str | None = None
    host_env: dict[str, str] | None = None

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
            sessions_per_host=settings.whatsmeow_sessions_per_host,
            client_factory=settings.whatsmeow_client_factory or None,
        )


class WhatsmeowRuntime:
    """whatsmeow as one worker uses it: the configuration, and the pool of host processes
    that run its neonize clients (made on first use: a worker without whatsmeow sessions
    starts none, and never loads neonize itself)."""

    def __init__(self, config: WhatsmeowConfig | None = None) -> None:
        self.config = config or WhatsmeowConfig()
        self._pool: HostPool | None = None

    def pool(self) -> HostPool:
        if self._pool is None:
            from zapgate.engines.whatsmeow.procs import HostPool

            self._pool = HostPool(
                sessions_per_host=self.config.sessions_per_host,
                factory=self.config.client_factory,
                env=self.config.host_env,
            )
        return self._pool

    async def aclose(self) -> None:
        """End every host process (the sessions were stopped first, or die with them)."""
        if self._pool is not None:
            await self._pool.aclose()


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
        await self.whatsmeow.aclose()
        if self.sim is not None:
            await self.sim.aclose()
