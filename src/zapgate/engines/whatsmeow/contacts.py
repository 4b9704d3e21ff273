"""Inside a host process: what a session asks WhatsApp about other users, through
neonize's calls into whatsmeow, as the plain dicts of `domain.contacts` (`to_dict`).

What whatsmeow answers (user.go, store/sqlstore), and how it is read here:
* `IsOnWhatsApp` runs a usync query in LID addressing mode: an account's `JID` is its
  LID when WhatsApp gives one (whatsmeow then stores the LID <-> phone mapping; neonize
  does not pass the phone number on), its phone JID otherwise; `Query` is the number as
  asked. A business account carries its `VerifiedName`.
* `GetUserInfo` gives the about text (`Status`), the verified name of a business and the
  LID (stored as a mapping; neonize does not pass it on either).
* `GetProfilePictureInfo` fails with `ErrProfilePictureNotSet` (WhatsApp's 404) when
  there is no picture and `ErrProfilePictureUnauthorized` (401) when it is hidden from
  this account: neither is an error here, the URL is just None.
* The block list holds JIDs as WhatsApp keeps them (LIDs since whatsmeow blocks by LID,
  or phone JIDs): a contact is blocked when either of its JIDs is on it.
* The contact store (`whatsmeow_contacts`) holds the names the account's phone synced
  (app state: FirstName, FullName), the push names seen on messages and business
  names; the address book is the rows with a saved name.
"""

from __future__ import annotations

from typing import Any

from neonize.exc import GetProfilePictureError, IsOnWhatsAppError
from neonize.proto.Neonize_pb2 import JID
from neonize.utils.enum import BlocklistAction

from zapgate.engines.whatsmeow import convert

# whatsmeow's errors (errors.go) for a picture that is not there for this account.
PICTURE_NOT_SET = "that user or group does not have a profile picture"
PICTURE_HIDDEN = "the user has hidden their profile picture from you"
# What neonize's IsOnWhatsApp says when whatsmeow answered with no user at all.
NOTHING_RETURNED = "Function returned nothing."


def _digits(query: str) -> str:
    return query.partition("@")[0].lstrip("+")


def _lid(jid: Any) -> str | None:
    return f"{jid.User}@lid" if jid is not None and convert.is_lid(jid) else None


def check_numbers(client: Any, phones: list[str]) -> list[dict[str, Any]]:
    """Whether each of `phones` (E.164) has a WhatsApp account, in the order given."""
    try:
        answers = list(client.is_on_whatsapp(*phones))
    except IsOnWhatsAppError as exc:
        if str(exc) != NOTHING_RETURNED:
            raise
        answers = []
    by_number = {_digits(str(a.Query)): a for a in answers}
    checks: list[dict[str, Any]] = []
    for phone in phones:
        answer = by_number.get(phone.lstrip("+"))
        if answer is None or not answer.IsIn:
            checks.append({"phone": phone, "on_whatsapp": False})
            continue
        found = answer.JID
        pn = found if convert.is_phone(found) else convert.target(phone)
        lid = found if convert.is_lid(found) else convert.lid_for_phone(client, pn)
        checks.append(
            {
                "phone": phone,
                "on_whatsapp": True,
                "jid": f"{pn.User}@s.whatsapp.net",
                "lid": _lid(lid),
                "business": answer.HasField("VerifiedName"),
            }
        )
    return checks


def picture_error(exc: GetProfilePictureError) -> str:
    """The error text of a GetProfilePictureError (neonize raises it with its whole
    return protobuf, not the text)."""
    arg = exc.args[0] if exc.args else ""
    return str(getattr(arg, "Error", arg))


def picture_url(client: Any, jid: Any) -> str | None:
    """Where WhatsApp serves `jid`'s profile picture; None when it has none or hides it."""
    try:
        picture = client.get_profile_picture(jid)
    except GetProfilePictureError as exc:
        if picture_error(exc) in (PICTURE_NOT_SET, PICTURE_HIDDEN):
            return None
        raise RuntimeError(picture_error(exc)) from exc
    return str(picture.URL) or None


def _same(a: Any, b: Any) -> bool:
    return b is not None and str(a.User) == str(b.User) and str(a.Server) == str(b.Server)


def _push_name(client: Any, *jids: Any) -> str | None:
    """The push name whatsmeow's contact store keeps for the first of `jids` it knows."""
    for jid in jids:
        if jid is None:
            continue
        info = client.contact.get_contact(convert.make_jid(str(jid.User), str(jid.Server)))
        if info.Found and info.PushName:
            return str(info.PushName)
    return None


def profile(client: Any, address: str) -> dict[str, Any]:
    """`address` (E.164 or `digits@lid`) as WhatsApp shows it to this account."""
    asked = convert.target(address)
    infos = client.get_user_info(asked)
    info = next((i.UserInfo for i in infos if _same(i.JID, asked)), None)
    # GetUserInfo stored the LID mapping: both JIDs are known from here on.
    pn = asked if convert.is_phone(asked) else convert.phone_for_lid(client, asked)
    lid = asked if convert.is_lid(asked) else convert.lid_for_phone(client, asked)
    blocked = list(client.get_blocklist().JIDs)
    return {
        "address": convert.address(pn if pn is not None else asked),
        "lid": _lid(lid),
        "push_name": _push_name(client, pn, lid),
        "about": (str(info.Status) or None) if info is not None else None,
        "picture_url": picture_url(client, asked),
        "business": info is not None and info.HasField("VerifiedName"),
        "blocked": any(_same(j, pn) or _same(j, lid) for j in blocked),
    }


def set_blocked(client: Any, address: str, blocked: bool) -> None:
    action = BlocklistAction.BLOCK if blocked else BlocklistAction.UNBLOCK
    client.update_blocklist(convert.target(address), action)


def address_book(client: Any) -> list[dict[str, Any]]:
    """The contacts the account's phone synced (a saved name), one entry per person
    (whatsmeow may keep a row under the phone JID and one under the LID)."""
    entries: dict[str, dict[str, Any]] = {}
    for contact in client.contact.get_all_contacts():
        info = contact.Info
        shown, lid = convert.party(client, contact.JID, JID())
        entry = entries.setdefault(
            shown, {"address": shown, "name": None, "push_name": None, "lid": lid}
        )
        entry["name"] = entry["name"] or str(info.FullName or info.FirstName) or None
        entry["push_name"] = entry["push_name"] or str(info.PushName) or None
        entry["lid"] = entry["lid"] or lid
    return [e for e in entries.values() if e["name"]]
