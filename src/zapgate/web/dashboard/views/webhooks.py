"""The webhooks tab: list, create (the secret shown once), a webhook's deliveries,
ping and delete."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Response

from zapgate.errors import DETAILS_HINT, GatewayError, NotFound, ValidationFailed
from zapgate.web.dashboard.render import Page
from zapgate.web.dashboard.service import WEBHOOK_EVENTS, WebhookLog
from zapgate.web.dashboard.views.deps import UserPage, UserPost, _user
from zapgate.web.deps import DbId

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class FormError:
    """A service error as a form shows it: translated, the API's field prefix ("url: ")
    replaced by the form's label, without the API-only hint about 'details'."""

    text: str
    hint: str | None
    lead: str | None = None
    field: str | None = None

    @classmethod
    def of(cls, page: Page, err: GatewayError) -> FormError:
        labels = {
            "url": page._("URL"),
            "events": page._("Events"),
            "secret": page._("Signing secret"),
        }
        lead: str | None = None
        field: str | None = None
        if err.errcode == "url_not_allowed":
            lead = page._("This server only sends webhooks to public addresses.")
            field = "url"
        text = page.error_text(err)
        prefix = re.match(r"(url|events|secret): ", text)
        if prefix is not None:
            field = prefix.group(1)
            text = f"{labels[field]}: {text[prefix.end() :]}"
        api_hints = (ValidationFailed.default_hint, DETAILS_HINT)
        hint = err.hint if err.hint and err.hint not in api_hints else None
        if hint and not text.endswith((".", "!", "?")):
            text += "."  # a sentence of its own before the hint
        return cls(
            text=text,
            hint=page.error_hint(err) if hint else None,
            lead=lead,
            field=field,
        )


async def _webhooks_page(page: Page, status: int = 200, **extra: Any) -> Response:
    hooks = await page.svc.webhooks(_user(page))
    extra.setdefault("new_secret", None)
    extra.setdefault("new_hook", None)
    extra.setdefault("notice", None)
    extra.setdefault("form_error", None)
    extra.setdefault("form", {"url": "", "events": [], "secret": ""})
    return page.render(
        "webhooks.html",
        status=status,
        nav="webhooks",
        webhooks=hooks,
        event_types=WEBHOOK_EVENTS,
        **extra,
    )


@router.get("/webhooks")
async def webhooks(page: UserPage) -> Response:
    query = page.request.query_params
    if query.get("deleted") == "1":
        return await _webhooks_page(page, notice=page._("The webhook was deleted."))
    token = query.get("new")
    fresh = page.svc.new_secrets.take(_user(page).id, token) if token else None
    if fresh is not None:
        hook_id, secret = int(fresh[0]), fresh[1]
        hooks = await page.svc.webhooks(_user(page))
        hook = next((h for h in hooks if h.id == hook_id), None)
        if hook is not None:
            return await _webhooks_page(page, new_secret=secret, new_hook=hook)
    return await _webhooks_page(page)


@router.post("/webhooks")
async def create_webhook(
    page: UserPost,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str] | None, Form()] = None,
    secret: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _user(page)
    chosen = list(events or [])[:10]
    try:
        hook = await page.svc.create_webhook(user, url, chosen, secret)
    except GatewayError as exc:
        if exc.status >= 500:
            raise
        logger.info("dashboard: webhook refused for user %s: %s", user.id, exc.errcode)
        return await _webhooks_page(
            page,
            status=exc.status,
            form_error=FormError.of(page, exc),
            form={"url": url, "events": chosen, "secret": secret},
        )
    # Post/redirect/get: a reload must not create a second webhook; the secret is shown once.
    return page.redirect(
        f"/webhooks?new={page.svc.new_secrets.put(user.id, str(hook.id), hook.secret)}"
    )


def _deliveries(page: Page, log: WebhookLog, **extra: Any) -> Response:
    return page.render("partials/deliveries.html", log=log, **extra)


async def _webhook_page(page: Page, webhook_id: int, status: int = 200, **extra: Any) -> Response:
    log = await page.svc.webhook_log(_user(page), webhook_id)
    extra.setdefault("notice", None)
    extra.setdefault("ping_error", None)
    return page.render(
        "webhook.html", status=status, nav="webhooks", log=log, hook=log.webhook, **extra
    )


@router.get("/webhooks/{webhook_id}")
async def webhook_page(webhook_id: DbId, page: UserPage) -> Response:
    notice = None
    if page.request.query_params.get("pinged") == "1":
        notice = page._("Test event sent. Its delivery shows up below.")
    return await _webhook_page(page, webhook_id, notice=notice)


@router.get("/ui/webhooks/{webhook_id}/deliveries")
async def webhook_deliveries(webhook_id: DbId, page: UserPage) -> Response:
    return _deliveries(page, await page.svc.webhook_log(_user(page), webhook_id))


@router.post("/webhooks/{webhook_id}/ping")
async def ping_webhook(webhook_id: DbId, page: UserPost) -> Response:
    user = _user(page)
    error: GatewayError | None = None
    try:
        await page.svc.ping_webhook(user, webhook_id)
    except NotFound:
        raise
    except GatewayError as exc:
        error = exc
    if not page.is_htmx:
        if error is not None:
            return await _webhook_page(
                page, webhook_id, status=error.status, ping_error=FormError.of(page, error)
            )
        return page.redirect(f"/webhooks/{webhook_id}?pinged=1")
    log = await page.svc.webhook_log(user, webhook_id)
    return _deliveries(
        page, log, oob_feedback=True, ping_error=FormError.of(page, error) if error else None
    )


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: DbId, page: UserPost) -> Response:
    await page.svc.delete_webhook(_user(page), webhook_id)
    logger.info("dashboard: user %s deleted webhook %s", _user(page).id, webhook_id)
    return page.redirect("/webhooks?deleted=1")
