"""The calls that rang at each session, each reported once as `call.received`, and
when each was rejected."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from zapgate.domain.events import CallReceived
from zapgate.domain.ids import identity
from zapgate.domain.models import Call
from zapgate.registry import lids, outbox
from zapgate.registry.convert import as_utc, as_utc_or_none, utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import CallRow, SessionRow


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
