"""The simulated network's phone side (`/v1/sim/*` and the dashboard's simulated phone),
scoped to the caller like everything else: a phone only scans the QR of one of the
caller's own sessions, and only writes to numbers linked to the caller's sessions, from a
number no other account has linked. Another account's sessions, numbers and client ids do
not exist for the caller (404), and nothing is changed."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from zapgate.domain.models import Session, User
from zapgate.errors import NotFound, NumberNotLinked, PhoneNotYours, QrNotFound, WorkerUnreachable
from zapgate.i18n import N_
from zapgate.registry import Registry
from zapgate.services.sessions import SessionService
from zapgate.topology.pool import WorkerPool

SIM = "sim"


class SimService:
    def __init__(self, registry: Registry, sessions: SessionService, pool: WorkerPool) -> None:
        self.registry = registry
        self.sessions = sessions
        self.pool = pool

    async def _check_phone_is_usable(self, user: User, phone: str) -> None:
        """A number linked to another account's session is that account's phone."""
        if any(s.user_id != user.id for s in await self.registry.sessions.find_by_phone(phone)):
            raise PhoneNotYours(phone=phone)

    async def _shown_qr(self, session: Session) -> str | None:
        try:
            return (await self.sessions.live_status(session)).qr
        except WorkerUnreachable:
            return None

    async def _link(self, session: Session, qr: str, phone: str) -> Session:
        await self.pool.call(session.route, session.label, lambda w: w.sim_scan(qr, phone))
        return session

    async def scan(self, user: User, qr: str, phone: str) -> Session:
        """A simulated phone scans `qr`, which must be the QR one of the caller's sim
        sessions shows now; that session is linked to `phone` and returned."""
        phone = self.sessions.phone(phone)
        qr = qr.strip()
        sessions = [s for s in await self.sessions.list_for(user) if s.engine == SIM]
        if not sessions:
            raise NotFound(
                N_("You have no session on the sim engine."),
                hint=N_('PUT /v1/sessions/{name} with {"engine": "sim"} first.'),
            )
        await self._check_phone_is_usable(user, phone)
        for session in sessions:
            shown = await self._shown_qr(session)
            if shown is not None and hmac.compare_digest(shown.encode(), qr.encode()):
                return await self._link(session, shown, phone)
        raise QrNotFound(
            N_("None of your sim sessions shows this QR code."),
            hint=N_("Scan the QR your session shows now: GET /v1/sessions/{name}/qr."),
        )

    async def scan_session(self, user: User, name: str, qr: str | None, phone: str) -> Session:
        """The dashboard's panel: scan the QR session `name` shows (`qr`, when given, must
        be that one)."""
        session = await self.sessions.get(user, name)
        phone = self.sessions.phone(phone, session)
        await self._check_phone_is_usable(user, phone)
        shown = await self._shown_qr(session) if session.engine == SIM else None
        if shown is None:
            raise QrNotFound(
                N_("There is no QR code on the screen to scan."),
                hint=N_("Press \u201cConnect WhatsApp\u201d first."),
            )
        if qr is not None and not hmac.compare_digest(shown.encode(), qr.strip().encode()):
            raise QrNotFound(
                N_("This is not the QR code session '{name}' shows."),
                hint=N_("Scan the QR code on the screen."),
                name=name,
            )
        return await self._link(session, shown, phone)

    async def phone_send(
        self,
        user: User,
        sender: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
    ) -> str:
        """`sender` writes to `to`, a number linked only to sim sessions of the caller;
        the new message's id."""
        sender, to = self.sessions.phone(sender), self.sessions.phone(to)
        await self._check_phone_is_usable(user, sender)
        linked = await self.registry.sessions.find_by_phone(to)
        mine = [s for s in linked if s.user_id == user.id and s.engine == SIM]
        if not mine:
            raise NumberNotLinked(
                N_("None of your sim sessions is linked to {phone}."),
                hint=N_("Link one first: start a sim session and scan its QR."),
                phone=to,
            )
        if any(s.user_id != user.id for s in linked):
            # The network delivers to every device linked to `to`: another account's too.
            raise PhoneNotYours(phone=to)
        target = mine[0]
        return await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_send(sender, to, text, media)
        )
