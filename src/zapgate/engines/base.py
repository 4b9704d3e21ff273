"""The Engine contract: what every WhatsApp engine implements for ONE session.

A backend implements only the `_do_*` methods; the public methods are final and own the
error mapping (anything unexpected becomes an `EngineError` naming the session), the
state bookkeeping and the de-duplication of state reports.

The lifecycle and sending text are what every engine does (abstract `_do_*`). An
optional WhatsApp feature is a capability: an engine opts in by naming it in
`capabilities` and overriding its `_do_*` (not abstract); the public method of a feature
the engine lacks raises `NotSupported` (501). Today's capabilities: `send_media`,
`pair_code`, `reply` (quotes and mentions), `send_location`, `send_contacts`, `polls`,
`reactions`, `edit`, `revoke`, `read_receipts`, `presence`, `link_preview`, `contacts`
(number checks, profiles, blocking, the address book) and `calls` (rejecting one).

Messages and their ids. WhatsApp assigns the id of a message the session sends (whatsmeow
makes it; neonize cannot send with a chosen one), so a send has two ids: the gateway's
(`message_id`, chosen when the send was accepted: the public API's `id`) and WhatsApp's
(returned by `_do_send_*`; receipts, replies, reactions, edits and deletes name it). The
contract, which the ordered event stream (the worker's journal) relies on:
- `_do_send_text` / `_do_send_media` return WhatsApp's id of the message once WhatsApp
  took it, and do not report SENT themselves;
- the final `send_text` / `send_media` then report
  `MessageAck(id=<WhatsApp id>, message_id=<gateway id>, status=SENT)`;
- every receipt (`MessageAck(id=<WhatsApp id>, status=DELIVERED|READ)`) goes through
  `emit()`; while a send is in flight `emit()` holds acks back and reports them after
  that send's SENT ack (those of its WhatsApp id at once, and those that came before
  every send still in flight began, which none of them can own), so a receipt that
  overtakes the send's return still comes after the ack that ties its WhatsApp id to the
  gateway's, and a busy session's receipts never wait for a quiet moment. Receipts that
  come days later need nothing: the registry finds the message by its WhatsApp id.
- `to` is an E.164 phone (`+5511999990003`) or a LID (`<digits>@lid`, see
  `domain/events.py`): an engine sends to a LID as the `@lid` JID.
- inbound messages follow `domain/events.py`: `chat` is the E.164 phone whenever the
  engine can know it (the alternative address WhatsApp sends along, its own LID <-> phone
  mapping), else the LID; `chat_lid` / `sender_lid` carry the LID whenever known.

Lifecycle: `start()` brings the session up (restoring saved credentials from
`session_dir`, or asking for a QR); `stop()` releases every thread, socket and file but
keeps the credentials; `logout()` unlinks the device and deletes the credentials.
Everything the engine learns is reported through the `emit` callback it was built with,
on the event loop that built it.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar, final

from zapgate.domain.contacts import MAX_CHECK, AddressBookEntry, ContactProfile, NumberCheck
from zapgate.domain.content import (
    CHAT_PRESENCES,
    ContactCard,
    LinkPreview,
    Location,
    MessageRef,
    Poll,
    Quote,
)
from zapgate.domain.events import EngineEvent, MessageAck, StateChanged
from zapgate.domain.models import SENDABLE_MEDIA, MessageStatus
from zapgate.domain.state import SessionState, can_transition
from zapgate.errors import EngineError, GatewayError, NotSupported, ValidationFailed
from zapgate.i18n import N_

logger = logging.getLogger(__name__)

Emit = Callable[[EngineEvent], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """Knobs every engine honours. Built by the worker from Settings."""

    qr_first_ttl: float = 60.0
    qr_ttl: float = 20.0
    qr_max_rotations: int = 5


class Engine(ABC):
    name: ClassVar[str]
    # The optional features this engine has (see the module docstring).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Seconds the worker waits after restoring one linked session of this engine before
    # the next, when it starts: an engine that logs in to a real service spreads a
    # restart's logins out; a simulated one needs no pause.
    restore_interval: ClassVar[float] = 0.0

    def __init__(
        self, *, client_id: str, session_dir: Path, emit: Emit, options: EngineOptions
    ) -> None:
        self.client_id = client_id
        self.session_dir = session_dir
        self.options = options
        self._emit = emit
        self._state = SessionState.STOPPED
        self._reason: str | None = None
        self._phone: str | None = None
        # Sends under way, and the acks emit() holds back until their SENT ack is out.
        # Sends in flight by their start ticket, and acks held back with the ticket count
        # at their arrival: an ack can only be the receipt of a send that started before it.
        self._tickets = itertools.count(1)
        self._last_ticket = 0
        self._in_flight: set[int] = set()
        self._held_acks: list[tuple[int, MessageAck]] = []
        self.log = logging.getLogger(f"zapgate.engines.{self.name}").getChild(client_id)

    # -- read side -------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def state_reason(self) -> str | None:
        return self._reason

    @property
    def phone(self) -> str | None:
        return self._phone

    # -- final public methods ----------------------------------------------------------------
    @final
    async def start(self) -> None:
        if self._state.is_running:
            return
        self.session_dir.mkdir(parents=True, exist_ok=True)
        await self.set_state(SessionState.STARTING)
        await self._guard("start", self._do_start())

    @final
    async def stop(self, reason: str = "stopped") -> None:
        """Stop the session; `reason` says why (`stopped` when asked, `qr_timeout`, ...)."""
        await self._guard("stop", self._do_stop())
        await self.set_state(SessionState.STOPPED, reason)

    @final
    async def logout(self) -> None:
        await self._guard("logout", self._do_logout())
        self._phone = None
        await self.set_state(SessionState.LOGGED_OUT, "logout")

    @final
    async def pair_code(self, phone: str) -> str:
        self._require("pair_code")
        return await self._guard("pair code", self._do_pair_code(phone))

    @final
    async def send_text(
        self,
        *,
        message_id: str,
        to: str,
        text: str,
        quote: Quote | None = None,
        mentions: Sequence[str] = (),
        preview: LinkPreview | None = None,
    ) -> str:
        """Send `text` to `to` (E.164 or `<digits>@lid`); returns WhatsApp's id of it.
        `quote`: the message this one replies to; `mentions`: phones (E.164) mentioned;
        `preview`: the card of the text's link (fetched by the gateway)."""
        if quote is not None or mentions:
            self._require("reply")
        if preview is not None:
            self._require("link_preview")
        return await self._send_acked(
            message_id,
            "send",
            self._do_send_text(
                message_id=message_id,
                to=to,
                text=text,
                quote=quote,
                mentions=tuple(mentions),
                preview=preview,
            ),
        )

    @final
    async def send_media(
        self,
        *,
        message_id: str,
        to: str,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None = None,
        caption: str | None = None,
        quote: Quote | None = None,
    ) -> str:
        """Send `data` as an image, document, audio, video, sticker (webp) or voice note
        (ogg/opus push-to-talk) (`kind`) to `to` (E.164 or `<digits>@lid`); returns
        WhatsApp's id of it. Sizes and formats were checked by the caller."""
        self._require("send_media")
        if kind not in SENDABLE_MEDIA:
            raise ValidationFailed(
                N_("media type {kind!r} is not one of {kinds}"),
                kind=kind[:20],
                kinds=", ".join(SENDABLE_MEDIA),
            )
        if quote is not None:
            self._require("reply")
        return await self._send_acked(
            message_id,
            "send media",
            self._do_send_media(
                message_id=message_id,
                to=to,
                kind=kind,
                data=data,
                mime=mime,
                filename=filename,
                caption=caption,
                quote=quote,
            ),
        )

    @final
    async def send_location(
        self, *, message_id: str, to: str, location: Location, quote: Quote | None = None
    ) -> str:
        """Send a location pin; returns WhatsApp's id of it."""
        self._require("send_location")
        return await self._send_acked(
            message_id,
            "send location",
            self._do_send_location(message_id=message_id, to=to, location=location, quote=quote),
        )

    @final
    async def send_contacts(
        self,
        *,
        message_id: str,
        to: str,
        contacts: Sequence[ContactCard],
        quote: Quote | None = None,
    ) -> str:
        """Send contact cards (each with its vCard built); returns WhatsApp's id."""
        self._require("send_contacts")
        if not contacts:
            raise ValidationFailed(N_("contacts: at least one contact is needed"))
        return await self._send_acked(
            message_id,
            "send contacts",
            self._do_send_contacts(
                message_id=message_id, to=to, contacts=tuple(contacts), quote=quote
            ),
        )

    @final
    async def send_poll(self, *, message_id: str, to: str, poll: Poll) -> str:
        """Send a poll; votes come back as `PollVoted` events. WhatsApp's id of it."""
        self._require("polls")
        return await self._send_acked(
            message_id, "send poll", self._do_send_poll(message_id=message_id, to=to, poll=poll)
        )

    @final
    async def react(self, *, chat: str, target: MessageRef, emoji: str) -> str:
        """React to a message of `chat` with `emoji` ("" removes this session's reaction);
        returns WhatsApp's id of the reaction."""
        self._require("reactions")
        return await self._guard("react", self._do_react(chat=chat, target=target, emoji=emoji))

    @final
    async def edit(self, *, chat: str, target_id: str, text: str) -> str:
        """Replace the text of a message this session sent (WhatsApp refuses after 15
        minutes; the caller checks). Returns WhatsApp's id of the edit."""
        self._require("edit")
        return await self._guard("edit", self._do_edit(chat=chat, target_id=target_id, text=text))

    @final
    async def revoke(self, *, chat: str, target: MessageRef) -> str:
        """Delete a message for everyone (this session's own; a group admin's in groups).
        Returns WhatsApp's id of the revoke."""
        self._require("revoke")
        return await self._guard("revoke", self._do_revoke(chat=chat, target=target))

    @final
    async def mark_read(self, *, chat: str, ids: Sequence[str], sender: str | None = None) -> None:
        """Send read receipts for messages of `chat` (WhatsApp's ids; in a group, all
        from `sender`)."""
        self._require("read_receipts")
        if ids:
            await self._guard(
                "mark read", self._do_mark_read(chat=chat, ids=tuple(ids), sender=sender)
            )

    @final
    async def set_presence(self, *, chat: str, state: str) -> None:
        """Show `state` (`typing`, `recording`, `paused`) in `chat`, and subscribe to the
        chat's presence so its contact's is reported (`PresenceChanged`)."""
        self._require("presence")
        if state not in CHAT_PRESENCES:
            raise ValidationFailed(
                N_("presence {state!r} is not one of {states}"),
                state=state[:20],
                states=", ".join(CHAT_PRESENCES),
            )
        await self._guard("presence", self._do_set_presence(chat=chat, state=state))

    # -- contacts and calls (capabilities "contacts" and "calls") ---------------------------
    @final
    async def check_numbers(self, phones: Sequence[str]) -> list[NumberCheck]:
        """Which of `phones` (E.164) have a WhatsApp account, in the order given; WhatsApp's
        usync, so the caller caches the answers rather than asking again and again."""
        self._require("contacts")
        if len(phones) > MAX_CHECK:
            raise ValidationFailed(N_("phones: at most {max} numbers per check"), max=MAX_CHECK)
        if not phones:
            return []
        return await self._guard("check numbers", self._do_check_numbers(tuple(phones)))

    @final
    async def contact_profile(self, address: str) -> ContactProfile:
        """What WhatsApp shows this account of `address` (a phone or a LID): push name,
        about, profile picture URL, business or not, blocked or not."""
        self._require("contacts")
        return await self._guard("contact profile", self._do_contact_profile(address))

    @final
    async def set_blocked(self, address: str, blocked: bool) -> None:
        """Block (or unblock) `address`: a blocked contact's messages and calls no longer
        reach this account, and it no longer sees this account's presence."""
        self._require("contacts")
        await self._guard("block", self._do_set_blocked(address, blocked))

    @final
    async def address_book(self) -> list[AddressBookEntry]:
        """The contacts the account's phone synced to its devices (names as saved on the
        phone), in no particular order."""
        self._require("contacts")
        return await self._guard("address book", self._do_address_book())

    @final
    async def reject_call(self, *, call_id: str, caller: str) -> None:
        """Reject a ringing call (`CallReceived`); the caller sees it declined."""
        self._require("calls")
        await self._guard("reject call", self._do_reject_call(call_id=call_id, caller=caller))

    @final
    def has_credentials(self) -> bool:
        """True when `session_dir` holds a linked device that can resume without a QR."""
        return self._do_has_credentials()

    @final
    async def set_state(
        self, state: SessionState, reason: str | None = None, phone: str | None = None
    ) -> None:
        """The one place a state is reported; repeats of the same report are dropped."""
        if phone is not None:
            self._phone = phone
        if state == self._state and reason == self._reason:
            return
        if not can_transition(self._state, state):
            # Reported anyway (the engine knows best), but a move the state machine does
            # not expect is a bug worth seeing in the log.
            self.log.warning("unexpected state change %s -> %s", self._state, state)
        self.log.info("state %s -> %s (%s)", self._state, state, reason or "-")
        self._state, self._reason = state, reason
        await self._emit(StateChanged(state=state, reason=reason, phone=self._phone))

    async def emit(self, event: EngineEvent) -> None:
        """Report an event. Acks wait while a send is in flight (see the module docstring)."""
        if isinstance(event, MessageAck) and self._in_flight:
            self._held_acks.append((self._last_ticket, event))
            return
        await self._emit(event)

    async def _send_acked(self, message_id: str, what: str, aw: Awaitable[str]) -> str:
        """Run one send; report its SENT ack with both ids, then the acks it held back."""
        ticket = self._last_ticket = next(self._tickets)
        self._in_flight.add(ticket)
        wa_id: str | None = None
        try:
            wa_id = await self._guard(what, aw)
            await self._emit(MessageAck(id=wa_id, status=MessageStatus.SENT, message_id=message_id))
            return wa_id
        finally:
            self._in_flight.discard(ticket)
            # Free this send's acks, and every ack that came before all the sends still in
            # flight began (none of them can be its send): under steady load some send is
            # always in flight, and a receipt must not wait for a quiet moment.
            oldest = min(self._in_flight, default=None)
            ready = [
                a for seen, a in self._held_acks if a.id == wa_id or oldest is None or seen < oldest
            ]
            self._held_acks = [
                (seen, a)
                for seen, a in self._held_acks
                if not (a.id == wa_id or oldest is None or seen < oldest)
            ]
            for ack in ready:
                await self._emit(ack)

    def _require(self, feature: str) -> None:
        if feature not in self.capabilities:
            raise NotSupported(engine=self.name, feature=feature)

    async def _guard(self, what: str, aw: Awaitable[T]) -> T:
        try:
            return await aw
        except GatewayError:
            raise
        except Exception as exc:
            self.log.warning("%s failed: %s", what, exc, exc_info=True)
            raise EngineError(
                N_("session {client_id}: {what} failed: {detail}"),
                client_id=self.client_id,
                what=what,
                detail=str(exc)[:200],
            ) from exc

    # -- what a backend implements -----------------------------------------------------------
    @abstractmethod
    async def _do_start(self) -> None: ...

    @abstractmethod
    async def _do_stop(self) -> None: ...

    @abstractmethod
    async def _do_logout(self) -> None: ...

    @abstractmethod
    async def _do_send_text(
        self,
        *,
        message_id: str,
        to: str,
        text: str,
        quote: Quote | None,
        mentions: tuple[str, ...],
        preview: LinkPreview | None,
    ) -> str: ...

    @abstractmethod
    def _do_has_credentials(self) -> bool: ...

    # -- capabilities: not abstract, an engine opts in through `capabilities` ----------------
    async def _do_pair_code(self, phone: str) -> str:
        raise NotImplementedError

    async def _do_send_media(
        self,
        *,
        message_id: str,
        to: str,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        quote: Quote | None,
    ) -> str:
        raise NotImplementedError

    async def _do_send_location(
        self, *, message_id: str, to: str, location: Location, quote: Quote | None
    ) -> str:
        raise NotImplementedError

    async def _do_send_contacts(
        self, *, message_id: str, to: str, contacts: tuple[ContactCard, ...], quote: Quote | None
    ) -> str:
        raise NotImplementedError

    async def _do_send_poll(self, *, message_id: str, to: str, poll: Poll) -> str:
        raise NotImplementedError

    async def _do_react(self, *, chat: str, target: MessageRef, emoji: str) -> str:
        raise NotImplementedError

    async def _do_edit(self, *, chat: str, target_id: str, text: str) -> str:
        raise NotImplementedError

    async def _do_revoke(self, *, chat: str, target: MessageRef) -> str:
        raise NotImplementedError

    async def _do_mark_read(self, *, chat: str, ids: tuple[str, ...], sender: str | None) -> None:
        raise NotImplementedError

    async def _do_set_presence(self, *, chat: str, state: str) -> None:
        raise NotImplementedError

    async def _do_check_numbers(self, phones: tuple[str, ...]) -> list[NumberCheck]:
        raise NotImplementedError

    async def _do_contact_profile(self, address: str) -> ContactProfile:
        raise NotImplementedError

    async def _do_set_blocked(self, address: str, blocked: bool) -> None:
        raise NotImplementedError

    async def _do_address_book(self) -> list[AddressBookEntry]:
        raise NotImplementedError

    async def _do_reject_call(self, *, call_id: str, caller: str) -> None:
        raise NotImplementedError
