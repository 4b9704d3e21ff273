"""Each session's contacts: the latest name (push name) each one set in WhatsApp, as
their messages carried it. A contact is keyed by its address as the session's LID <->
phone map names it (`registry/lids.py`): a contact first seen by LID alone moves to its
phone once the map learns it, so a LID and its phone are one contact.

`remember` and `merge` are parts of the group-commit job of the message write (or the
mapping) they belong to (`registry/batch.py`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.registry.convert import as_utc
from zapgate.registry.prepared import Prepared
from zapgate.registry.tables import ContactRow

_NAME_OF = Prepared(
    select(ContactRow.push_name, ContactRow.updated_at).where(
        ContactRow.session_id == bindparam("sid"), ContactRow.address == bindparam("address")
    )
)


def remember(conn: Connection, session_id: int, address: str, name: str, at: datetime) -> None:
    """A message sent at `at` by `address` carried `name`: it is the contact's name
    unless a newer message brought another (an engine may deliver an old message late)."""
    known = _NAME_OF.first(conn, {"sid": session_id, "address": address})
    if known is None:
        conn.execute(
            insert(ContactRow).values(
                session_id=session_id, address=address, push_name=name, updated_at=at
            )
        )
    elif known.push_name != name and as_utc(known.updated_at) <= as_utc(at):
        conn.execute(
            update(ContactRow)
            .where(ContactRow.session_id == session_id, ContactRow.address == address)
            .values(push_name=name, updated_at=at)
        )


def merge(conn: Connection, session_id: int, lid: str, phone: str) -> None:
    """`lid` is `phone`: the contact known by the LID becomes the phone's (the newer
    name of the two wins)."""
    by_lid = _NAME_OF.first(conn, {"sid": session_id, "address": lid})
    if by_lid is None:
        return
    by_phone = _NAME_OF.first(conn, {"sid": session_id, "address": phone})
    if by_phone is not None:
        conn.execute(
            delete(ContactRow).where(ContactRow.session_id == session_id, ContactRow.address == lid)
        )
        if as_utc(by_phone.updated_at) < as_utc(by_lid.updated_at):
            remember(conn, session_id, phone, by_lid.push_name, by_lid.updated_at)
        return
    conn.execute(
        update(ContactRow)
        .where(ContactRow.session_id == session_id, ContactRow.address == lid)
        .values(address=phone)
    )


async def names(s: AsyncSession, session_id: int, addresses: Iterable[str]) -> dict[str, str]:
    """The names of the contacts at `addresses` that have one."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    rows = await s.execute(
        select(ContactRow.address, ContactRow.push_name).where(
            ContactRow.session_id == session_id, ContactRow.address.in_(wanted)
        )
    )
    return {address: name for address, name in rows}
