"""Each session's LID <-> phone map, learned from the events that carry both addresses of
a chat (or sender), so that a chat is named by its phone whichever address its messages
came with, and a chat first seen by LID alone shows its phone once the map learns it.

`resolve` and `learn` are parts of the group-commit job of the message write they belong
to (`registry/batch.py`); `LidRepo.learn` is a job of its own (a group sender's
mapping)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select, update

from zapgate.domain.ids import is_lid
from zapgate.registry import contacts
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database
from zapgate.registry.prepared import Prepared
from zapgate.registry.tables import LidPhoneRow, MessageRow

_PHONE_OF = Prepared(
    select(LidPhoneRow.phone).where(
        LidPhoneRow.session_id == bindparam("sid"), LidPhoneRow.lid == bindparam("lid")
    )
)
_LID_OF = Prepared(
    select(LidPhoneRow.lid)
    .where(LidPhoneRow.session_id == bindparam("sid"), LidPhoneRow.phone == bindparam("phone"))
    .order_by(LidPhoneRow.updated_at.desc())
    .limit(1)
)


def _is_phone(address: str) -> bool:
    return address.startswith("+") and address[1:].isdigit()


def learn(conn: Connection, session_id: int, lid: str, phone: str) -> None:
    """Remember that `lid` is `phone`: the messages stored under that LID alone are named
    by the phone, and those stored under the phone alone get the LID, so the chat is one;
    the contact known by the LID becomes the phone's.
    Anything but a LID and an E.164 phone is not a mapping and is ignored. (Learning is
    rare, once per mapping: the second update may scan the session's messages.)"""
    if not is_lid(lid) or not _is_phone(phone):
        return
    known = _PHONE_OF.scalar(conn, {"sid": session_id, "lid": lid})
    if known == phone:
        return
    if known is None:
        conn.execute(
            insert(LidPhoneRow).values(
                session_id=session_id, lid=lid, phone=phone, updated_at=utcnow()
            )
        )
    else:
        conn.execute(
            update(LidPhoneRow)
            .where(LidPhoneRow.session_id == session_id, LidPhoneRow.lid == lid)
            .values(phone=phone, updated_at=utcnow())
        )
    conn.execute(
        update(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.chat_lid == lid,
            MessageRow.chat == lid,
        )
        .values(chat=phone)
    )
    conn.execute(
        update(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.chat == phone,
            MessageRow.chat_lid.is_(None),
        )
        .values(chat_lid=lid)
    )
    contacts.merge(conn, session_id, lid, phone)


def resolve(
    conn: Connection, session_id: int, chat: str, chat_lid: str | None
) -> tuple[str, str | None]:
    """The (chat, chat_lid) a message is stored with: a phone with its LID teaches the
    map; a LID alone is named by its phone when the map knows it; a phone alone gets its
    LID when known. Other chats (groups) are kept as they are."""
    if is_lid(chat):
        phone = _PHONE_OF.scalar(conn, {"sid": session_id, "lid": chat})
        return phone or chat, chat
    if not _is_phone(chat):
        return chat, None
    if chat_lid is not None and is_lid(chat_lid):
        learn(conn, session_id, chat_lid, chat)
        return chat, chat_lid
    lid = _LID_OF.scalar(conn, {"sid": session_id, "phone": chat})
    return chat, lid


class LidRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def learn(self, session_id: int, lid: str, phone: str) -> None:
        await self._db.batch(lambda conn: learn(conn, session_id, lid, phone))
