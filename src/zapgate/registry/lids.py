"""Each session's LID <-> phone map, learned from the events that carry both addresses of
a chat (or sender), so that a chat is named by its phone whichever address its messages
came with, and a chat first seen by LID alone shows its phone once the map learns it.

`resolve` and `learn` take the open transaction of the message write they belong to;
`LidRepo.learn` is the same on its own transaction (a group sender's mapping)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.ids import is_lid
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import LidPhoneRow, MessageRow


def _is_phone(address: str) -> bool:
    return address.startswith("+") and address[1:].isdigit()


async def learn(s: AsyncSession, session_id: int, lid: str, phone: str) -> None:
    """Remember that `lid` is `phone`: the messages stored under that LID alone are named
    by the phone, and those stored under the phone alone get the LID, so the chat is one.
    Anything but a LID and an E.164 phone is not a mapping and is ignored. (Learning is
    rare, once per mapping: the second update may scan the session's messages.)"""
    if not is_lid(lid) or not _is_phone(phone):
        return
    row = await s.get(LidPhoneRow, (session_id, lid))
    if row is not None and row.phone == phone:
        return
    if row is None:
        s.add(LidPhoneRow(session_id=session_id, lid=lid, phone=phone, updated_at=utcnow()))
    else:
        row.phone, row.updated_at = phone, utcnow()
    await s.flush()
    await s.execute(
        update(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.chat_lid == lid,
            MessageRow.chat == lid,
        )
        .values(chat=phone)
        .execution_options(synchronize_session=False)
    )
    await s.execute(
        update(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.chat == phone,
            MessageRow.chat_lid.is_(None),
        )
        .values(chat_lid=lid)
        .execution_options(synchronize_session=False)
    )


async def resolve(
    s: AsyncSession, session_id: int, chat: str, chat_lid: str | None
) -> tuple[str, str | None]:
    """The (chat, chat_lid) a message is stored with: a phone with its LID teaches the
    map; a LID alone is named by its phone when the map knows it; a phone alone gets its
    LID when known. Other chats (groups) are kept as they are."""
    if is_lid(chat):
        phone = await s.scalar(
            select(LidPhoneRow.phone).where(
                LidPhoneRow.session_id == session_id, LidPhoneRow.lid == chat
            )
        )
        return phone or chat, chat
    if not _is_phone(chat):
        return chat, None
    if chat_lid is not None and is_lid(chat_lid):
        await learn(s, session_id, chat_lid, chat)
        return chat, chat_lid
    lid = await s.scalar(
        select(LidPhoneRow.lid)
        .where(LidPhoneRow.session_id == session_id, LidPhoneRow.phone == chat)
        .order_by(LidPhoneRow.updated_at.desc())
        .limit(1)
    )
    return chat, lid


class LidRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def learn(self, session_id: int, lid: str, phone: str) -> None:
        async with self._db.write() as s:
            await learn(s, session_id, lid, phone)
