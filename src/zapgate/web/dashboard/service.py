"""The dashboard's use cases, on top of the services and the worker pool:
routes stay thin and never touch SQL or an engine."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from zapgate.domain.models import ApiKey, Chat, Delivery, Message, Session, User, Webhook
from zapgate.domain.state import SessionState
from zapgate.errors import SessionNotFound, ValidationFailed, WorkerUnreachable, WrongState
from zapgate.i18n import N_
from zapgate.registry.outbox import EVENT_TYPES
from zapgate.services.admin import WorkerStatus
from zapgate.web.context import AppContext

DEFAULT_SESSION = "default"
PAIR_CODE_TTL = 180.0
# How long "connect with a pairing code" waits for a freshly started session's first QR
# (a pairing code is asked for from the QR screen).
PAIR_START_WAIT = 8.0
# The conversation view: the newest chats, and the newest messages of the open one.
CHATS_SHOWN = 30
CHAT_MESSAGES = 50
# The reactions offered on a message, as WhatsApp offers them first.
QUICK_REACTIONS: tuple[str, ...] = ("👍", "❤️", "😂", "😮", "😢", "🙏")
RECENT_DELIVERIES = 50
# The event types a webhook can ask for (none ticked: all of them).
WEBHOOK_EVENTS: tuple[str, ...] = EVENT_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionView:
    """What the "My WhatsApp" card shows."""

    name: str
    exists: bool
    state: SessionState
    state_reason: str | None = None
    phone: str | None = None
    engine: str | None = None
    qr: str | None = None
    qr_expires_at: datetime | None = None
    pair_code: str | None = None
    worker_url: str | None = None
    port: int | None = None
    unreachable: WorkerUnreachable | None = None

    @property
    def connecting(self) -> bool:
        return self.unreachable is None and self.state in (
            SessionState.STARTING,
            SessionState.SCAN_QR,
            SessionState.PAIRING,
            SessionState.DISCONNECTED,
        )

    @property
    def qr_timed_out(self) -> bool:
        return self.state is SessionState.STOPPED and self.state_reason in (
            "qr_timeout",
            "pair_code_timeout",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """What the conversation view shows: the session's chats (newest first), the open
    chat's address (None: no chats yet) and its messages, oldest first."""

    chats: list[Chat]
    chat: str | None
    messages: list[Message]

    @property
    def open_chat(self) -> Chat | None:
        return next((c for c in self.chats if c.chat == self.chat), None)

    @property
    def by_id(self) -> dict[str, Message]:
        """The shown messages by id: a reply finds the message it quotes."""
        return {m.id: m for m in self.messages}


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSessionRow:
    session: Session
    email: str


class PairCodes:
    """The pairing code last shown to each session, so the card can keep showing it
    while it polls (the engine hands a code out once)."""

    def __init__(self) -> None:
        self._codes: dict[int, tuple[str, float]] = {}

    def put(self, session_id: int, code: str) -> None:
        self._codes[session_id] = (code, time.monotonic() + PAIR_CODE_TTL)

    def get(self, session_id: int) -> str | None:
        found = self._codes.get(session_id)
        if found is None:
            return None
        if found[1] < time.monotonic():
            self._codes.pop(session_id, None)
            return None
        return found[0]

    def drop(self, session_id: int) -> None:
        self._codes.pop(session_id, None)


