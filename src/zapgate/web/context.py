"""Everything a running web tier holds, built once at start-up (no module singletons)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from zapgate.config import Settings, Topology
from zapgate.engines import EngineBackends
from zapgate.pipeline.base import Loop
from zapgate.pipeline.janitor import Janitor
from zapgate.pipeline.outbound import OutboundSender
from zapgate.pipeline.puller import JournalPuller
from zapgate.pipeline.webhooks import WebhookDispatcher
from zapgate.registry import Registry
from zapgate.services.accounts import AccountService
from zapgate.services.admin import AdminService
from zapgate.services.contacts import ContactService
from zapgate.services.messages import MessageService
from zapgate.services.outbound import OutboundQueue
from zapgate.services.sessions import SessionService
from zapgate.services.sim import SimService
from zapgate.services.webhooks import WebhookService
from zapgate.topology.migration import RouteMigrator
from zapgate.topology.placement import EMBEDDED_WORKER_ID, Placement, build_placement
from zapgate.topology.pool import WorkerPool
from zapgate.worker.core import Worker

logger = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Built by `build` (which opens everything and runs nothing), started by `start`,
    closed by `close` (newest first)."""

    settings: Settings
    topology: Topology
    registry: Registry
    placement: Placement
    pool: WorkerPool
    migrator: RouteMigrator
    puller: JournalPuller
    sessions: SessionService
    messages: MessageService
    contacts: ContactService
    sim: SimService
    outbound: OutboundQueue
    sender: OutboundSender
    dispatcher: WebhookDispatcher
    janitor: Janitor
    webhooks: WebhookService
    accounts: AccountService
    admin: AdminService
    local_worker: Worker | None
    exit_stack: contextlib.AsyncExitStack = field(repr=False)

    @classmethod
    async def build(cls, settings: Settings, topology: Topology) -> AppContext:
        """Open every component; if one fails, close those already open (newest first)
        and re-raise."""
        settings.validate_for_start(topology)
        data_dir = settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        stack = contextlib.AsyncExitStack()
        try:
            registry = await Registry.open(settings.resolved_database_url)
            stack.push_async_callback(registry.close)
            placement = build_placement(settings, topology)
            local: Worker | None = None
            if topology is Topology.EMBEDDED:
                local = Worker(
                    data_dir=data_dir,
                    worker_id=EMBEDDED_WORKER_ID,
                    backends=EngineBackends.build(settings, data_dir),
                )
                stack.push_async_callback(local.shutdown)
                await local.initialize()
            pool = WorkerPool(settings, placement, local=local)
            stack.push_async_callback(pool.aclose)
            dispatcher = WebhookDispatcher(settings, registry)
            stack.push_async_callback(dispatcher.close)
            # The sender is built next; a queued send wakes it.
            outbound = OutboundQueue(settings, registry, pool, on_queued=lambda: sender.wake())
            sender = OutboundSender(settings, registry, outbound)
            stack.push_async_callback(sender.close)
            janitor = Janitor(settings, registry, outbound.media)
            stack.push_async_callback(janitor.close)

            def on_applied(connected: bool) -> None:
                dispatcher.wake()
                if connected:
                    sender.wake()

            puller = JournalPuller(registry, pool, outbound, on_applied=on_applied)
            stack.push_async_callback(puller.close)
            migrator = RouteMigrator(registry, placement)
            sessions = SessionService(
                settings,
                registry,
                pool,
                migrator,
                outbound,
                on_route=lambda s: puller.follow(s.route),
            )
        except BaseException:
            await stack.aclose()
            raise
        return cls(
            settings=settings,
            topology=topology,
            registry=registry,
            placement=placement,
            pool=pool,
            migrator=migrator,
            puller=puller,
            sessions=sessions,
            messages=MessageService(sessions),
            contacts=ContactService(sessions),
            sim=SimService(registry, sessions, pool),
            outbound=outbound,
            sender=sender,
            dispatcher=dispatcher,
            janitor=janitor,
            webhooks=WebhookService(settings, registry, dispatcher),
            accounts=AccountService(registry),
            admin=AdminService(registry, pool, placement),
            local_worker=local,
            exit_stack=stack,
        )

    @property
    def loops(self) -> tuple[Loop, ...]:
        return (self.sender, self.dispatcher, self.janitor, self.puller)

    async def start(self) -> None:
        """Migrate stale routes, follow every worker's journal, start the background loops
        and the embedded worker's restore."""
        logger.info("topology %s", self.placement.describe())
        await self.migrator.migrate_all()
        for session in await self.registry.sessions.list():
            self.puller.follow(session.route)
        if self.local_worker is not None:
            self.puller.follow(self.placement.place(0))
            self.local_worker.start()
        for loop in self.loops:
            loop.start()

    async def close(self) -> None:
        await self.exit_stack.aclose()
