"""Webhook delivery: signed POSTs of outbox events, retried with exponential backoff and
jitter for `ZAPGATE_WEBHOOK_RETRY_PERIOD`, in order per webhook.

Each webhook with due deliveries gets a lane (a task, `_drain`) that claims them a page at
a time, oldest event first, and POSTs them one after another: the order within a webhook
holds, and a failed delivery blocks the later ones until it is retried or given up.
Lanes of different webhooks run concurrently, so one slow or failing receiver never
delays another's deliveries. The POSTs share one pooled HTTP/1.1 client that keeps its
connections alive. Results are written in batches (`ResultLog`): one transaction carries
every lane's results since the previous one.

Pending deliveries live in the registry, so they survive a restart. A delivery is written
as delivered only after the receiver answered 2xx: a crash between the answer and the
write means the event is sent again (at-least-once; receivers de-duplicate on the event
id), never lost."""

from __future__ import annotations

import asyncio
import dataclasses
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
from zapgate.net.client import LIMITS, guarded_client
from zapgate.pipeline.base import PollingLoop
from zapgate.registry import Registry

logger = logging.getLogger(__name__)

# Deliveries a lane claims at once. A page's results are written when it is done, so a
# crash sends at most this many deliveries (per webhook) a second time.
PAGE = 100
# A lane also writes its results at least this often, so the delivery log of a slow
# receiver is not a page behind.
FLUSH_EVERY = 1.0
# How long closing waits for the last results to be written.
CLOSE_FLUSH_TIMEOUT = 5.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(event: Event) -> bytes:
    return json.dumps(event.payload(), separators=(",", ":"), ensure_ascii=False).encode()


