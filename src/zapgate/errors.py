"""The GatewayError tree: every error the gateway reports, in this one module, with one
errcode -> class map. An error has an errcode, an HTTP status, a message template and a
hint template (both msgids of the catalog) and the parameters that fill them, and knows
whether retrying may help.

A specific class carries its own template: `SessionNotFound(name="x")`. A generic class
takes the template at the raise site: `ValidationFailed(N_("limit: at most {max}"), max=9)`.
A ready-made text without parameters (`NotFound(f"No user {uid}.")`) is used as it is,
never passed through `format`, so braces in it are safe. A class's own templates are always
formatted, so a literal brace in them is doubled (`{{name}}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from zapgate.i18n import N_

_JSON_SCALARS = (str, int, float, bool, type(None), list, dict)


def _same(text: str) -> str:
    return text


class GatewayError(Exception):
    """Base of every error zapgate reports to a caller.

    `errcode` is stable and machine-readable; `error` says what happened; `hint` says
    what to do about it. `params` fill both templates; those named in `body_params` are
    also fields of the response body.
    """

    errcode: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    template: str = N_("An unexpected error happened; it has been logged.")
    default_hint: ClassVar[str] = N_("Check the server log for details.")
    body_params: tuple[str, ...] = ()
    is_transient: ClassVar[bool] = False

    def __init__(
        self, template: str | None = None, /, *, hint: str | None = None, **params: Any
    ) -> None:
        self.template = type(self).template if template is None else template
        self.hint_template = type(self).default_hint if hint is None else hint
        self._given = (template is not None, hint is not None)
        # A class's own template is always formatted; a text given here only with params.
        self._formats = (template is None or bool(params), hint is None or bool(params))
        self.params = params
        self.error, self.hint = self.texts()
        super().__init__(self.error)

    def texts(self, gettext: Callable[[str], str] = _same) -> tuple[str, str]:
        """`error` and `hint`, each template looked up through `gettext` (a catalog's)
        before being formatted with the parameters."""
        formats_template, formats_hint = self._formats
        error, hint = gettext(self.template), gettext(self.hint_template)
        return (
            error.format(**self.params) if formats_template else error,
            hint.format(**self.params) if formats_hint else hint,
        )

    def to_dict(self, *, wire: bool = False) -> dict[str, Any]:
        """The response body `{errcode, error, hint, ...body_params}`. `wire` (the internal
        apps of the worker and the sim network) adds what `from_dict` needs to rebuild the
        error in the web tier: the parameters, and the templates a class does not own."""
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.error, "hint": self.hint}
        body.update((k, self.params[k]) for k in self.body_params if k in self.params)
        if wire:
            body["params"] = {
                k: v if isinstance(v, _JSON_SCALARS) else str(v) for k, v in self.params.items()
            }
            given_template, given_hint = self._given
            if given_template:
                body["template"] = self.template
            if given_hint:
                body["hint_template"] = self.hint_template
        return body


class BadRequest(GatewayError):
    errcode = "bad_request"
    status = 400
    default_hint = N_("Check the request against /docs.")


class InvalidJSON(BadRequest):
    errcode = "invalid_json"
    template = N_("The request body is not valid JSON.")
    default_hint = N_("Send a JSON object with Content-Type: application/json.")


class Unauthorized(GatewayError):
    errcode = "unauthorized"
    status = 401
    default_hint = N_("Send your API key as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'.")


class Forbidden(GatewayError):
    errcode = "forbidden"
    status = 403
    default_hint = N_("This needs an administrator account.")


class CsrfFailed(GatewayError):
    errcode = "csrf_failed"
    status = 403
    template = N_("The form has expired or did not come from this site.")
    default_hint = N_("Reload the page and submit the form again.")


class NotFound(GatewayError):
    errcode = "not_found"
    status = 404
    default_hint = N_("Check the URL; see /docs for the endpoints.")


class SessionNotFound(NotFound):
    errcode = "session_not_found"
    template = N_("You have no session named '{name}'.")
    default_hint = N_("Create it first with PUT /v1/sessions/{{name}}.")


class MediaNotFound(NotFound):
    errcode = "media_not_found"
    default_hint = N_("GET /v1/sessions/{{name}}/messages lists the messages that have media.")


class MessageNotFound(NotFound):
    errcode = "message_not_found"
    template = N_("Session '{name}' has no message {message_id!r}.")
    default_hint = N_(
        "GET /v1/sessions/{{name}}/messages lists its messages; a message is named by its "
        "id or its wa_id."
    )


class CallNotFound(NotFound):
    errcode = "call_not_found"
    template = N_("Session '{name}' has no call {call_id!r}.")
    default_hint = N_(
        "A call is known once it rang at the session: its id is the one of the call.received event."
    )


class WebhookNotFound(NotFound):
    errcode = "webhook_not_found"
    template = N_("You have no webhook {id}.")
    default_hint = N_("List your webhooks with GET /v1/webhooks.")


class QrNotFound(NotFound):
    errcode = "qr_not_found"
    template = N_("this QR code is unknown or has expired")
    default_hint = N_(
        "The QR code is unknown or has expired (a session shows a new one every few seconds). "
        "Scan the QR the session shows now: GET /v1/sessions/{{name}}/qr."
    )


class PairCodeNotFound(NotFound):
    errcode = "pair_code_not_found"
    template = N_("this pairing code is unknown or has expired")
    default_hint = N_(
        "The pairing code is unknown, expired, or was asked for another number. "
        "Ask for a new one: POST /v1/sessions/{{name}}/pair-code with this phone number."
    )


class NumberNotLinked(NotFound):
    errcode = "number_not_linked"
    template = N_("no device is linked to {phone}")
    default_hint = N_(
        "No session is linked to that number on the simulated network. Start a sim session "
        "and scan its QR with that phone first."
    )


class PhoneNotYours(NotFound):
    """A simulated phone's number that another account has linked to a session."""

    errcode = "phone_not_yours"
    template = N_("{phone} is linked to a session of another account.")
    default_hint = N_(
        "The simulated phone only uses your numbers: one of your sessions' numbers, or one "
        "no other account has linked."
    )


class Conflict(GatewayError):
    errcode = "conflict"
    status = 409
    default_hint = N_("Check the session state with GET /v1/sessions/{{name}}.")


class WrongState(Conflict):
    errcode = "wrong_state"


def not_connected(client_id: str, state: object) -> WrongState:
    """A send (or anything needing the socket) on a session that is not CONNECTED."""
    return WrongState(
        N_("session {client_id} is {state}, not CONNECTED"),
        hint=N_("Link the session (scan the QR) and wait for CONNECTED before sending."),
        client_id=client_id,
        state=str(state),
    )


def pairing_needs_qr_phase(client_id: str, state: object) -> WrongState:
    """A pairing code asked for outside SCAN_QR / PAIRING."""
    return WrongState(
        N_("session {client_id} is {state}; a pairing code needs SCAN_QR"),
        hint=N_("Start the session first; an already linked session needs no code."),
        client_id=client_id,
        state=str(state),
    )


class MessageActionRefused(Conflict):
    """An edit or a delete WhatsApp would refuse: someone else's message, an inbound
    one, one not sent yet, one already deleted, an edit after 15 minutes."""

    errcode = "message_action_refused"
    default_hint = N_(
        "Only messages this session sent can be edited (text, within 15 minutes of "
        "sending) or deleted for everyone."
    )


class EngineCannotChange(Conflict):
    errcode = "engine_cannot_change"
    template = N_(
        "Session '{name}' runs on the {engine} engine; its engine cannot change to {wanted}."
    )
    default_hint = N_(
        'Leave out "engine", or use another session name for a {wanted} session '
        "(or DELETE this one first)."
    )


class UserExists(Conflict):
    errcode = "user_exists"
    template = N_("A user with e-mail {email!r} already exists.")
    default_hint = N_("Use another e-mail address, or sign in with this one.")


class SessionLimitReached(Conflict):
    errcode = "session_limit_reached"
    template = N_("This account already has {limit} sessions, the most it may have.")
    default_hint = N_(
        "Delete a session you no longer use (DELETE /v1/sessions/{{name}}), or ask an "
        "administrator to raise your limit (zapgate users set-limit)."
    )
    body_params = ("limit",)


class DeviceNotLinked(Conflict):
    errcode = "device_not_linked"
    template = N_("device {device_id} is not linked to a phone")
    default_hint = N_("Link the session first: scan its QR or enter its pairing code.")


class DeviceOffline(Conflict):
    errcode = "device_offline"
    is_transient = True
    template = N_("device {device_id} is not connected to the simulated network")
    default_hint = N_(
        "The session is not connected to the simulated network; it reconnects by itself."
    )


class MediaMissing(GatewayError):
    """An outbound media message whose stored file is gone: the send fails for good."""

    errcode = "media_missing"
    status = 500
    default_hint = N_("The stored file of this message was deleted; send it again.")


class PayloadTooLarge(GatewayError):
    errcode = "payload_too_large"
    status = 413
    template = N_("The request body is larger than {n} bytes.")
    default_hint = N_("Send a smaller body.")


class ValidationFailed(GatewayError):
    errcode = "validation_error"
    status = 422
    default_hint = N_("Fix the request and retry; /docs describes every field.")
    body_params = ("details",)


# The hint of a ValidationFailed that carries `details` (one entry per field at fault).
DETAILS_HINT = N_("Fix the fields named in 'details' and retry.")


class NotJson(ValidationFailed):
    """A body sent without a JSON Content-Type to a route that reads JSON."""

    errcode = "content_type_not_json"
    template = N_("The request body was not read as JSON: its Content-Type is {content_type}.")
    default_hint = N_("Send Content-Type: application/json with a JSON body.")


class IdempotencyKeyReused(ValidationFailed):
    errcode = "idempotency_key_reused"
    template = N_("Idempotency-Key {key!r} was already used with a different request.")
    default_hint = N_(
        "Use a new key for a new message; retry with the same key only with the same request."
    )


class UnknownReplyTo(ValidationFailed):
    errcode = "unknown_reply_to"
    template = N_("reply_to: session '{name}' has no sent or received message {message_id!r}.")
    default_hint = N_(
        "Reply to a message of this session: its id or wa_id as GET "
        "/v1/sessions/{{name}}/messages shows it, once it was sent."
    )


class InvalidEmoji(ValidationFailed):
    errcode = "invalid_emoji"
    template = N_("emoji: {emoji!r} is not one emoji.")
    default_hint = N_('Send a single emoji such as "👍", or "" to remove the reaction.')


class MediaTypeMismatch(ValidationFailed):
    """Media whose bytes are not of the type it was declared (or named) as."""

    errcode = "media_type_mismatch"
    default_hint = N_(
        "Send the file its type says, or give the mime of the file you send (or leave "
        "mime out: it is read from the bytes)."
    )


class InvalidPhone(ValidationFailed):
    errcode = "invalid_phone"
    default_hint = N_("Use E.164: a '+', the country code and the number, e.g. +5511999990003.")


class InvalidLid(ValidationFailed):
    """A recipient that is neither a phone number nor a well-formed LID."""

    errcode = "invalid_lid"
    template = N_("{address!r} is not a phone number nor a WhatsApp LID.")
    default_hint = N_(
        "Write a phone number in E.164 (+5511999990003), its JID "
        "(5511999990003@s.whatsapp.net) or a LID as zapgate shows it in a message's lid: "
        "its digits followed by @lid (123456789012345@lid)."
    )


class InvalidSessionName(ValidationFailed):
    errcode = "invalid_session_name"
    template = N_("{name!r} is not a valid session name.")
    default_hint = N_(
        "A session name is 1-63 characters: lowercase letters, digits, '-' and '_', "
        "starting with a letter or digit."
    )


class MediaFetchFailed(ValidationFailed):
    errcode = "media_fetch_failed"
    default_hint = N_("Check that the URL serves the file (HTTP 200) and answers in time.")


class UrlNotAllowed(ValidationFailed):
    errcode = "url_not_allowed"
    # Never the address it resolved to: that would reveal the internal DNS to the caller.
    template = N_("url: {host} resolves to a non-public address.")
    default_hint = N_(
        "Use a public http(s) URL. Operators can allow private addresses with "
        "ZAPGATE_ALLOW_PRIVATE_URLS=true."
    )


class TooManyRequests(GatewayError):
    errcode = "rate_limited"
    status = 429
    is_transient = True
    template = N_("Too many failed sign-in attempts.")
    default_hint = N_("Wait a few minutes before trying again.")
    body_params = ("retry_after",)


class WorkerUnreachable(GatewayError):
    errcode = "worker_unreachable"
    status = 503
    is_transient = True
    default_hint = N_("Start the WhatsApp worker (zapgate worker) or fix ZAPGATE_WORKER_URL.")
    body_params = ("worker_url", "port", "session")


class WorkerError(GatewayError):
    """The worker answered, but with an error we could not map."""

    errcode = "worker_error"
    status = 502
    is_transient = True
    body_params = ("worker_status",)


class EngineError(GatewayError):
    """The WhatsApp engine refused an operation."""

    errcode = "engine_error"
    status = 502
    is_transient = True
    default_hint = N_("Retry later; if it persists, restart the session.")


class NotSupported(GatewayError):
    """The session's engine does not have this WhatsApp capability."""

    errcode = "not_supported"
    status = 501
    template = N_("The {engine} engine does not support {feature}.")
    default_hint = N_("Use a session whose engine supports it (see GET /v1/sessions/{{name}}).")


class ConfigError(GatewayError):
    """A start-up configuration problem; never reaches an HTTP caller."""

    errcode = "config_error"
    status = 500
    default_hint = N_("Fix the configuration and start again.")


def _tree(cls: type[GatewayError]) -> Iterator[type[GatewayError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _tree(sub)


BY_ERRCODE: dict[str, type[GatewayError]] = {c.errcode: c for c in _tree(GatewayError)}
"""errcode -> class, for every error above (compat faces map errors by errcode too)."""
if len(BY_ERRCODE) != len(list(_tree(GatewayError))):
    raise TypeError("two GatewayError classes share an errcode")

_BY_STATUS: dict[int, type[GatewayError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    503: WorkerUnreachable,
}


def from_dict(body: dict[str, Any], status: int | None = None) -> GatewayError:
    """Rebuild an error a worker or the sim network sent over HTTP (`to_dict(wire=True)`):
    the class of its errcode with its templates and parameters. An errcode this version
    does not know (a newer worker) falls back to the class of the HTTP status keeping the
    sender's errcode and texts, else to a WorkerError."""
    errcode = str(body.get("errcode", ""))
    cls = BY_ERRCODE.get(errcode)
    if cls is not None and isinstance(body.get("params"), dict):
        return cls(body.get("template"), hint=body.get("hint_template"), **body["params"])
    cls = cls or _BY_STATUS.get(status or 0, WorkerError)
    known = {"errcode", "error", "hint", "params", "template", "hint_template"}
    err = cls(str(body.get("error", "worker error")), hint=body.get("hint"))
    err.params.update((k, v) for k, v in body.items() if k not in known)
    if errcode and errcode != cls.errcode:
        err.errcode = errcode  # type: ignore[misc]
    if cls is WorkerError and status is not None:
        err.params.setdefault("worker_status", status)
    err.body_params = tuple(err.params)
    return err
