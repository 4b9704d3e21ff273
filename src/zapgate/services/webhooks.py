"""Webhook use cases: create (URL checked against the SSRF guard, a secret generated when
none is given), list, delete, ping and the delivery log, always scoped to the caller."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from zapgate.config import Settings
from zapgate.domain.models import Delivery, Event, User, Webhook
from zapgate.errors import ValidationFailed, WebhookNotFound
from zapgate.i18n import N_
from zapgate.net.ssrf import check_url
from zapgate.pipeline.base import Loop
from zapgate.registry import Registry
from zapgate.registry.outbox import EVENT_TYPES

MAX_WEBHOOKS_PER_USER = 20


class WebhookService:
    def __init__(self, settings: Settings, registry: Registry, dispatcher: Loop) -> None:
        self.settings = settings
        self.registry = registry
        self.dispatcher = dispatcher

    async def create(
        self, user: User, *, url: str, events: Sequence[str], secret: str | None
    ) -> Webhook:
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise ValidationFailed(
                N_("events: unknown type(s) {unknown}"),
                hint=N_("Use any of: {types}."),
                unknown=", ".join(unknown)[:200],
                types=", ".join(EVENT_TYPES),
            )
        if secret is not None and len(secret) < 16:
            raise ValidationFailed(
                N_("secret: must be at least 16 characters"),
                hint=N_("Leave it out to have one generated."),
            )
        await check_url(url, allow_private=self.settings.allow_private_urls)
        if len(await self.registry.outbox.list_webhooks(user.id)) >= MAX_WEBHOOKS_PER_USER:
            raise ValidationFailed(
                N_("You already have {n} webhooks."),
                hint=N_("Delete one you no longer use."),
                n=MAX_WEBHOOKS_PER_USER,
            )
        return await self.registry.outbox.create_webhook(
            user.id,
            url=url,
            secret=secret or "whsec_" + secrets.token_urlsafe(32),
            events=sorted(set(events)),
        )

    async def list_for(self, user: User) -> list[Webhook]:
        return await self.registry.outbox.list_webhooks(user.id)

    async def get(self, user: User, webhook_id: int) -> Webhook:
        hook = await self.registry.outbox.get_webhook(user.id, webhook_id)
        if hook is None:
            raise WebhookNotFound(id=webhook_id)
        return hook

    async def delete(self, user: User, webhook_id: int) -> None:
        if not await self.registry.outbox.delete_webhook(user.id, webhook_id):
            raise WebhookNotFound(id=webhook_id)

    async def ping(self, user: User, webhook_id: int) -> Event:
        hook = await self.get(user, webhook_id)
        if not hook.enabled:
            raise ValidationFailed(
                N_("Webhook {id} is disabled: {reason}"),
                hint=N_("Create it again once the receiver works."),
                id=webhook_id,
                reason=hook.disabled_reason,
            )
        event = await self.registry.outbox.ping_webhook(user.id, webhook_id)
        self.dispatcher.wake()
        return event

    async def deliveries(self, user: User, webhook_id: int, limit: int) -> list[Delivery]:
        await self.get(user, webhook_id)
        return await self.registry.outbox.list_deliveries(user.id, webhook_id, limit=limit)
