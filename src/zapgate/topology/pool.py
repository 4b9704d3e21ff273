"""The pool of workers the web tier talks to: the in-process worker in embedded topology,
an HTTP client per worker URL otherwise; reachability is remembered briefly in a
HealthCache so a dead worker fails fast with a clear error instead of hanging requests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from zapgate.config import Settings
from zapgate.domain.models import Route
from zapgate.errors import WorkerUnreachable
from zapgate.i18n import N_
from zapgate.topology.health import HealthCache
from zapgate.topology.placement import Placement
from zapgate.worker.client import HttpWorkerClient, WorkerAPI
from zapgate.worker.core import Worker

logger = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerPool:
    def __init__(
        self, settings: Settings, placement: Placement, *, local: Worker | None = None
    ) -> None:
        self.settings = settings
        self.placement = placement
        self.local = local
        self.health = HealthCache(settings.health_ttl)
        self._http: dict[str, HttpWorkerClient] = {}

    async def aclose(self) -> None:
        for client in self._http.values():
            await client.aclose()
        self._http.clear()

    def client(self, route: Route) -> WorkerAPI:
        if route.worker_url is None:
            if self.local is None:
                raise WorkerUnreachable(
                    N_("this web process has no embedded worker"),
                    hint=N_(
                        "Run `zapgate serve` for the embedded topology, or set "
                        "ZAPGATE_TOPOLOGY=shared and ZAPGATE_WORKER_URL."
                    ),
                )
            return self.local
        client = self._http.get(route.worker_url)
        if client is None:
            client = HttpWorkerClient(
                route.worker_url,
                token=self.settings.worker_token,
                timeout=self.settings.worker_timeout,
                hint=self.placement.unreachable_hint_template(
                    production=self.settings.is_production
                ),
            )
            self._http[route.worker_url] = client
        return client

    def _unreachable(self, route: Route, label: str, detail: str) -> WorkerUnreachable:
        return WorkerUnreachable(
            N_(
                "WhatsApp worker not reachable at {url} (port {port}) for session "
                "{session}: {detail}"
            ),
            hint=self.placement.unreachable_hint_template(production=self.settings.is_production),
            url=route.worker_url or "embedded",
            worker_url=route.worker_url,
            port=route.port,
            session=label,
            detail=detail or "no answer",
        )

    async def call(self, route: Route, label: str, op: Callable[[WorkerAPI], Awaitable[T]]) -> T:
        """Run `op` against the route's worker. A worker known to be down fails at once;
        a connection failure is remembered for `health_ttl` seconds."""
        client = self.client(route)
        url = route.worker_url
        if url is not None and self.health.fresh(url) is False:
            raise self._unreachable(route, label, self.health.detail(url))
        try:
            result = await op(client)
        except WorkerUnreachable as exc:
            if url is not None:
                self.health.mark(url, False, exc.error)
            raise self._unreachable(route, label, exc.params.get("detail", exc.error)) from exc
        if url is not None:
            self.health.mark(url, True)
        return result

    async def probe(self, route: Route) -> tuple[bool, str]:
        """A fresh health check (used by readyz, doctor and the admin API)."""
        try:
            health = await self.client(route).health()
        except Exception as exc:
            if route.worker_url:
                self.health.mark(route.worker_url, False, str(exc))
            return False, str(getattr(exc, "error", exc))
        if route.worker_url:
            self.health.mark(route.worker_url, True)
        return True, f"{health.worker_id}: {health.sessions} session(s)"
