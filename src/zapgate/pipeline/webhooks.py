"""Webhook delivery: signed POSTs of outbox events, retried with exponential backoff and
jitter for `ZAPGATE_WEBHOOK_RETRY_PERIOD`, in order per webhook, each webhook on its own
task so one slow endpoint never delays another's deliveries. Pending deliveries live in
the registry, so they survive a restart (at-least-once; receivers de-duplicate on the
event id)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import httpx

from zapgate import __version__
from zapgate.config import Settings
from zapgate.domain.models import Delivery, Event, Webhook
from zapgate.errors import GatewayError
from zapgate.net.client import guarded_client
from zapgate.pipeline.base import PollingLoop
from zapgate.registry import Registry

logger = logging.getLogger(__name__)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(event: Event) -> bytes:
    return json.dumps(event.payload(), separators=(",", ":"), ensure_ascii=False).encode()


class WebhookDispatcher(PollingLoop):
    name = "webhooks"
    failure = "webhook scan failed"

    def __init__(self, settings: Settings, registry: Registry) -> None:
        super().__init__(settings.poll_interval)
        self.settings = settings
        self.registry = registry
        self._running: set[int] = set()
        # Redirects are not followed (a 3xx is a failed delivery); every connection is
        # checked by the SSRF guard on the address it goes to, so DNS changed since the
        # webhook was made cannot turn it to an internal address.
        self._http = guarded_client(
            allow_private=settings.allow_private_urls,
            timeout=settings.webhook_timeout,
            headers={"User-Agent": f"zapgate/{__version__}"},
        )

    async def close(self) -> None:
        await super().close()
        await self._http.aclose()

    async def tick(self) -> None:
        for hook in await self.registry.outbox.due_webhooks(datetime.now(UTC)):
            if hook.id not in self._running:
                self._running.add(hook.id)
                self.tasks.create(self._drain(hook), name=f"webhooks:{hook.id}:sender")

    async def _drain(self, hook: Webhook) -> None:
        """Send this webhook's due deliveries in event order; stop at the first failure
        (it is retried later, and later events wait behind it to keep the order)."""
        delivered: list[tuple[int, int, int]] = []
        try:
            while True:
                batch = await self.registry.outbox.pending_deliveries(hook.id)
                if not batch:
                    return
                for delivery, event in batch:
                    if delivery.next_attempt_at > datetime.now(UTC):
                        return
                    if not await self._attempt(hook, delivery, event, delivered):
                        return
                # Successes are recorded once per batch: a crash before that only means
                # those events are sent again (receivers de-duplicate on the event id).
                await self.registry.outbox.mark_delivered(delivered)
                delivered.clear()
        finally:
            self._running.discard(hook.id)
            await asyncio.shield(self.registry.outbox.mark_delivered(delivered))

    async def _attempt(
        self,
        hook: Webhook,
        delivery: Delivery,
        event: Event,
        delivered: list[tuple[int, int, int]],
    ) -> bool:
        body = encode(event)
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Zapgate-Event-Id": event.id,
            "X-Zapgate-Event-Type": event.type,
            "X-Zapgate-Timestamp": ts,
            "X-Zapgate-Signature": sign(hook.secret, ts, body),
            "X-Zapgate-Delivery-Attempt": str(delivery.attempts + 1),
        }
        code: int | None = None
        error: str | None = None
        try:
            resp = await self._http.post(hook.url, content=body, headers=headers)
            code = resp.status_code
        except GatewayError as exc:
            error = exc.error
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = delivery.attempts + 1
        now = datetime.now(UTC)
        if code is not None and 200 <= code < 300:
            delivered.append((delivery.id, attempts, code))
            return True
        await self.registry.outbox.mark_delivered(delivered)  # keep the log in order
        delivered.clear()
        if code == 410:
            logger.warning("webhook %s answered 410 Gone: disabling it", hook.id)
            await self.registry.outbox.update_delivery(
                delivery.id,
                status="failed",
                attempts=attempts,
                next_attempt_at=now,
                status_code=code,
                error="410 Gone: webhook disabled",
            )
            await self.registry.outbox.disable_webhook(hook.id, "the receiver answered 410 Gone")
            return False
        if error is None:
            error = f"HTTP {code}"
        age = (now - event.occurred_at).total_seconds()
        if age >= self.settings.webhook_retry_period:
            logger.warning(
                "webhook %s: giving up on event %s after %d attempts", hook.id, event.id, attempts
            )
            await self.registry.outbox.update_delivery(
                delivery.id,
                status="failed",
                attempts=attempts,
                next_attempt_at=now,
                status_code=code,
                error=f"gave up after {attempts} attempts: {error}",
            )
            return True  # later events may go now
        delay = min(
            self.settings.webhook_backoff_cap,
            self.settings.webhook_backoff_base * 2 ** (attempts - 1),
        )
        delay *= 0.5 + random.random()  # jitter, so retries of many events do not align
        logger.info(
            "webhook %s: attempt %d of event %s failed (%s); retry in %.1fs",
            hook.id,
            attempts,
            event.id,
            error,
            delay,
        )
        await self.registry.outbox.update_delivery(
            delivery.id,
            status="pending",
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            status_code=code,
            error=error,
        )
        return False
