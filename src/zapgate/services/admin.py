"""What operators see: the database's health, every user and session, and every worker
the topology names, with a fresh health probe."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from zapgate.domain.models import Route, Session, User
from zapgate.registry import Registry
from zapgate.topology.placement import Placement
from zapgate.topology.pool import WorkerPool


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerStatus:
    worker_id: str
    worker_url: str | None
    port: int | None
    reachable: bool
    detail: str
    sessions: int


class AdminService:
    def __init__(self, registry: Registry, pool: WorkerPool, placement: Placement) -> None:
        self.registry = registry
        self.pool = pool
        self.placement = placement

    async def ping_database(self) -> None:
        """Raises when the database does not answer."""
        await self.registry.ping()

    async def users(self) -> list[User]:
        return await self.registry.users.list()

    async def sessions(self) -> list[Session]:
        return await self.registry.sessions.list()

    async def workers(self) -> list[WorkerStatus]:
        """The configured worker plus each worker a session is routed to (per-user has one
        per user), probed in parallel."""
        sessions = await self.registry.sessions.list()
        placement = self.placement
        routes: dict[str, Route] = {placement.place(1).worker_id: placement.place(1)}
        for s in sessions:
            routes.setdefault(s.worker_id, s.route)
        probes = await asyncio.gather(*(self.pool.probe(r) for r in routes.values()))
        return [
            WorkerStatus(
                worker_id=wid,
                worker_url=route.worker_url,
                port=route.port,
                reachable=ok,
                detail=detail,
                sessions=sum(1 for s in sessions if s.worker_id == wid),
            )
            for (wid, route), (ok, detail) in zip(routes.items(), probes, strict=True)
        ]
