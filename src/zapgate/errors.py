"""The GatewayError tree: every error the gateway reports has an errcode, an HTTP
status, a message and a hint, and knows whether retrying may help."""

from __future__ import annotations

from typing import Any, ClassVar

_BY_ERRCODE: dict[str, type[GatewayError]] = {}


class GatewayError(Exception):
    """Base of every error zapgate reports to a caller.

    `errcode` is stable and machine-readable; `error` says what happened; `hint` says
    what to do about it.
    """

    errcode: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_hint: ClassVar[str] = "Check the server log for details."
    is_transient: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The errcode -> class registry used to rebuild errors sent over HTTP.
        _BY_ERRCODE.setdefault(cls.errcode, cls)

    def __init__(self, error: str, hint: str | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.hint = hint if hint is not None else self.default_hint
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.error, "hint": self.hint}
        body.update(self.extra)
        return body


class BadRequest(GatewayError):
    errcode = "bad_request"
    status = 400
    default_hint = "Check the request against /docs."


class InvalidJSON(BadRequest):
    errcode = "invalid_json"
    default_hint = "Send a JSON object with Content-Type: application/json."


class Unauthorized(GatewayError):
    errcode = "unauthorized"
    status = 401
    default_hint = "Send your API key as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'."


class Forbidden(GatewayError):
    errcode = "forbidden"
    status = 403
    default_hint = "This needs an administrator account."


class NotFound(GatewayError):
    errcode = "not_found"
    status = 404
    default_hint = "Check the URL; see /docs for the endpoints."


class SessionNotFound(NotFound):
    errcode = "session_not_found"
    default_hint = "Create it first with PUT /v1/sessions/{name}."


class Conflict(GatewayError):
    errcode = "conflict"
    status = 409
    default_hint = "Check the session state with GET /v1/sessions/{name}."


class WrongState(Conflict):
    errcode = "wrong_state"


class UserExists(Conflict):
    errcode = "user_exists"
    default_hint = "Use another e-mail address, or sign in with this one."


class PayloadTooLarge(GatewayError):
    errcode = "payload_too_large"
    status = 413
    default_hint = "Send a smaller body."


class ValidationFailed(GatewayError):
    errcode = "validation_error"
    status = 422
    default_hint = "Fix the fields named in 'details' and retry."


class InvalidPhone(ValidationFailed):
    errcode = "invalid_phone"
    default_hint = "Use E.164: a '+', the country code and the number, e.g. +5511999990003."


class InvalidSessionName(ValidationFailed):
    errcode = "invalid_session_name"
    default_hint = (
        "A session name is 1-63 characters: lowercase letters, digits, '-' and '_', "
        "starting with a letter or digit."
    )


class WorkerUnreachable(GatewayError):
    errcode = "worker_unreachable"
    status = 503
    is_transient = True
    default_hint = "Start the WhatsApp worker (zapgate worker) or fix ZAPGATE_WORKER_URL."


class WorkerError(GatewayError):
    """The worker answered, but with an error we could not map."""

    errcode = "worker_error"
    status = 502
    is_transient = True


class EngineError(GatewayError):
    """The WhatsApp engine refused an operation."""

    errcode = "engine_error"
    status = 502
    is_transient = True
    default_hint = "Retry later; if it persists, restart the session."


class NotSupported(GatewayError):
    """The session's engine does not have this WhatsApp capability."""

    errcode = "not_supported"
    status = 501
    default_hint = "Use a session whose engine supports it (see GET /v1/sessions/{name})."


class ConfigError(GatewayError):
    """A start-up configuration problem; never reaches an HTTP caller."""

    errcode = "config_error"
    status = 500
    default_hint = "Fix the configuration and start again."


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
_BY_ERRCODE[GatewayError.errcode] = GatewayError


def from_dict(body: dict[str, Any], status: int | None = None) -> GatewayError:
    """Rebuild an error sent by a worker over HTTP: by errcode when this process knows the
    class, else by HTTP status keeping the sender's errcode, else a WorkerError."""
    errcode = str(body.get("errcode", ""))
    cls = _BY_ERRCODE.get(errcode) or _BY_STATUS.get(status or 0, WorkerError)
    known = {"errcode", "error", "hint"}
    extra = {k: v for k, v in body.items() if k not in known}
    err = cls(str(body.get("error", "worker error")), body.get("hint"), **extra)
    if errcode and errcode != cls.errcode:
        err.errcode = errcode  # type: ignore[misc]
    if cls is WorkerError and status is not None:
        err.extra.setdefault("worker_status", status)
    return err
