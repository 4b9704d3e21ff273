"""Pure parts of the events machinery: rates, the SSRF guard, signatures."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from zapgate.domain.ratelimit import Rate, SendScheduler, parse_rate
from zapgate.errors import UrlNotAllowed, ValidationFailed
from zapgate.net.ssrf import check_url
from zapgate.pipeline.webhooks import sign


@pytest.mark.parametrize(
    ("text", "rate"),
    [("5/3s", Rate(5, 3.0)), ("1/0.5", Rate(1, 0.5)), (" 10 / 2s ", Rate(10, 2.0))],
)
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["off", "OFF", "none"])
def test_rate_off(text: str) -> None:
    assert parse_rate(text) is None


@pytest.mark.parametrize("text", ["", "fast", "0/1s", "5/0s", "5/-1s", "1/2m"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_rate(text)


def test_scheduler_allows_a_burst_then_spaces_sends() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s = SendScheduler()
    slots = [s.reserve(1, Rate(3, 2.0), t0) for _ in range(5)]
    offsets = [(x - t0).total_seconds() for x in slots]
    assert offsets == [0, 0, 0, 2, 4]
    # Another number has its own bucket; `off` never waits.
    assert s.reserve(2, Rate(3, 2.0), t0) == t0
    assert s.reserve(1, None, t0) == t0
    # Time passing refills the bucket.
    later = t0 + timedelta(seconds=60)
    assert s.reserve(1, Rate(3, 2.0), later) == later


async def test_ssrf_guard() -> None:
    for url in [
        "http://127.0.0.1/",
        "http://[::1]:80/",
        "http://169.254.169.254/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
    ]:
        with pytest.raises(UrlNotAllowed):
            await check_url(url, allow_private=False)
    await check_url("http://127.0.0.1:9/", allow_private=True)
    with pytest.raises(ValidationFailed):
        await check_url("gopher://127.0.0.1/", allow_private=True)
    with pytest.raises(ValidationFailed):
        await check_url("http://127.0.0.1:99999/", allow_private=True)


def test_signature_matches_the_documented_formula() -> None:
    body, ts, secret = b'{"a":1}', "1700000000", "whsec_x"
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(secret, ts, body) == "sha256=" + expected
