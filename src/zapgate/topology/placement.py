"""Placement: which worker a user's sessions belong on, decided only by configuration.

A user's identity is never a network address: the registry stores the route this module
computes, and a route that no longer matches the configuration is migrated (see
migration.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from zapgate.config import Settings, Topology, url_port
from zapgate.domain.models import Route
from zapgate.i18n import N_

EMBEDDED_WORKER_ID = "embedded"


def worker_id_for(url: str) -> str:
    """A stable worker id derived from its URL: `host:port`."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{url_port(url)}"


@dataclass(frozen=True, slots=True)
class Placement:
    topology: Topology
    worker_url: str
    worker_host: str
    base_port: int

    def place(self, user_id: int) -> Route:
        if self.topology is Topology.EMBEDDED:
            return Route(worker_id=EMBEDDED_WORKER_ID, worker_url=None, port=None)
        if self.topology is Topology.SHARED:
            url = self.worker_url.rstrip("/")
            return Route(worker_id=worker_id_for(url), worker_url=url, port=url_port(url))
        # per-user (development only): user N on base_port + N - 1, as the old app did.
        port = self.base_port + int(user_id) - 1
        url = f"http://{self.worker_host}:{port}"
        return Route(worker_id=worker_id_for(url), worker_url=url, port=port)

    def describe(self, gettext: Callable[[str], str] = str) -> str:
        """One line on where sessions live, its template looked up through `gettext`."""
        if self.topology is Topology.EMBEDDED:
            return gettext(N_("embedded: one worker inside the web process"))
        if self.topology is Topology.SHARED:
            return gettext(N_("shared: every session on {url}")).format(url=self.worker_url)
        return gettext(
            N_("per-user: user N on http://{host}:{port}+N-1 (development only)")
        ).format(host=self.worker_host, port=self.base_port)

    def unreachable_hint(self, route: Route, *, production: bool) -> str:
        return self.unreachable_hint_template(production=production).format(port=route.port)

    def unreachable_hint_template(self, *, production: bool) -> str:
        """The hint of a WorkerUnreachable, a template of the worker's `{port}`."""
        if self.topology is Topology.PER_USER:
            return N_(
                "Start a worker on port {port} (zapgate worker --port {port}), or "
                "use ZAPGATE_TOPOLOGY=shared: in production only one WhatsApp service runs, "
                "and every user shares it, kept apart by client id and session dir."
            )
        if production:
            return N_(
                "Check that the WhatsApp worker service is running and listening on port "
                "{port}, that ZAPGATE_WORKER_URL points at it, and that ZAPGATE_WORKER_TOKEN is "
                "the same on both sides; `zapgate doctor` checks all three."
            )
        return N_(
            "Check that `zapgate worker` is running and listening on port {port}, that "
            "ZAPGATE_WORKER_URL points at it, and that ZAPGATE_WORKER_TOKEN is the same on "
            "both sides; `zapgate doctor` checks all three."
        )


def build_placement(settings: Settings, topology: Topology) -> Placement:
    return Placement(
        topology=topology,
        worker_url=settings.worker_url,
        worker_host=settings.worker_host,
        base_port=settings.base_port,
    )
