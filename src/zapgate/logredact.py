"""Credentials never reach a log line: API keys sent in a query string (refused, but
uvicorn's access log printed the full URL), bearer tokens, and secret-looking query
parameters of URLs that httpx logs (webhook and media URLs)."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # our own API keys, wherever they appear
    (re.compile(r"zg_[A-Za-z0-9_-]{4,}"), "zg_***"),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+"), r"\1 ***"),
    # key=value pairs of a query string or a form
    (
        re.compile(
            r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|secret|password|"
            r"passwd|pwd|signature|sig|auth)=)[^&\s\"']+"
        ),
        r"\1***",
    ),
    # credentials inside a URL (scheme://user:password@host)
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1***@"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (formatted with its arguments) before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(*logger_names: str) -> None:
    """Put the filter on the root logger's handlers and on the named loggers (those that
    don't propagate, like uvicorn's access log, have handlers of their own)."""
    flt = RedactingFilter()
    targets = [logging.getLogger()] + [logging.getLogger(n) for n in logger_names]
    for logger in targets:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
