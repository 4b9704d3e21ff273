"""Every error leaves as `{errcode, error, hint}` with the right status, never a traceback.
Used by the public app and the worker's internal app alike."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zapgate import errors

logger = logging.getLogger(__name__)


def error_response(err: errors.GatewayError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    if err.is_transient and err.status >= 500:
        headers = {**(headers or {}), "Retry-After": "5"}
    return JSONResponse(err.to_dict(), status_code=err.status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.GatewayError)
    async def _gateway(_: Request, exc: errors.GatewayError) -> JSONResponse:
        if exc.status >= 500:
            logger.warning("%s: %s", exc.errcode, exc.error)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        if any(e.get("type") == "json_invalid" for e in raw):
            return error_response(errors.InvalidJSON("The request body is not valid JSON."))
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return error_response(errors.ValidationFailed(f"{where}: {first['msg']}", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        mapping: dict[int, type[errors.GatewayError]] = {
            401: errors.Unauthorized,
            403: errors.Forbidden,
            404: errors.NotFound,
            413: errors.PayloadTooLarge,
        }
        cls = mapping.get(exc.status_code)
        if cls is not None:
            return error_response(cls(str(exc.detail)))
        body = {
            "errcode": f"http_{exc.status_code}",
            "error": str(exc.detail),
            "hint": "See /docs for the endpoints and their methods.",
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error: %r", exc, exc_info=exc)
        return error_response(
            errors.GatewayError("An unexpected error happened; it has been logged.")
        )


def json_error_body(err: errors.GatewayError) -> bytes:
    return json.dumps(err.to_dict()).encode()
