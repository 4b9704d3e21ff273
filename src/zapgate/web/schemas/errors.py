"""The one error body of the public API, and the error responses each kind of route
documents in OpenAPI (`responses=`), so clients and fuzzers know what to expect."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every error: `{errcode, error, hint}` (a few errors add fields, e.g. `details`)."""

    model_config = ConfigDict(extra="allow")
    errcode: str = Field(description="Stable machine-readable code, e.g. session_not_found")
    error: str = Field(description="What went wrong, in the request's language")
    hint: str = Field(description="What to do about it")


_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "No API key, or an unknown or revoked one",
    403: "The key's user may not do this",
    404: "Not found (another user's resource is not found either)",
    409: "Not possible in the resource's current state",
    413: "The request body is larger than the server accepts",
    422: "Invalid input: a field, a parameter or the JSON itself",
    501: "The session's engine does not support this",
    502: "The worker or the engine failed",
    503: "The worker that holds the session cannot be reached",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each with the error body."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


# Per kind of route: every one of them needs an API key (401).
AUTHED = errors(401)
ADMIN = errors(401, 403)
# A route on one session: unknown name, and a worker that may be unreachable or fail.
SESSION = errors(401, 404, 422, 502, 503)
SESSION_ACTION = errors(401, 404, 409, 422, 501, 502, 503)
WITH_BODY = errors(400, 401, 413, 422)
SESSION_WITH_BODY = errors(400, 401, 404, 409, 413, 422, 501, 502, 503)
WEBHOOK = errors(401, 404, 422)
