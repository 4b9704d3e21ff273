"""What a session learns about other users and the calls it gets: cached answers to "is
this number on WhatsApp?" (whose LIDs teach the session's LID map) and the calls that
rang, each reported once as `call.received`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from zapgate.domain.contacts import NumberCheck
from zapgate.domain.events import CallReceived
from zapgate.domain.ids import identity
from zapgate.domain.models import Call, CheckedNumber
from zapgate.registry import lids, outbox
from zapgate.registry.convert import as_utc, as_utc_or_none, utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import CallRow, NumberCheckRow, SessionRow


def _checked(row: Any, *, cached: bool) -> CheckedNumber:
    check = NumberCheck(
        phone=row.phone,
        on_whatsapp=bool(row.on_whatsapp),
        jid=row.jid,
        lid=row.lid,
        business=bool(row.business),
    )
    return CheckedNumber(check=check, checked_at=as_utc(row.checked_at), cached=cached)


def _call(row: Any) -> Call:
    return Call(
        session_id=row.session_id,
        id=row.id,
        caller=row.caller,
        caller_lid=row.caller_lid,
        video=bool(row.video),
        group=bool(row.is_group),
        auto_reject=bool(row.auto_reject),
        received_at=as_utc(row.received_at),
        rejected_at=as_utc_or_none(row.rejected_at),
    )


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


class CallRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, session_id: int, event: CallReceived) -> tuple[Call, bool] | None:
        """Store a call that rang and emit `call.received`, once: a call stored already is
        returned as it is (`False`). Whether the session rejects it (`auto_reject`) is
        decided here, by the session's setting when it rang. None: the session is gone."""

        def job(conn: Connection) -> tuple[Call, bool] | None:
            session = conn.execute(
                select(SessionRow.user_id, SessionRow.name, SessionRow.reject_calls).where(
                    SessionRow.id == session_id
                )
            ).first()
            if session is None:
                return None
            existing = conn.execute(
                select(CallRow.__table__).where(
                    CallRow.session_id == session_id, CallRow.id == event.id
                )
            ).first()
            if existing is not None:
                return _call(existing), False
            # The caller as chats name it: by phone when the LID map knows it.
            shown, lid = lids.resolve(conn, session_id, event.caller, event.caller_lid)
            values = {
                "session_id": session_id,
                "id": event.id,
                "caller": event.caller,
                "caller_lid": lid,
                "video": event.video,
                "is_group": event.group,
                "auto_reject": bool(session.reject_calls),
                "received_at": as_utc(event.timestamp),
                "rejected_at": None,
            }
            conn.execute(insert(CallRow).values(**values))
            outbox.emit(
                conn,
                user_id=session.user_id,
                session_id=session_id,
                session_name=session.name,
                type_="call.received",
                data={
                    "id": event.id,
                    "from": shown,
                    **identity(shown, lid),
                    "video": event.video,
                    "group": event.group,
                    "auto_rejected": bool(session.reject_calls),
                    "timestamp": as_utc(event.timestamp).isoformat(),
                },
            )
            row = conn.execute(
                select(CallRow.__table__).where(
                    CallRow.session_id == session_id, CallRow.id == event.id
                )
            ).one()
            return _call(row), True

        return await self._db.batch(job)

    async def get(self, session_id: int, call_id: str) -> Call | None:
        async with self._db.read() as s:
            row = (
                await s.execute(
                    select(CallRow.__table__).where(
                        CallRow.session_id == session_id, CallRow.id == call_id
                    )
                )
            ).first()
            return None if row is None else _call(row)

    async def mark_rejected(self, session_id: int, call_id: str) -> Call | None:
        """Record that the call was rejected (the first time counts)."""

        def job(conn: Connection) -> Call | None:
            conn.execute(
                update(CallRow)
                .where(
                    CallRow.session_id == session_id,
                    CallRow.id == call_id,
                    CallRow.rejected_at.is_(None),
                )
                .values(rejected_at=utcnow())
            )
            row = conn.execute(
                select(CallRow.__table__).where(
                    CallRow.session_id == session_id, CallRow.id == call_id
                )
            ).first()
            return None if row is None else _call(row)

        return await self._db.batch(job)
