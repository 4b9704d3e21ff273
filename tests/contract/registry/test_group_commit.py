"""The group commit (`registry/batch.py`) and its prepared statements
(`registry/prepared.py`), on every backend: concurrent writers share transactions, each
caller gets its own result (or its own error) once it is durable, and a failing job
spoils nobody else's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import fetch_rows, new_session
from zapgate.domain.models import MessageStatus
from zapgate.registry import Registry, batch
from zapgate.registry.prepared import Prepared
from zapgate.registry.tables import UserRow


def _user(email: str) -> Any:
    def job(conn: Connection) -> int:
        return int(
            conn.execute(
                insert(UserRow)
                .values(email=email, is_admin=False, created_at=text("CURRENT_TIMESTAMP"))
                .returning(UserRow.id)
            ).scalar_one()
        )

    return job


async def test_concurrent_writes_share_commits_and_each_gets_its_result(
    registry: Registry, raw: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    run_batch = batch._run_batch

    def counting(conn: Connection, queued: Any) -> None:
        sizes.append(len(queued))
        run_batch(conn, queued)

    monkeypatch.setattr(batch, "_run_batch", counting)
    ids = await asyncio.gather(*(registry._db.batch(_user(f"u{i}@x.com")) for i in range(50)))
    assert len(set(ids)) == 50
    assert sum(sizes) == 50 and len(sizes) < 50  # shared transactions
    # Durable when answered: another connection sees every row.
    rows = await fetch_rows(raw, "SELECT id, email FROM users")
    assert {(r[0], r[1]) for r in rows} == {(i, f"u{n}@x.com") for n, i in enumerate(ids)}


async def test_a_failing_job_gets_its_error_and_the_others_commit(
    registry: Registry, raw: AsyncEngine
) -> None:
    await registry._db.batch(_user("taken@x.com"))
    results = await asyncio.gather(
        registry._db.batch(_user("a@x.com")),
        registry._db.batch(_user("taken@x.com")),  # unique email
        registry._db.batch(_user("b@x.com")),
        return_exceptions=True,
    )
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], IntegrityError)
    emails = sorted(r[0] for r in await fetch_rows(raw, "SELECT email FROM users"))
    assert emails == ["a@x.com", "b@x.com", "taken@x.com"]


async def test_a_job_raising_its_own_error_rolls_back_only_its_writes(
    registry: Registry, raw: AsyncEngine
) -> None:
    def half_done(conn: Connection) -> None:
        _user("half@x.com")(conn)
        raise LookupError("changed my mind")

    results = await asyncio.gather(
        registry._db.batch(_user("kept@x.com")),
        registry._db.batch(half_done),
        return_exceptions=True,
    )
    assert isinstance(results[1], LookupError)
    emails = [r[0] for r in await fetch_rows(raw, "SELECT email FROM users")]
    assert emails == ["kept@x.com"]


async def test_message_writes_from_many_callers_keep_their_own_order(
    registry: Registry,
) -> None:
    sid = await new_session(registry)
    added = await asyncio.gather(
        *(
            registry.messages.add(
                sid,
                id=f"3EB0{i:04d}",
                direction="out",
                chat="+5511999990001",
                text=str(i),
                status=MessageStatus.PENDING,
            )
            for i in range(40)
        )
    )
    assert all(created for _, created in added)
    # Each caller's status changes, receipts included, land on its own message.
    await asyncio.gather(
        *(
            registry.messages.update_status(sid, m.id, MessageStatus.SENT, wa_id=f"W{m.id}")
            for m, _ in added
        )
    )
    moved = await asyncio.gather(
        *(
            registry.messages.update_statuses_by_wa_id(
                sid, [(f"W{m.id}", MessageStatus.DELIVERED), (f"W{m.id}", MessageStatus.READ)]
            )
            for m, _ in added
        )
    )
    assert [[x.status if x else None for x in pair] for pair in moved] == [
        [MessageStatus.DELIVERED, MessageStatus.READ]
    ] * 40
    events = await registry.outbox.list_events(
        (await registry.sessions.get_by_id(sid)).user_id,  # type: ignore[union-attr]
        session_id=sid,
        after=0,
        limit=1000,
    )
    # One event per message written and per status it moved to: 40 x (pending, sent,
    # delivered, read), each naming its message.
    assert len(events) == 160
    assert {e.data["id"] for e in events} == {m.id for m, _ in added}


async def test_closing_finishes_what_is_queued_then_refuses(db_url: str) -> None:
    registry = await Registry.open(db_url)
    pending = [asyncio.ensure_future(registry._db.batch(_user(f"c{i}@x.com"))) for i in range(5)]
    await asyncio.sleep(0)
    await registry.close()
    assert all(isinstance(p.result(), int) for p in pending)
    with pytest.raises(RuntimeError, match="closed"):
        await registry._db.batch(_user("late@x.com"))


async def test_prepared_statements_read_what_sqlalchemy_reads(
    registry: Registry, raw: AsyncEngine
) -> None:
    sid = await new_session(registry)
    message, _ = await registry.messages.add(
        sid,
        id="3EB0PREP",
        direction="out",
        chat="+5511999990001",
        text="olá",
        status=MessageStatus.PENDING,
    )
    by_id = Prepared(select(UserRow).where(UserRow.email.like(bindparam("pattern"))).limit(1))
    row = await registry._db.batch(lambda conn: by_id.first(conn, {"pattern": "%@example.com"}))
    assert row is not None and row.email.endswith("@example.com")
    # Timestamps written by prepared statements read back equal through SQLAlchemy.
    stored = await registry.messages.get(sid, "3EB0PREP")
    assert stored is not None and stored.created_at == message.created_at
    assert stored.text == "olá"


async def test_prepared_statements_raise_sqlalchemys_errors(registry: Registry) -> None:
    add_user = Prepared(
        insert(UserRow).values(
            email=bindparam("email"), is_admin=False, created_at=bindparam("now")
        )
    )
    await registry.users.create("dup@example.com")
    with pytest.raises(IntegrityError):
        await registry._db.batch(
            lambda conn: add_user.run(conn, {"email": "dup@example.com", "now": datetime.now(UTC)})
        )
    with pytest.raises(KeyError):  # a bind parameter left out is a bug, not a NULL
        await registry._db.batch(lambda conn: add_user.run(conn, {"email": "x@example.com"}))
