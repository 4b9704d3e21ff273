"""Retention: once an hour, purge the messages older than `ZAPGATE_MESSAGE_RETENTION_DAYS`
(and their media files) and the events whose webhook deliveries can no longer be retried.
In the cluster topology one web process, the holder of the janitor's lease, will do it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from zapgate.config import Settings
from zapgate.pipeline.base import PollingLoop
from zapgate.registry import Registry
from zapgate.services.media import MediaStore

logger = logging.getLogger(__name__)
JANITOR_EVERY = 3600.0


class Janitor(PollingLoop):
    name = "janitor"
    failure = "retention purge failed"

    def __init__(self, settings: Settings, registry: Registry, media: MediaStore) -> None:
        super().__init__(JANITOR_EVERY)
        self.settings = settings
        self.registry = registry
        self.media = media

    async def tick(self) -> None:
        now = datetime.now(UTC)
        messages_before = now - timedelta(days=self.settings.message_retention_days)
        events_before = (
            now - timedelta(seconds=self.settings.webhook_retry_period) - timedelta(days=1)
        )
        m, e = await self.registry.purge(
            messages_before=messages_before, events_before=events_before
        )
        f = await self.media.purge(self.settings.message_retention_days)
        if m or e or f:
            logger.info(
                "retention: purged %d message(s), %d event(s) and %d media file(s)", m, e, f
            )