class ResultLog:
    """Delivery results on their way to the registry, many to a transaction.

    Lanes `add` results as they come and `flush()` at the end of a page. Lanes flushing
    while a write is under way queue behind it, and the next write takes every result added
    by then, so concurrent lanes share transactions (a group commit) instead of one each.
    A write that fails is retried until it succeeds: a lane goes on only once its results
    are written, so the registry never falls further behind than one page per lane."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._pending: list[Delivery] = []
        self._lock = asyncio.Lock()

    def add(self, result: Delivery) -> None:
        self._pending.append(result)

    def __len__(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Return once every result added before this call is written."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[Delivery]) -> None:
        delay = 0.1
        try:
            while True:
                try:
                    await self.registry.outbox.record_results(batch)
                    return
                except Exception:
                    logger.exception(
                        "webhooks: writing %d delivery results failed; retrying", len(batch)
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        except asyncio.CancelledError:
            # Kept for the flush on close; written twice at worst, with the same values.
            self._pending[:0] = batch
            raise


class WebhookDispatcher(PollingLoop):
    """The scan (`tick`, every poll interval or when woken) finds webhooks with due
    deliveries and starts a lane for each one that has none running and is not waiting
    for a retry."""

    name = "webhooks"
    failure = "webhook scan failed"

    def __init__(
        self, settings: Settings, registry: Registry, *, limits: httpx.Limits = LIMITS
    ) -> None:
        super().__init__(settings.poll_interval)
        self.settings = settings
        self.registry = registry
        self.results = ResultLog(registry)
        self._lanes: set[int] = set()
        # Webhooks whose first pending delivery waits for its retry: not scanned till then.
        self._blocked_until: dict[int, datetime] = {}
        # Counts wake-ups: a lane that found nothing new looks once more if one came while
        # it looked (the scan that wake-up caused skipped the webhook: its lane was running).
        self._news = 0
        # Redirects are not followed (a 3xx is a failed delivery); every connection is
        # checked by the SSRF guard on the address it goes to, so DNS changed since the
        # webhook was made cannot turn it to an internal address.
        self._http = guarded_client(
            allow_private=settings.allow_private_urls,
            timeout=settings.webhook_timeout,
            headers={"User-Agent": f"zapgate/{__version__}"},
            limits=limits,
        )
        # No more POSTs at once than the pool has connections: one waiting for a
        # connection would spend its timeout there and count as a failed attempt.
        self._slots = asyncio.Semaphore(limits.max_connections or 100)

    def wake(self) -> None:
        self._news += 1
        super().wake()

    async def close(self) -> None:
        await super().close()
        try:
            async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                await self.results.flush()
        except TimeoutError:
            logger.warning("webhooks: %d delivery results not written on close", len(self.results))
        await self._http.aclose()

    async def tick(self) -> None:
        now = datetime.now(UTC)
        self._blocked_until = {k: t for k, t in self._blocked_until.items() if t > now}
        for hook in await self.registry.outbox.due_webhooks(now):
            if hook.id in self._lanes or hook.id in self._blocked_until:
                continue
            self._lanes.add(hook.id)
            self.tasks.create(self._lane(hook), name=f"webhooks:{hook.id}:sender")

    async def _lane(self, hook: Webhook) -> None:
        try:
            await self._drain(hook)
        finally:
            self._lanes.discard(hook.id)

    async def _drain(self, hook: Webhook) -> None:
        """Send this webhook's due deliveries in event order, a page at a time, until none
        is left or one fails (it is retried later, and later events wait behind it to keep
        the order). Every page's results are written before the next page is claimed, so
        a claim never sees a delivery that was already sent as still pending."""
        while True:
            news = self._news
            page = await self.registry.outbox.pending_deliveries(hook.id, limit=PAGE)
            if not page:
                if news == self._news:
                    return
                continue
            go_on = await self._send_page(hook, page)
            await self.results.flush()
            if not go_on:
                return

    async def _send_page(self, hook: Webhook, page: list[tuple[Delivery, Event]]) -> bool:
        """POST a page in order; False when the lane must stop (a delivery waits for its
        retry, or the webhook is gone)."""
        flushed = time.monotonic()
        for delivery, event in page:
            if delivery.next_attempt_at > datetime.now(UTC):
                self._blocked_until[hook.id] = delivery.next_attempt_at
                return False
            async with self._slots:
                code, error = await self._post(hook, delivery, event)
            if not await self._settle(hook, delivery, event, code, error):
                return False
            if time.monotonic() - flushed >= FLUSH_EVERY:
                await self.results.flush()
                flushed = time.monotonic()
        return True

    async def _post(
        self, hook: Webhook, delivery: Delivery, event: Event
    ) -> tuple[int | None, str | None]:
        """One signed POST: the status code the receiver answered, or why there was none."""
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
        try:
            resp = await self._http.post(hook.url, content=body, headers=headers)
        except GatewayError as exc:
            return None, exc.error
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return resp.status_code, None

    async def _settle(
        self,
        hook: Webhook,
        delivery: Delivery,
        event: Event,
        code: int | None,
        error: str | None,
    ) -> bool:
        """Log the attempt's result for writing; True when the lane may send the next."""
        attempts = delivery.attempts + 1
        now = datetime.now(UTC)

        def outcome(status: str, next_attempt_at: datetime, last_error: str | None) -> Delivery:
            return dataclasses.replace(
                delivery,
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_status_code=code,
                last_error=last_error,
            )

        if code is not None and 200 <= code < 300:
            self.results.add(outcome("delivered", now, None))
            return True
        if code == 410:
            logger.warning("webhook %s answered 410 Gone: disabling it", hook.id)
            self.results.add(outcome("failed", now, "410 Gone: webhook disabled"))
            await self.results.flush()  # before the rest of its deliveries are cancelled
            await self.registry.outbox.disable_webhook(hook.id, "the receiver answered 410 Gone")
            return False
        if error is None:
            error = f"HTTP {code}"
        age = (now - event.occurred_at).total_seconds()
        if age >= self.settings.webhook_retry_period:
            logger.warning(
                "webhook %s: giving up on event %s after %d attempts", hook.id, event.id, attempts
            )
            self.results.add(outcome("failed", now, f"gave up after {attempts} attempts: {error}"))
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
        retry_at = now + timedelta(seconds=delay)
        self.results.add(outcome("pending", retry_at, error))
        self._blocked_until[hook.id] = retry_at
        return False
