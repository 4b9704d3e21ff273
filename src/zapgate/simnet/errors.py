"""Errors of the simulated network. Each is a GatewayError with its own errcode, so a
caller sees *why* a scan or a message was refused and what to do about it."""

from __future__ import annotations

from zapgate.errors import Conflict, GatewayError, NotFound


class QrNotFound(NotFound):
    errcode = "qr_not_found"
    default_hint = (
        "The QR code is unknown or has expired (a session shows a new one every few seconds). "
        "Scan the QR the session shows now: GET /v1/sessions/{name}/qr."
    )


class PairCodeNotFound(NotFound):
    errcode = "pair_code_not_found"
    default_hint = (
        "The pairing code is unknown, expired, or was asked for another number. "
        "Ask for a new one: POST /v1/sessions/{name}/pair-code with this phone number."
    )


class NumberNotLinked(NotFound):
    errcode = "number_not_linked"
    default_hint = (
        "No session is linked to that number on the simulated network. Start a sim session "
        "and scan its QR with that phone first."
    )


class DeviceNotLinked(Conflict):
    errcode = "device_not_linked"
    default_hint = "Link the session first: scan its QR or enter its pairing code."


class DeviceOffline(Conflict):
    errcode = "device_offline"
    is_transient = True
    default_hint = "The session is not connected to the simulated network; it reconnects by itself."


SIMNET_ERRORS: dict[str, type[GatewayError]] = {
    cls.errcode: cls
    for cls in (QrNotFound, PairCodeNotFound, NumberNotLinked, DeviceNotLinked, DeviceOffline)
}
"""errcode -> class for the errors above, so an HTTP client can rebuild them exactly."""
