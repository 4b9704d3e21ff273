"""Contacts and calls: is a number on WhatsApp (answers cached per session for
ZAPGATE_CONTACT_CHECK_TTL seconds), a contact's profile, blocking, the address book the
phone synced (a push name WhatsApp does not show is the one the contact's messages
carried), and rejecting a call. Each resolves the caller's own session first
(another user's session, or its calls, do not exist for them)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from zapgate.domain.contacts import AddressBookEntry, ContactProfile
from zapgate.domain.ids import is_lid
from zapgate.domain.models import Call, CheckedNumber, Session, User
from zapgate.errors import CallNotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.services.sessions import SessionService
from zapgate.worker.client import WorkerAPI

T = TypeVar("T")


def _sort_key(entry: AddressBookEntry) -> tuple[str, str]:
    """The address book's order: by the name saved on the phone (else the contact's push
    name, else its address), case-insensitively; the address breaks ties."""
    return ((entry.name or entry.push_name or entry.address).casefold(), entry.address)


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ValidationFailed(
            N_("after: not a cursor returned by this API"),
            hint=N_("Pass the 'next' value of the previous page."),
        )
    return key[0], key[1]


class ContactService:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.registry = sessions.registry
        self.settings = sessions.settings

    async def _call(self, session: Session, op: Callable[[WorkerAPI], Awaitable[T]]) -> T:
        return await self.sessions.pool.call(session.route, session.label, op)

    async def check(self, user: User, name: str, phones: Sequence[str]) -> list[CheckedNumber]:
        """Which of `phones` have a WhatsApp account, each answered once in the order
        given (national numbers read in the session's default country). Answers younger
        than ZAPGATE_CONTACT_CHECK_TTL come from the session's cache; WhatsApp is asked
        about the others only."""
        session = await self.sessions.get(user, name)
        wanted = list(dict.fromkeys(self.sessions.phone(p, session) for p in phones))
        ttl = self.settings.contact_check_ttl
        known: dict[str, CheckedNumber] = {}
        if ttl > 0:
            since = datetime.now(UTC) - timedelta(seconds=ttl)
            known = await self.registry.checks.cached(session.id, wanted, since=since)
        missing = [p for p in wanted if p not in known]
        if missing:
            checks = await self._call(
                session, lambda w: w.check_numbers(session.client_id, missing)
            )
            for answer in await self.registry.checks.store(session.id, checks):
                known[answer.check.phone] = answer
        return [known[p] for p in wanted if p in known]

    async def profile(self, user: User, name: str, contact: str) -> ContactProfile:
        """What WhatsApp shows the session of `contact` (a phone, its JID or a LID), with
        the name the contact's messages carried when WhatsApp shows none; a LID it shows
        beside a phone teaches the session's LID map."""
        session = await self.sessions.get(user, name)
        address = self.sessions.recipient(contact, session)
        profile = await self._call(session, lambda w: w.contact_profile(session.client_id, address))
        if profile.lid is not None and not is_lid(profile.address):
            await self.registry.lids.learn(session.id, profile.lid, profile.address)
        if profile.push_name is None:
            known = await self.registry.contacts.names(session.id, [profile.address])
            profile = replace(profile, push_name=known.get(profile.address))
        return profile

    async def set_blocked(self, user: User, name: str, contact: str, blocked: bool) -> str:
        """Block (or unblock) `contact`; the address blocked."""
        session = await self.sessions.get(user, name)
        address = self.sessions.recipient(contact, session)
        await self._call(session, lambda w: w.set_blocked(session.client_id, address, blocked))
        return address

    async def address_book(
        self, user: User, name: str, *, limit: int, after: str | None
    ) -> tuple[list[AddressBookEntry], str | None]:
        """A page of the address book the account's phone synced, by name, after the
        cursor `after`; the cursor of the next page (None: this was the last)."""
        session = await self.sessions.get(user, name)
        start = None if after is None else _decode_cursor(after)
        synced = await self._call(session, lambda w: w.address_book(session.client_id))
        known = await self.registry.contacts.names(
            session.id, [e.address for e in synced if e.push_name is None]
        )
        book = sorted(
            (replace(e, push_name=e.push_name or known.get(e.address)) for e in synced),
            key=_sort_key,
        )
        rest = [e for e in book if start is None or _sort_key(e) > start]
        page = rest[:limit]
        more = len(rest) > limit
        return page, _encode_cursor(_sort_key(page[-1])) if more else None

    async def reject_call(self, user: User, name: str, call_id: str) -> Call:
        """Reject a call that rang at the session; one rejected already is left alone."""
        session = await self.sessions.get(user, name)
        call = await self.registry.calls.get(session.id, call_id)
        if call is None:
            raise CallNotFound(name=name, call_id=call_id[:80])
        if call.rejected_at is not None:
            return call
        await self._call(session, lambda w: w.reject_call(session.client_id, call.id, call.caller))
        return await self.registry.calls.mark_rejected(session.id, call.id) or call
