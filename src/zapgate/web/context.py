"""Everything a running web tier holds, built once at start-up (no module singletons)."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from zapgate.config import Settings, Topology
from zapgate.engines import EngineOptions
from zapgate.events.puller import JournalPuller
from zapgate.events.webhooks import WebhookDispatcher
from zapgate.registry import Registry
from zapgate.services.accounts import AccountService
from zapgate.services.admin import AdminService
from zapgate.services.outbound import OutboundQueue
from zapgate.services.sessions import SessionService
from zapgate.services.webhooks import WebhookService
from zapgate.services.workers import WorkerPool
from zapgate.topology.migration import RouteMigrator
from zapgate.topology.placement import EMBEDDED_WORKER_ID, Placement, build_placement
from zapgate.worker.core import Worker

logger = logging.getLogger(__name__)


def engine_options(settings: Settings, data_dir: Path) -> EngineOptions:
    from zapgate.simnet.client import make_sim_link

    return EngineOptions(
        qr_first_ttl=settings.qr_first_ttl,
        qr_ttl=settings.qr_ttl,
        qr_max_rotations=settings.qr_max_rotations,
        sim_link=make_sim_link(settings.simnet_url, data_dir / "simnet.json"),
    )


def default_worker_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


@dataclass
class AppContext:
    settings: Settings
    topology: Topology
    registry: Registry
    placement: Placement
    pool: WorkerPool
    puller: JournalPuller
    sessions: SessionService
    outbound: OutboundQueue
    dispatcher: WebhookDispatcher
    webhooks: WebhookService
    accounts: AccountService
    admin: AdminService
    local_worker: Worker | None

    @classmethod
    async def build(cls, settings: Settings, topology: Topology) -> AppContext:
        settings.validate_for_start(topology)
        data_dir = settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        registry = await Registry.open(settings.resolved_database_url)
        placement = build_placement(settings, topology)
        local: Worker | None = None
        if topology is Topology.EMBEDDED:
            local = Worker(
                data_dir=data_dir,
                worker_id=EMBEDDED_WORKER_ID,
                options=engine_options(settings, data_dir),
            )
            await local.initialize()
        pool = WorkerPool(settings, placement, local=local)
        outbound = OutboundQueue(settings, registry, pool)
        dispatcher = WebhookDispatcher(settings, registry)

        def on_applied(connected: bool) -> None:
            dispatcher.wake()
            if connected:
                outbound.wake()

        puller = JournalPuller(registry, pool, on_applied=on_applied)
        migrator = RouteMigrator(registry, placement)
        sessions = SessionService(
            settings,
            registry,
            pool,
            migrator,
            outbound,
            on_route=lambda s: puller.follow(s.route),
        )
        logger.info("topology %s", placement.describe())
        await migrator.migrate_all()
        for session in await registry.sessions.list():
            puller.follow(session.route)
        if local is not None:
            puller.follow(placement.place(0))
        outbound.start()
        dispatcher.start()
        return cls(
            settings=settings,
            topology=topology,
            registry=registry,
            placement=placement,
            pool=pool,
            puller=puller,
            sessions=sessions,
            outbound=outbound,
            dispatcher=dispatcher,
            webhooks=WebhookService(settings, registry, dispatcher),
            accounts=AccountService(registry),
            admin=AdminService(registry, pool, placement),
            local_worker=local,
        )

    async def close(self) -> None:
        await self.outbound.close()
        await self.dispatcher.close()
        await self.puller.close()
        await self.pool.aclose()
        if self.local_worker is not None:
            await self.local_worker.shutdown()
        await self.registry.close()
