"""Every error leaves as `{errcode, error, hint}` with the right status, never a traceback.
Used by the public app and the worker's internal app alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from zapgate import errors
from zapgate.i18n import N_, choose_lang
from zapgate.i18n.errors import translate

logger = logging.getLogger(__name__)


def error_response(err: errors.GatewayError, *, wire: bool = False) -> JSONResponse:
    """`wire`: the body carries the templates and parameters (see GatewayError.to_dict)."""
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    if err.is_transient and err.status >= 500:
        headers = {**(headers or {}), "Retry-After": "5"}
    return JSONResponse(err.to_dict(wire=wire), status_code=err.status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))})
    return out


def _no_route(request: Request) -> errors.NotFound:
    path = request.url.path
    hint = (
        N_("Remove the trailing '/': no endpoint ends with one (see /docs).")
        if path.endswith("/") and path != "/"
        else errors.NotFound.default_hint
    )
    return errors.NotFound(
        N_("There is no endpoint {method} {path}."),
        hint=hint,
        method=request.method,
        path=path[:200],
    )


# The dashboard sets app.state.html_error_renderer: a browser gets an HTML page, an API
# client (or the renderer answering None) the JSON shape.
HtmlErrorRenderer = Callable[[Request, errors.GatewayError], Awaitable[Response | None]]


def request_lang(request: Request) -> str:
    """The language of the response: the one the dashboard chose for this request (the
    user's setting), else Accept-Language, else ZAPGATE_LANG."""
    chosen = getattr(request.state, "lang", None)
    ctx = getattr(request.app.state, "ctx", None)
    default = getattr(getattr(ctx, "settings", None), "lang", None)
    return choose_lang(chosen, request.headers.get("accept-language"), default)


def localized_response(request: Request, err: errors.GatewayError) -> JSONResponse:
    """error_response with `error` and `hint` in the request's language; the errcode and
    every other field stay as they are."""
    response = error_response(err)
    lang = request_lang(request)
    if lang == "en":
        return response
    body = err.to_dict()
    body["error"], body["hint"] = translate(err, lang)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    headers["Content-Language"] = lang.replace("_", "-")
    return JSONResponse(body, status_code=err.status, headers=headers)


def install_error_handlers(app: FastAPI, *, localize: bool = False) -> None:
    """`localize` translates `error`/`hint` (the public app); the worker's internal app
    sends the templates and parameters instead, so the web tier rebuilds the error and
    translates it."""

    async def respond(request: Request, err: errors.GatewayError) -> Response:
        renderer: HtmlErrorRenderer | None = getattr(request.app.state, "html_error_renderer", None)
        if renderer is not None:
            page = await renderer(request, err)
            if page is not None:
                return page
        return localized_response(request, err) if localize else error_response(err, wire=True)

    @app.exception_handler(errors.GatewayError)
    async def _gateway(request: Request, exc: errors.GatewayError) -> Response:
        if exc.status >= 500:
            logger.warning("%s: %s", exc.errcode, exc.error)
        return await respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        raw = exc.errors()
        if any(e.get("type") == "json_invalid" for e in raw):
            return await respond(request, errors.InvalidJSON())
        if any(
            tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in raw
        ):
            # FastAPI hands a route the raw bytes when the Content-Type is not JSON.
            content_type = request.headers.get("content-type") or "missing"
            return await respond(request, errors.NotJson(content_type=content_type[:100]))
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        invalid = errors.ValidationFailed(
            N_("{where}: {msg}"),
            hint=errors.DETAILS_HINT,
            where=where,
            msg=first["msg"],
            details=details,
        )
        return await respond(request, invalid)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        mapping: dict[int, type[errors.GatewayError]] = {
            401: errors.Unauthorized,
            403: errors.Forbidden,
            404: errors.NotFound,
            413: errors.PayloadTooLarge,
        }
        if exc.status_code == 404 and exc.detail == "Not Found":
            # No route matched (a route's own 404 is a GatewayError, never this).
            return await respond(request, _no_route(request))
        cls = mapping.get(exc.status_code)
        if cls is not None:
            return await respond(request, cls(str(exc.detail)))
        body = {
            "errcode": f"http_{exc.status_code}",
            "error": str(exc.detail),
            "hint": "See /docs for the endpoints and their methods.",
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.error("unexpected error: %r", exc, exc_info=exc)
        response = await respond(request, errors.GatewayError())
        # Starlette re-raises the exception once this answer is sent, and the server then
        # drops the connection: say so, so a keep-alive client does not reuse it.
        response.headers["Connection"] = "close"
        return response


def json_error_body(err: errors.GatewayError) -> bytes:
    return json.dumps(err.to_dict()).encode()
