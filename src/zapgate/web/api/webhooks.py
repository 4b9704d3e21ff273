"""/v1/webhooks: thin routes over WebhookService."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from zapgate.web.deps import Ctx, CurrentUser, DbId
from zapgate.web.schemas.errors import AUTHED, WEBHOOK, WITH_BODY
from zapgate.web.schemas.webhooks import (
    DeliveryList,
    DeliveryPublic,
    PingOut,
    WebhookCreate,
    WebhookList,
    WebhookPublic,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.get("", responses=AUTHED)
async def list_webhooks(ctx: Ctx, user: CurrentUser) -> WebhookList:
    return WebhookList(items=[WebhookPublic.of(w) for w in await ctx.webhooks.list_for(user)])


@router.post("", status_code=201, responses=WITH_BODY)
async def create_webhook(body: WebhookCreate, ctx: Ctx, user: CurrentUser) -> WebhookPublic:
    """Each delivery POSTs `{id, type, session, occurred_at, data}`, signed in
    `X-Zapgate-Signature`. The `data` of `message.received` and `message.status` is the
    message as `MessagePublic` shows it: `id` (the gateway's), `wa_id` (WhatsApp's, once
    sent), `direction`, `chat` (a phone whenever known, else a LID), `chat_lid`, `text`,
    `status`, `status_reason`, `created_at`, `media`."""
    hook = await ctx.webhooks.create(user, url=body.url, events=body.events, secret=body.secret)
    return WebhookPublic.of(hook, with_secret=True)


@router.get("/{webhook_id}", responses=WEBHOOK)
async def get_webhook(webhook_id: DbId, ctx: Ctx, user: CurrentUser) -> WebhookPublic:
    return WebhookPublic.of(await ctx.webhooks.get(user, webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=WEBHOOK)
async def delete_webhook(webhook_id: DbId, ctx: Ctx, user: CurrentUser) -> Response:
    await ctx.webhooks.delete(user, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/ping", status_code=202, responses=WEBHOOK)
async def ping_webhook(webhook_id: DbId, ctx: Ctx, user: CurrentUser) -> PingOut:
    return PingOut(event_id=(await ctx.webhooks.ping(user, webhook_id)).id)


@router.get("/{webhook_id}/deliveries", responses=WEBHOOK)
async def deliveries(
    webhook_id: DbId,
    ctx: Ctx,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    items = await ctx.webhooks.deliveries(user, webhook_id, limit)
    return DeliveryList(items=[DeliveryPublic.of(d) for d in items])
