"""No credential reaches a log line (issue 8.8)."""

from __future__ import annotations

import logging

import pytest

from zapgate.logredact import RedactingFilter, redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('GET /v1/sessions?api_key=zg_AbCdEf123456 HTTP/1.1" 401', "zg_AbCdEf123456"),
        ("GET /v1/sessions?apikey=s3cr3t-value&x=1", "s3cr3t-value"),
        ("POST https://hooks.example/h?token=t0k3n HTTP/1.1", "t0k3n"),
        ("Authorization: Bearer zz-top-secret", "zz-top-secret"),
        ("fetching https://bob:hunter2@media.example/a.png", "hunter2"),
        ("key zg_live_0123456789abcdef in text", "zg_live_0123456789abcdef"),
    ],
)
def test_credentials_are_redacted(line: str, secret: str) -> None:
    out = redact(line)
    assert secret not in out
    assert "***" in out


def test_ordinary_lines_are_unchanged() -> None:
    line = "GET /v1/sessions/default/messages?limit=50&before=123 HTTP/1.1 200"
    assert redact(line) == line


def test_the_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s "%s %s"',
        ("1.2.3.4", "GET", "/x?key=abc123"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert "abc123" not in record.getMessage()
