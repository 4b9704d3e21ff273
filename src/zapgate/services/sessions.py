"""Session use cases: get-or-create, start/stop/logout/delete, QR, pairing code, sending
and history. Every call resolves the caller's own session first (another user's session
does not exist for them) and puts it on the route the topology wants."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from zapgate.config import Settings
from zapgate.domain.content import NO_EXTRAS, Extras, Quote
from zapgate.domain.ids import (
    normalize_phone,
    normalize_recipient,
    validate_country,
    validate_session_name,
)
from zapgate.domain.models import Event, Message, Session, User
from zapgate.domain.ratelimit import parse_rate
from zapgate.domain.state import SessionState
from zapgate.engines import validate_engine_name
from zapgate.errors import (
    EngineCannotChange,
    IdempotencyKeyReused,
    MediaNotFound,
    NotFound,
    SessionNotFound,
    UnknownReplyTo,
    ValidationFailed,
    WorkerUnreachable,
    WrongState,
)
from zapgate.i18n import N_
from zapgate.registry import Registry
from zapgate.services.media import MediaFile, MediaIntake
from zapgate.services.outbound import OutboundQueue
from zapgate.services.preview import LinkPreviews
from zapgate.topology.migration import RouteMigrator
from zapgate.topology.pool import WorkerPool
from zapgate.worker.client import WorkerAPI
from zapgate.worker.schemas import SessionStatus

logger = logging.getLogger(__name__)
T = TypeVar("T")


def request_digest(**fields: str | None) -> str:
    """The sha256 of a send's parameters, stored with its Idempotency-Key."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _typing_field(typing_ms: int) -> dict[str, str]:
    """`typing_ms` in a send's digest, only when given (digests stored before it existed
    still match)."""
    return {"typing_ms": str(typing_ms)} if typing_ms else {}


def _same_request(result: tuple[Message, bool], digest: str) -> tuple[Message, bool]:
    """A message found by its Idempotency-Key (`created` False) must come from the same
    request; rows from before the digest was stored are taken as they are."""
    message, created = result
    if not created and message.idempotency_hash not in (None, digest):
        raise IdempotencyKeyReused(key=(message.idempotency_key or "")[:80])
    return result


