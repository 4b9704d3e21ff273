"""The dashboard's sign-in limiter."""

from __future__ import annotations

from zapgate.web.dashboard.security import LoginLimiter


def test_login_limiter_limits_one_address_across_e_mails() -> None:
    limiter = LoginLimiter(max_failures=5, window=300, max_ip_failures=20)
    for i in range(20):
        assert limiter.retry_after("198.51.100.7", f"user{i}@example.com") == 0
        limiter.failed("198.51.100.7", f"user{i}@example.com")
    # a 21st e-mail from the same address waits; another address does not
    assert limiter.retry_after("198.51.100.7", "fresh@example.com") > 0
    assert limiter.retry_after("198.51.100.8", "fresh@example.com") == 0
    # a successful sign-in on one account does not reset the address's count
    limiter.succeeded("198.51.100.7", "user0@example.com")
    assert limiter.retry_after("198.51.100.7", "fresh@example.com") > 0