class NewKeys:
    """A just-created API key, held for the one page view that shows it (after the
    redirect that keeps a reload from creating a second key). Taken once, by its owner
    only, within a minute; never written anywhere."""

    TTL = 60.0

    def __init__(self) -> None:
        self._keys: dict[str, tuple[int, str, str, float]] = {}

    def put(self, user_id: int, name: str, secret: str) -> str:
        now = time.monotonic()
        for token in [t for t, v in self._keys.items() if v[3] < now]:
            del self._keys[token]
        token = secrets.token_urlsafe(16)
        self._keys[token] = (user_id, name, secret, now + self.TTL)
        return token

    def take(self, user_id: int, token: str) -> tuple[str, str] | None:
        found = self._keys.get(token)
        if found is None or found[0] != user_id:
            return None
        del self._keys[token]
        if found[3] < time.monotonic():
            return None
        return found[1], found[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookLog:
    """What a webhook's page shows: the webhook and its latest deliveries."""

    webhook: Webhook
    deliveries: list[Delivery]

    @property
    def pending(self) -> bool:
        return any(d.status == "pending" for d in self.deliveries)


class DashboardService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.pair_codes = PairCodes()
        self.new_keys = NewKeys()
        # A new webhook's secret, shown once after the redirect (like a new API key).
        self.new_secrets = NewKeys()

    # -- my whatsapp -------------------------------------------------------------------------
    async def find(self, user: User, name: str) -> Session | None:
        """The caller's own session, None when `default` does not exist yet; any other
        missing name (or another user's) is SessionNotFound."""
        try:
            return await self.ctx.sessions.get(user, name)
        except SessionNotFound:
            if name == DEFAULT_SESSION:
                return None
            raise

    async def view(self, user: User, name: str) -> SessionView:
        session = await self.find(user, name)
        if session is None:
            return SessionView(name=name, exists=False, state=SessionState.STOPPED)
        base = {
            "name": name,
            "exists": True,
            "engine": session.engine,
            "worker_url": session.worker_url,
            "port": session.port,
        }
        try:
            status = await self.ctx.sessions.live_status(session)
        except WorkerUnreachable as exc:
            return SessionView(
                **base,  # type: ignore[arg-type]
                state=session.state,
                state_reason=session.state_reason,
                phone=session.phone,
                unreachable=exc,
            )
        if (status.state, status.state_reason) != (session.state, session.state_reason) or (
            status.phone and status.phone != session.phone
        ):
            # The journal puller records this too, moments later; recording it now means
            # a send right after "Connected" is shown finds the session CONNECTED.
            await self.ctx.sessions.apply_status(session, status)
        code = self.pair_codes.get(session.id) if status.state is SessionState.PAIRING else None
        return SessionView(
            **base,  # type: ignore[arg-type]
            state=status.state,
            state_reason=status.state_reason,
            phone=status.phone or session.phone,
            qr=status.qr if status.state is SessionState.SCAN_QR else None,
            qr_expires_at=status.qr_expires_at,
            pair_code=code,
        )

    async def connect(self, user: User, name: str) -> Session:
        session = await self.find(user, name)
        if session is None:
            session, _ = await self.ctx.sessions.get_or_create(user, name, engine=None, start=True)
            return session
        self.pair_codes.drop(session.id)
        return await self.ctx.sessions.start(user, name)

    async def pair(self, user: User, name: str, phone: str) -> str:
        phone = self.ctx.sessions.phone(phone, await self.find(user, name))
        session = await self.connect(user, name)
        deadline = time.monotonic() + PAIR_START_WAIT
        while True:
            status = await self.ctx.sessions.live_status(session)
            if status.state in (SessionState.SCAN_QR, SessionState.PAIRING):
                break
            if status.state is SessionState.CONNECTED:
                raise WrongState(
                    N_("This WhatsApp is already connected."),
                    hint=N_("Disconnect first to link another phone."),
                )
            if time.monotonic() > deadline:
                raise WrongState(
                    N_("Session '{name}' is {state}: there is nothing to pair."),
                    hint=N_("Try again in a moment."),
                    name=name,
                    state=str(status.state),
                )
            await asyncio.sleep(0.2)
        code = await self.ctx.sessions.pair_code(user, name, phone)
        self.pair_codes.put(session.id, code)
        return code

    async def disconnect(self, user: User, name: str) -> Session:
        session = await self.ctx.sessions.logout(user, name)
        self.pair_codes.drop(session.id)
        return session

    # -- messages ----------------------------------------------------------------------------
    async def conversation(self, user: User, name: str, chat: str | None) -> Conversation:
        """The chats and the messages of `chat` (a phone, LID or JID as typed; None or
        "": the chat with the newest message)."""
        session = await self.find(user, name)
        if session is None:
            return Conversation(chats=[], chat=None, messages=[])
        chats, _ = await self.ctx.messages.chats(user, name, limit=CHATS_SHOWN, before=None)
        address = self.ctx.sessions.chat(chat, session) if chat else None
        if address is None:
            address = chats[0].chat if chats else None
        messages: list[Message] = []
        if address is not None:
            messages, _ = await self.ctx.sessions.messages(
                user, name, direction=None, limit=CHAT_MESSAGES, before=None, chat=address
            )
            messages.reverse()
        return Conversation(chats=chats, chat=address, messages=messages)

    async def message(self, user: User, name: str, message_id: str) -> Message:
        return await self.ctx.messages.get(user, name, message_id)

    async def react(self, user: User, name: str, message_id: str, emoji: str) -> Message:
        return await self.ctx.messages.react(user, name, message_id, emoji)

    async def media(self, user: User, name: str, message_id: str) -> tuple[Message, bytes]:
        return await self.ctx.sessions.media(user, name, message_id)

    async def send(
        self, user: User, name: str, to: str, text: str, reply_to: str | None = None
    ) -> Message:
        if not to.strip():
            raise ValidationFailed(N_("to: must not be empty"))
        try:
            message, _ = await self.ctx.sessions.send_text(
                user, name, to=to, text=text, idempotency_key=None, reply_to=reply_to or None
            )
        except SessionNotFound:
            if name != DEFAULT_SESSION:
                raise
            # The home page's session is made on the first "Connect": its internal name
            # ('default') means nothing to the person at the form.
            raise WrongState(
                N_("Connect your WhatsApp first: press “Connect WhatsApp” and scan the QR code.")
            ) from None
        return message

    # -- simulated phone (development, sim engine) ------------------------------------------
    async def sim_scan(self, user: User, name: str, qr: str | None, phone: str) -> str:
        session = await self.ctx.sim.scan_session(user, name, qr, phone)
        return session.client_id

    async def sim_write(self, user: User, name: str, sender: str, text: str) -> str:
        if not text.strip():
            raise ValidationFailed(N_("text: must not be empty"))
        session = await self.ctx.sessions.get(user, name)
        sender = self.ctx.sessions.phone(sender, session)
        if session.phone is None or session.state is not SessionState.CONNECTED:
            raise WrongState(
                N_("Connect your WhatsApp first: the simulated phone writes to its number."),
                hint=N_("Scan the QR code with the simulated phone."),
            )
        return await self.ctx.sim.phone_send(user, sender, session.phone, text)

    # -- api keys ----------------------------------------------------------------------------
    async def api_keys(self, user: User) -> list[ApiKey]:
        return await self.ctx.accounts.api_keys(user)

    async def create_api_key(self, user: User, name: str) -> tuple[ApiKey, str]:
        return await self.ctx.accounts.create_api_key(user, name)

    async def revoke_api_key(self, user: User, key_id: int) -> bool:
        return await self.ctx.accounts.revoke_api_key(user, key_id)

    # -- webhooks ----------------------------------------------------------------------------
    async def webhooks(self, user: User) -> list[Webhook]:
        return await self.ctx.webhooks.list_for(user)

    async def create_webhook(self, user: User, url: str, events: list[str], secret: str) -> Webhook:
        url = url.strip()
        if not url:
            raise ValidationFailed(
                N_("url: must not be empty"), hint=N_("Type the address zapgate should call.")
            )
        return await self.ctx.webhooks.create(
            user, url=url, events=events, secret=secret.strip() or None
        )

    async def webhook_log(self, user: User, webhook_id: int) -> WebhookLog:
        # Both are scoped to the caller: anyone else's webhook id is WebhookNotFound (404).
        hook = await self.ctx.webhooks.get(user, webhook_id)
        deliveries = await self.ctx.webhooks.deliveries(user, webhook_id, RECENT_DELIVERIES)
        return WebhookLog(webhook=hook, deliveries=deliveries)

    async def ping_webhook(self, user: User, webhook_id: int) -> str:
        return (await self.ctx.webhooks.ping(user, webhook_id)).id

    async def delete_webhook(self, user: User, webhook_id: int) -> None:
        await self.ctx.webhooks.delete(user, webhook_id)

    # -- users -------------------------------------------------------------------------------
    async def sign_up(self, email: str, password: str) -> User:
        return await self.ctx.accounts.sign_up(email, password)

    async def set_lang(self, user: User, lang: str | None) -> None:
        await self.ctx.accounts.set_lang(user, lang)

    # -- admin -------------------------------------------------------------------------------
    async def workers(self) -> list[WorkerStatus]:
        return await self.ctx.admin.workers()

    async def all_sessions(self) -> list[AdminSessionRow]:
        emails = {u.id: u.email for u in await self.ctx.admin.users()}
        return [
            AdminSessionRow(session=s, email=emails.get(s.user_id, f"#{s.user_id}"))
            for s in await self.ctx.admin.sessions()
        ]
