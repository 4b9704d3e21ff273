"""Each session's answers to "is this number on WhatsApp?", kept so a number checked
again within ZAPGATE_CONTACT_CHECK_TTL is not asked about again; the LIDs they carry teach
the session's LID map."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from zapgate.domain.contacts import NumberCheck
from zapgate.domain.models import CheckedNumber
from zapgate.registry import lids
from zapgate.registry.convert import as_utc, utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import NumberCheckRow


def _checked(row: Any, *, cached: bool) -> CheckedNumber:
    check = NumberCheck(
        phone=row.phone,
        on_whatsapp=bool(row.on_whatsapp),
        jid=row.jid,
        lid=row.lid,
        business=bool(row.business),
    )
    return CheckedNumber(check=check, checked_at=as_utc(row.checked_at), cached=cached)


class NumberCheckRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def cached(
        self, session_id: int, phones: Sequence[str], *, since: datetime
    ) -> dict[str, CheckedNumber]:
        """The session's answers for `phones` checked at `since` or later, by phone."""
        if not phones:
            return {}
        async with self._db.read() as s:
            rows = await s.execute(
                select(NumberCheckRow.__table__).where(
                    NumberCheckRow.session_id == session_id,
                    NumberCheckRow.phone.in_(list(phones)),
                    NumberCheckRow.checked_at >= since,
                )
            )
            return {row.phone: _checked(row, cached=True) for row in rows}

    async def store(self, session_id: int, checks: Sequence[NumberCheck]) -> list[CheckedNumber]:
        """Keep WhatsApp's answers (each replaces the phone's earlier one); the LID of a
        number on WhatsApp teaches the session's LID map, so a chat that comes with that
        LID alone is named by its phone."""
        now = utcnow()

        def job(conn: Connection) -> None:
            conn.execute(
                delete(NumberCheckRow).where(
                    NumberCheckRow.session_id == session_id,
                    NumberCheckRow.phone.in_([c.phone for c in checks]),
                )
            )
            conn.execute(
                insert(NumberCheckRow),
                [
                    {
                        "session_id": session_id,
                        "phone": c.phone,
                        "on_whatsapp": c.on_whatsapp,
                        "jid": c.jid,
                        "lid": c.lid,
                        "business": c.business,
                        "checked_at": now,
                    }
                    for c in checks
                ],
            )
            for c in checks:
                if c.on_whatsapp and c.lid is not None:
                    lids.learn(conn, session_id, c.lid, c.phone)

        if checks:
            await self._db.batch(job)
        return [CheckedNumber(check=c, checked_at=now) for c in checks]