class SessionService:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        pool: WorkerPool,
        migrator: RouteMigrator,
        outbound: OutboundQueue,
        *,
        on_route: Callable[[Session], None] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.migrator = migrator
        self.outbound = outbound
        self.intake = MediaIntake(settings)
        self.previews = LinkPreviews(allow_private=settings.allow_private_urls)
        # Called with every session a request touches, so the web tier follows the
        # journal of each worker in use.
        self._on_route = on_route or (lambda _s: None)

    # -- lookup ------------------------------------------------------------------------------
    async def get(self, user: User, name: str) -> Session:
        validate_session_name(name)
        session = await self.registry.sessions.get(user.id, name)
        if session is None:
            raise SessionNotFound(name=name)
        session = await self.migrator.ensure(session)
        self._on_route(session)
        return session

    async def list_for(self, user: User) -> list[Session]:
        return [await self.migrator.ensure(s) for s in await self.registry.sessions.list(user.id)]

    async def find_by_phone(self, phone: str) -> list[Session]:
        """Every user's sessions linked to this number (the simulated network's routing)."""
        return await self.registry.sessions.find_by_phone(phone)

    async def events(self, session: Session, *, after: int) -> list[Event]:
        """The session's events from the durable outbox, oldest first, after a cursor."""
        return await self.registry.outbox.list_events(
            session.user_id, session_id=session.id, after=after
        )

    async def get_or_create(
        self, user: User, name: str, *, engine: str | None, start: bool
    ) -> tuple[Session, bool]:
        validate_session_name(name)
        wanted = validate_engine_name(engine or self.settings.engine)
        route = self.migrator.placement.place(user.id)
        session, created = await self.registry.sessions.get_or_create(
            user.id, name, engine=wanted, route=route, limit=self.settings.max_sessions_per_user
        )
        if not created and engine is not None and session.engine != wanted:
            raise EngineCannotChange(name=name, engine=session.engine, wanted=wanted)
        if created:
            logger.info(
                "user %s created session %s (%s) on %s",
                user.id,
                name,
                session.client_id,
                route.worker_url or "the embedded worker",
            )
        session = await self.migrator.ensure(session)
        self._on_route(session)
        if start:
            session = await self._start(session)
        return session, created

    # -- worker calls ------------------------------------------------------------------------
    async def _call(self, session: Session, op: Callable[[WorkerAPI], Awaitable[T]]) -> T:
        return await self.pool.call(session.route, session.label, op)

    async def apply_status(self, session: Session, status: SessionStatus) -> Session:
        """Record what the worker reported about the session (the state change emits an
        event); the session as recorded."""
        updated = await self.registry.sessions.update_state(
            session.id, status.state, status.state_reason, status.phone
        )
        return updated or session

    async def _start(self, session: Session) -> Session:
        status = await self._call(
            session,
            lambda w: w.start_session(session.client_id, session.session_dir, session.engine),
        )
        return await self.apply_status(session, status)

    async def start(self, user: User, name: str) -> Session:
        return await self._start(await self.get(user, name))

    async def stop(self, user: User, name: str) -> Session:
        session = await self.get(user, name)
        try:
            status = await self._call(session, lambda w: w.stop_session(session.client_id))
        except NotFound:
            return session  # the worker never hosted it: already stopped
        return await self.apply_status(session, status)

    async def logout(self, user: User, name: str) -> Session:
        session = await self.get(user, name)
        try:
            status = await self._call(session, lambda w: w.logout_session(session.client_id))
        except NotFound:
            return session
        await self.registry.sessions.clear_phone(session.id)
        return await self.apply_status(session, status)

    async def delete(self, user: User, name: str) -> None:
        session = await self.get(user, name)
        try:
            await self._call(session, lambda w: w.delete_session(session.client_id))
        except WorkerUnreachable:
            # Deleting must not be held hostage by a dead worker; its files stay behind
            # until that worker is cleaned, which we say in the log.
            logger.warning(
                "session %s deleted while its worker was unreachable; its session "
                "dir %s stays on that worker",
                session.label,
                session.session_dir,
            )
        await self.registry.sessions.delete(session.id)
        await self.outbound.media.delete_session(session.client_id)
        logger.info("user %s deleted session %s", user.id, name)

    async def live_status(self, session: Session) -> SessionStatus:
        try:
            return await self._call(session, lambda w: w.status(session.client_id))
        except NotFound:
            return SessionStatus(
                client_id=session.client_id, engine=session.engine, state=SessionState.STOPPED
            )

    async def qr(self, user: User, name: str) -> SessionStatus:
        session = await self.get(user, name)
        logger.info(
            "user %s requesting QR code for session %s on %s (port %s)",
            user.id,
            name,
            session.worker_url or "the embedded worker",
            session.port,
        )
        status = await self.live_status(session)
        await self.apply_status(session, status)
        if status.state is SessionState.SCAN_QR and status.qr:
            return status
        if status.state is SessionState.CONNECTED:
            hint = N_("The session is already linked; log out first to link another phone.")
        elif status.state_reason == "qr_timeout":
            hint = N_("Nobody scanned in time: POST /v1/sessions/{{name}}/start for a new QR.")
        else:
            hint = N_("POST /v1/sessions/{{name}}/start, then ask for the QR again.")
        if status.state is SessionState.DISCONNECTED and status.state_reason:
            # Say why it is not connecting (an unreachable WhatsApp, a lost connection).
            raise WrongState(
                N_("Session '{name}' is {state} ({reason}): there is no QR to show."),
                hint=N_("It keeps retrying by itself; fix the cause, then ask for the QR again."),
                name=name,
                state=str(status.state),
                reason=status.state_reason,
            )
        raise WrongState(
            N_("Session '{name}' is {state}: there is no QR to show."),
            hint=hint,
            name=name,
            state=str(status.state),
        )

    async def pair_code(self, user: User, name: str, phone: str) -> str:
        session = await self.get(user, name)
        phone = self.phone(phone, session)
        try:
            return await self._call(session, lambda w: w.pair_code(session.client_id, phone))
        except WrongState as exc:
            if exc.params.get("client_id") != session.client_id:
                raise
            # The engine names its internal client id; the caller knows the session's name.
            raise WrongState(
                N_(
                    "Session '{name}' is {state}: a pairing code is only given while it waits "
                    "for the QR scan (SCAN_QR)."
                ),
                hint=N_("POST /v1/sessions/{name}/start first; a linked session needs no code."),
                name=name,
                state=str(exc.params.get("state", "")),
            ) from exc
        except NotFound as exc:
            if exc.errcode != NotFound.errcode:
                raise
            raise WrongState(
                N_("Session '{name}' is not started: there is nothing to pair."),
                hint=N_("POST /v1/sessions/{{name}}/start, then ask for a pairing code."),
                name=name,
            ) from exc

    # -- messages ----------------------------------------------------------------------------
    async def send_text(
        self,
        user: User,
        name: str,
        *,
        to: str,
        text: str | None,
        idempotency_key: str | None,
        extras: Extras = NO_EXTRAS,
        reply_to: str | None = None,
        link_preview: bool = False,
        typing_ms: int = 0,
    ) -> tuple[Message, bool]:
        """Send a text, or (`extras` holding one) a location, contact cards or a poll.
        `reply_to`: a message of this session (its id or wa_id) the message quotes;
        `extras.mentions`: phones as the user typed them; `link_preview`: show the card
        of the text's first link (sent without one when it cannot be fetched);
        `typing_ms`: how long the session shows typing first."""
        session = await self.get(user, name)
        to = self.recipient(to, session)
        if extras.kind is None:
            if text is None or not text.strip():
                raise ValidationFailed(N_("text: must not be empty"))
            if len(text) > self.settings.max_text_chars:
                raise ValidationFailed(
                    N_("text: longer than {max} characters"),
                    hint=N_("Split the text into several messages."),
                    max=self.settings.max_text_chars,
                )
        elif text is not None:
            raise ValidationFailed(
                N_("text: not allowed with a {kind}"),
                hint=N_("Send the text as a separate message."),
                kind=extras.kind,
            )
        if link_preview and extras.kind is not None:
            raise ValidationFailed(N_("link_preview: only a text message has a link preview"))
        extras = replace(
            extras,
            mentions=tuple(self.phone(m, session) for m in extras.mentions),
            contacts=tuple(
                replace(c, phone=None if c.phone is None else self.phone(c.phone, session))
                for c in extras.contacts
            ),
        )
        # Only a preview asked for is in the digest: earlier keys keep their digests.
        asked = {"link_preview": "true"} if link_preview else {}
        digest = request_digest(
            to=to,
            text=text,
            reply_to=reply_to,
            extras=json.dumps(extras.to_dict(), sort_keys=True),
            **asked,
            **_typing_field(typing_ms),
        )
        prior = await self._prior(session, idempotency_key, digest)
        if prior is not None:
            return prior, False
        extras, reply_to = await self._quote(session, extras, reply_to)
        if link_preview and text is not None:
            preview = await self.previews.for_text(text, label=session.label)
            extras = replace(extras, preview=preview)
        return _same_request(
            await self.outbound.submit(
                session,
                to=to,
                text=text,
                idempotency_key=idempotency_key,
                idempotency_hash=digest if idempotency_key is not None else None,
                extras=extras,
                reply_to=reply_to,
                typing_ms=typing_ms,
            ),
            digest,
        )

    async def _quote(
        self, session: Session, extras: Extras, reply_to: str | None
    ) -> tuple[Extras, str | None]:
        """`extras` quoting the message `reply_to` names (its id or wa_id), and the
        gateway's id of it; an unknown or not yet sent message is refused."""
        if reply_to is None:
            return extras, None
        quoted = await self.registry.messages.find(session.id, reply_to)
        if quoted is None or quoted.wa_id is None:
            raise UnknownReplyTo(name=session.name, message_id=reply_to[:80])
        quote = Quote(
            id=quoted.wa_id,
            sender=None if quoted.direction == "out" else quoted.chat,
            text=quoted.text,
        )
        return replace(extras, quote=quote), quoted.id

    async def _prior(
        self, session: Session, idempotency_key: str | None, digest: str
    ) -> Message | None:
        """The message an earlier request with this Idempotency-Key created, if any; the
        same key with a different request is refused."""
        if idempotency_key is None:
            return None
        if not 1 <= len(idempotency_key) <= 200:
            raise ValidationFailed(N_("Idempotency-Key: must be 1-200 characters"))
        prior = await self.registry.messages.get_by_idempotency_key(session.id, idempotency_key)
        return None if prior is None else _same_request((prior, False), digest)[0]

    async def send_media(
        self,
        user: User,
        name: str,
        *,
        to: str,
        caption: str | None,
        idempotency_key: str | None,
        source: Mapping[str, str | None],
        load: Callable[[MediaIntake], Awaitable[MediaFile]],
        reply_to: str | None = None,
        typing_ms: int = 0,
    ) -> tuple[Message, bool]:
        """Send media. `source` names the media as the request gave it (type, the URL or a
        digest of the bytes, mime, filename), for the Idempotency-Key check. `load` turns
        the request's URL, base64 or upload into checked bytes; it runs after the session,
        number and Idempotency-Key are checked, and before anything is stored or sent
        (size limits, SSRF guard). `typing_ms`: how long the session shows typing (recording,
        for a voice note) first."""
        session = await self.get(user, name)
        to = self.recipient(to, session)
        digest = request_digest(
            to=to, caption=caption, reply_to=reply_to, **source, **_typing_field(typing_ms)
        )
        prior = await self._prior(session, idempotency_key, digest)
        if prior is not None:
            return prior, False
        extras, reply_to = await self._quote(session, NO_EXTRAS, reply_to)
        media = await load(self.intake)
        logger.info(
            "session %s: %s of %d bytes to send", session.label, media.kind, len(media.data)
        )
        return _same_request(
            await self.outbound.submit(
                session,
                to=to,
                text=caption or None,
                idempotency_key=idempotency_key,
                idempotency_hash=digest if idempotency_key is not None else None,
                media=media,
                extras=extras,
                reply_to=reply_to,
                typing_ms=typing_ms,
            ),
            digest,
        )

    async def media(self, user: User, name: str, message_id: str) -> tuple[Message, bytes]:
        """A message's media bytes: outbound ones from the web tier's store, inbound ones
        from the worker that saved them."""
        session = await self.get(user, name)
        message = await self.registry.messages.get(session.id, message_id)
        if message is None or message.media is None:
            raise MediaNotFound(
                N_("Session '{name}' has no media message {message_id!r}."),
                name=name,
                message_id=message_id[:80],
            )
        ref = message.media.ref
        if ref is None:
            raise MediaNotFound(
                N_("The media of message {message_id!r} could not be downloaded from WhatsApp."),
                hint=N_("Only its type, size and caption are known."),
                message_id=message_id[:80],
            )
        try:
            if message.direction == "out":
                data = await self.outbound.media.read(ref)
            else:
                data = await self._call(session, lambda w: w.media(session.client_id, message.id))
        except FileNotFoundError:
            raise MediaNotFound(
                N_("The media of message {message_id!r} is no longer stored."),
                message_id=message_id[:80],
            ) from None
        return message, data

    async def set_send_rate(self, user: User, name: str, rate: str | None) -> Session:
        session = await self.get(user, name)
        if rate is not None:
            parse_rate(rate)
        updated = await self.registry.sessions.set_send_rate(session.id, rate)
        self.outbound.scheduler.forget(session.id)
        return updated or session

    async def set_default_country(self, user: User, name: str, country: str | None) -> Session:
        session = await self.get(user, name)
        value = validate_country(country) if country is not None else None
        updated = await self.registry.sessions.set_default_country(session.id, value)
        return updated or session

    async def set_reject_calls(
        self, user: User, name: str, reject: bool, message: str | None
    ) -> Session:
        """Reject (or stop rejecting) calls as they ring, sending the caller `message`
        (a blank one: none)."""
        session = await self.get(user, name)
        text = message.strip() if message is not None else None
        updated = await self.registry.sessions.set_reject_calls(session.id, reject, text or None)
        return updated or session

    def phone(self, raw: str, session: Session | None = None) -> str:
        """A phone number a user typed for this session, in E.164: national formats are
        read in the session's default country, else ZAPGATE_DEFAULT_COUNTRY."""
        country = session.default_country if session is not None else None
        return normalize_phone(raw, country or self.settings.default_country)

    def recipient(self, raw: str, session: Session) -> str:
        """Whom a message goes to: a phone number (as `phone` reads it) or a LID."""
        country = session.default_country or self.settings.default_country
        return normalize_recipient(raw, country)

    async def messages(
        self,
        user: User,
        name: str,
        *,
        direction: str | None,
        limit: int,
        before: int | None,
        chat: str | None = None,
    ) -> tuple[list[Message], int | None]:
        """The session's history, newest first; `chat`: one chat's (a phone, LID or
        JID)."""
        session = await self.get(user, name)
        return await self.registry.messages.list(
            session.id,
            direction=direction,
            limit=limit,
            before=before,
            chat=None if chat is None else self.chat(chat, session),
        )

    def chat(self, raw: str, session: Session) -> str:
        """A chat as a path names it: a phone, a LID, or a phone's JID
        (`<digits>@s.whatsapp.net` is that phone), as a send's `to` does."""
        return self.recipient(raw, session)
