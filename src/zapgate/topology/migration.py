"""Migration of stale routes: a session whose stored worker/port differs from what the
current topology says is moved, and the move is logged (`session u3/default: port 5003 ->
5001`). This is the seed incident's fix, made automatic: records written under the
per-user topology are rewritten when production runs one shared worker."""

from __future__ import annotations

import logging

from zapgate.domain.models import Session
from zapgate.registry import Registry
from zapgate.topology.placement import Placement

logger = logging.getLogger(__name__)


def _describe_move(session: Session, new_port: int | None, new_url: str | None) -> str:
    if session.port != new_port:
        return f"port {session.port} -> {new_port}"
    return f"worker {session.worker_url} -> {new_url}"


class RouteMigrator:
    def __init__(self, registry: Registry, placement: Placement) -> None:
        self.registry = registry
        self.placement = placement

    async def ensure(self, session: Session) -> Session:
        """Return `session` on the route the topology wants, migrating it when stale."""
        want = self.placement.place(session.user_id)
        if want == session.route:
            return session
        logger.info(
            "session %s: %s (topology %s)",
            session.label,
            _describe_move(session, want.port, want.worker_url),
            self.placement.topology,
        )
        return await self.registry.sessions.update_route(session.id, want)

    async def migrate_all(self) -> int:
        """Migrate every stale session; returns how many moved. Run at start-up."""
        moved = 0
        for session in await self.registry.sessions.list():
            if self.placement.place(session.user_id) != session.route:
                await self.ensure(session)
                moved += 1
        if moved:
            logger.info(
                "migrated %d session route(s) to the %s topology", moved, self.placement.topology
            )
        return moved
