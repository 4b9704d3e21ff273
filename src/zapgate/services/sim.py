"""The simulated network's phone side (`/v1/sim/*` and the dashboard's simulated phone),
scoped to the caller like everything else: a phone only scans the QR of one of the
caller's own sessions, and only writes to (reacts, edits, deletes, votes and shows its
presence in chats with) numbers linked to the caller's sessions, from a number no other
account has linked; a session's own phone only writes to numbers no other account has
linked; a phone's log only shows what the caller's numbers did. Another account's
sessions, numbers and client ids do not exist for the caller (404), and nothing is
changed.

A phone names a message of its chat with a session's number by the id the session knows
it by (the gateway's id or WhatsApp's, `wa_id`), or by WhatsApp's id alone."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from zapgate.domain.content import NO_EXTRAS, Extras, Quote
from zapgate.domain.emoji import is_emoji
from zapgate.domain.models import Session, User
from zapgate.errors import (
    InvalidEmoji,
    MessageActionRefused,
    NotFound,
    NumberNotLinked,
    PhoneNotYours,
    QrNotFound,
    WorkerUnreachable,
)
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
        sessions = await self._sim_sessions(user)
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

    async def _sim_sessions(self, user: User) -> list[Session]:
        sessions = [s for s in await self.sessions.list_for(user) if s.engine == SIM]
        if not sessions:
            raise NotFound(
                N_("You have no session on the sim engine."),
                hint=N_('PUT /v1/sessions/{name} with {"engine": "sim"} first.'),
            )
        return sessions

    async def _linked(self, user: User, number: str) -> Session:
        """The caller's sim session linked to `number`, which no other account's session
        is linked to (the network reaches every device linked to a number)."""
        linked = await self.registry.sessions.find_by_phone(number)
        mine = [s for s in linked if s.user_id == user.id and s.engine == SIM]
        if not mine:
            raise NumberNotLinked(
                N_("None of your sim sessions is linked to {phone}."),
                hint=N_("Link one first: start a sim session and scan its QR."),
                phone=number,
            )
        if any(s.user_id != user.id for s in linked):
            raise PhoneNotYours(phone=number)
        return mine[0]

    async def _chat(self, user: User, phone: str, to: str) -> tuple[str, str, Session]:
        """(`phone`, `to`, the session linked to `to`): a chat a simulated phone may act
        in, its numbers in E.164."""
        phone, to = self.sessions.phone(phone), self.sessions.phone(to)
        await self._check_phone_is_usable(user, phone)
        return phone, to, await self._linked(user, to)

    async def _wa_id(self, session: Session, ref: str) -> str:
        """WhatsApp's id of the message `ref` names at `session` (its id or wa_id; one not
        sent yet is refused); an id the session does not know is taken as WhatsApp's (the
        network then tells whether the chat has it)."""
        message = await self.registry.messages.find(session.id, ref)
        if message is None:
            return ref
        if message.wa_id is None:
            raise MessageActionRefused(
                N_("Message {message_id!r} is not sent yet: the phone cannot see it."),
                hint=N_(
                    "Wait for its status to be sent (GET the message, or the message.status event)."
                ),
                message_id=message.id,
            )
        return message.wa_id

    async def phone_send(
        self,
        user: User,
        sender: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Extras = NO_EXTRAS,
        reply_to: str | None = None,
    ) -> str:
        """`sender` writes to `to`, a number linked only to sim sessions of the caller,
        with `extras` (mentions as typed), quoting `reply_to` (a message of their chat);
        the new message's id."""
        sender, to, target = await self._chat(user, sender, to)
        extras = replace(extras, mentions=tuple(self.sessions.phone(m) for m in extras.mentions))
        if reply_to is not None:
            extras = replace(extras, quote=Quote(id=await self._wa_id(target, reply_to)))
        return await self.pool.call(
            target.route,
            target.label,
            lambda w: w.sim_phone_send(sender, to, text, media, extras),
        )

    async def phone_send_own(self, user: User, owner: str, to: str, text: str) -> str:
        """The phone of `owner`, a number linked only to the caller's sim sessions, writes
        `text` to `to` (a number no other account has linked): its sessions report it as
        sent from the phone. The new message's id."""
        owner, to = self.sessions.phone(owner), self.sessions.phone(to)
        session = await self._linked(user, owner)
        await self._check_phone_is_usable(user, to)
        return await self.pool.call(
            session.route, session.label, lambda w: w.sim_phone_send_own(owner, to, text)
        )

    async def phone_react(self, user: User, phone: str, to: str, ref: str, emoji: str) -> str:
        """`phone` reacts to a message of its chat with `to` ("" removes its reaction)."""
        if emoji and not is_emoji(emoji):
            raise InvalidEmoji(emoji=emoji[:20])
        phone, to, target = await self._chat(user, phone, to)
        wa_id = await self._wa_id(target, ref)
        return await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_react(phone, to, wa_id, emoji)
        )

    async def phone_edit(self, user: User, phone: str, to: str, ref: str, text: str) -> str:
        """`phone` edits a message it sent to `to` (within WhatsApp's 15 minutes)."""
        phone, to, target = await self._chat(user, phone, to)
        wa_id = await self._wa_id(target, ref)
        return await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_edit(phone, to, wa_id, text)
        )

    async def phone_revoke(self, user: User, phone: str, to: str, ref: str) -> str:
        """`phone` deletes a message it sent to `to` for everyone."""
        phone, to, target = await self._chat(user, phone, to)
        wa_id = await self._wa_id(target, ref)
        return await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_revoke(phone, to, wa_id)
        )

    async def phone_vote(
        self, user: User, phone: str, to: str, ref: str, options: Sequence[str]
    ) -> str:
        """`phone` votes `options` (by text; none withdraws its vote) on a poll of its
        chat with `to`; WhatsApp's id of the poll."""
        phone, to, target = await self._chat(user, phone, to)
        wa_id = await self._wa_id(target, ref)
        await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_vote(phone, to, wa_id, options)
        )
        return wa_id

    async def phone_presence(self, user: User, phone: str, to: str, state: str) -> None:
        """`phone` shows `state` to `to`."""
        phone, to, target = await self._chat(user, phone, to)
        await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_presence(phone, to, state)
        )

    async def phone_log(self, user: User, phone: str) -> list[dict[str, Any]]:
        """What `phone` saw besides messages (reactions, edits, deletes, read receipts,
        presence, votes), oldest first: only what the caller's numbers did."""
        phone = self.sessions.phone(phone)
        await self._check_phone_is_usable(user, phone)
        sessions = await self._sim_sessions(user)
        mine = {s.phone for s in sessions if s.phone is not None}
        source = _reaching(sessions)
        log = await self.pool.call(source.route, source.label, lambda w: w.sim_phone_log(phone))
        return [e for e in log if e.get("from") in mine]

    async def off_whatsapp(self, user: User, phone: str) -> str:
        """From now on `phone` (a number no other account has linked) has no WhatsApp
        account: checks say so and nothing reaches it. The number, in E.164."""
        phone = self.sessions.phone(phone)
        await self._check_phone_is_usable(user, phone)
        source = _reaching(await self._sim_sessions(user))
        await self.pool.call(source.route, source.label, lambda w: w.sim_off_whatsapp(phone))
        return phone

    async def set_profile(
        self,
        user: User,
        phone: str,
        *,
        push_name: str | None,
        about: str | None,
        business: bool,
        picture: bool,
    ) -> str:
        """What the WhatsApp profile of `phone` (a number no other account has linked)
        shows. The number, in E.164."""
        phone = self.sessions.phone(phone)
        await self._check_phone_is_usable(user, phone)
        source = _reaching(await self._sim_sessions(user))
        await self.pool.call(
            source.route,
            source.label,
            lambda w: w.sim_set_profile(
                phone, push_name=push_name, about=about, business=business, picture=picture
            ),
        )
        return phone

    async def phone_call(self, user: User, phone: str, to: str, video: bool) -> str:
        """`phone` calls `to`, a number linked only to sim sessions of the caller;
        WhatsApp's id of the call."""
        phone, to, target = await self._chat(user, phone, to)
        return await self.pool.call(
            target.route, target.label, lambda w: w.sim_phone_call(phone, to, video)
        )

    async def save_contact(self, user: User, owner: str, phone: str, name: str) -> str:
        """The phone of `owner`, a number linked only to the caller's sim sessions, saves
        `phone` (a number no other account has linked) as `name`; WhatsApp syncs it to the
        sessions' address book. `phone` in E.164."""
        owner, phone = self.sessions.phone(owner), self.sessions.phone(phone)
        session = await self._linked(user, owner)
        await self._check_phone_is_usable(user, phone)
        await self.pool.call(
            session.route,
            session.label,
            lambda w: w.sim_phone_save_contact(owner, phone, name),
        )
        return phone


def _reaching(sessions: Sequence[Session]) -> Session:
    """The session whose worker reaches the simulated network for the phone side: a
    linked one when there is one."""
    return next((s for s in sessions if s.phone is not None), sessions[0])
