"""The webhook dispatcher against a real registry (SQLite) and a real receiver on
127.0.0.1: order within a webhook, lanes that do not wait for each other, results written
in batches, keep-alive connections, wake-ups, and what is (not) recorded when it stops."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.receiver import Receiver
from zapgate.config import Settings
from zapgate.domain.models import Delivery, Route, Webhook
from zapgate.pipeline.webhooks import WebhookDispatcher
from zapgate.registry import Registry

EMBEDDED = Route(worker_id="embedded", worker_url=None, port=None)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    reg = await Registry.open(f"sqlite+aiosqlite:///{tmp_path / 'zapgate.db'}")
    try:
        yield reg
    finally:
        await reg.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(keep_alive=True).start()
    yield r
    r.stop()


@pytest.fixture
async def session(registry: Registry) -> tuple[int, int]:
    """(user id, session id): events of the session go to every webhook of the user."""
    user = await registry.users.create("hooks@example.com")
    row, _ = await registry.sessions.get_or_create(user.id, "default", engine="sim", route=EMBEDDED)
    return user.id, row.id


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "allow_private_urls": True,
        "poll_interval": 0.05,
        "webhook_backoff_base": 0.05,
        "webhook_timeout": 5.0,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running(registry: Registry, config: Settings) -> AsyncIterator[WebhookDispatcher]:
    dispatcher = WebhookDispatcher(config, registry)
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.close()


async def webhook(registry: Registry, user_id: int, url: str) -> Webhook:
    return await registry.outbox.create_webhook(user_id, url=url, secret="s" * 32, events=[])


async def store(registry: Registry, session_id: int, numbers: Sequence[int]) -> None:
    for n in numbers:
        await registry.outbox.record_event(session_id, "message.received", {"n": n})


def numbers(receiver: Receiver, path: str) -> list[int]:
    return [r.json["data"]["n"] for r in receiver.got(path)]


async def eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def log(registry: Registry, user_id: int, hook: Webhook) -> list[Delivery]:
    """The webhook's deliveries, oldest event first."""
    found = await registry.outbox.list_deliveries(user_id, hook.id, limit=1000)
    return sorted(found, key=lambda d: d.event_seq)


async def test_order_holds_within_a_webhook_while_others_fail_or_crawl(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    """A failed delivery holds back the later ones of its webhook until its retry
    succeeds; a receiver that always fails, or answers slowly, holds back nobody else."""
    uid, sid = session
    ordered = await webhook(registry, uid, receiver.url("/ordered"))
    await webhook(registry, uid, receiver.url("/failing"))
    await webhook(registry, uid, receiver.url("/slow"))
    receiver.fail_first["/ordered"] = 1
    receiver.failing.add("/failing")
    receiver.slow["/slow"] = 0.2
    async with running(registry, settings()):
        await store(registry, sid, range(30))
        await eventually(lambda: len(receiver.got("/ordered")) >= 31, "the ordered webhook")
        assert numbers(receiver, "/ordered") == [0, *range(30)]  # 0 failed, was retried
        assert len(receiver.got("/slow")) < 30  # still working through its queue
        assert set(numbers(receiver, "/failing")) == {0}  # nothing passes its first event
        await eventually(
            lambda: len(receiver.got("/failing")) >= 2, "a retry of the failing webhook"
        )
        # The receiver logs a POST before its answer reaches the dispatcher: wait for the
        # results to be written (a POST cut off by the stop stays pending, re-sent later).
        deadline = time.monotonic() + 15
        while [d.status for d in await log(registry, uid, ordered)] != ["delivered"] * 30:
            assert time.monotonic() < deadline, "timed out waiting for the results written"
            await asyncio.sleep(0.05)
    assert numbers(receiver, "/slow") == list(range(len(receiver.got("/slow"))))
    deliveries = await log(registry, uid, ordered)
    assert [d.status for d in deliveries] == ["delivered"] * 30
    assert [d.attempts for d in deliveries] == [2] + [1] * 29


async def test_a_hanging_receiver_does_not_stall_other_webhooks(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    """A receiver that takes the connection and never answers: the others' deliveries
    go on meanwhile, and the hanging one is retried after its timeout."""
    uid, sid = session
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(16)  # never accepted: connects, then silence
        await webhook(registry, uid, f"http://127.0.0.1:{hang.getsockname()[1]}/h")
        await webhook(registry, uid, receiver.url("/fine"))
        async with running(registry, settings(webhook_timeout=3.0)):
            t0 = time.monotonic()
            await store(registry, sid, range(20))
            await eventually(lambda: len(receiver.got("/fine")) == 20, "the other webhook")
            assert time.monotonic() - t0 < 3.0
        assert numbers(receiver, "/fine") == list(range(20))


async def test_results_are_written_in_batches(
    registry: Registry,
    receiver: Receiver,
    session: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three webhooks, 40 events each: a write per page of results (one page per webhook
    here; more writes when the machine is slow to answer), never one per delivery."""
    uid, sid = session
    hooks = [await webhook(registry, uid, receiver.url(f"/b{i}")) for i in range(3)]
    batches: list[int] = []
    record = registry.outbox.record_results

    async def counted(results: Sequence[Delivery]) -> None:
        batches.append(len(results))
        await record(results)

    monkeypatch.setattr(registry.outbox, "record_results", counted)
    await store(registry, sid, range(40))
    async with running(registry, settings()):
        await eventually(lambda: sum(batches) == 120, "every result written")
    assert len(batches) <= 12 and max(batches) >= 10
    for hook in hooks:
        deliveries = await log(registry, uid, hook)
        assert {(d.status, d.last_status_code) for d in deliveries} == {("delivered", 200)}
        assert len(deliveries) == 40


async def test_connections_are_kept_alive_and_reused(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    """One connection per busy webhook, not one per POST (the receiver speaks HTTP/1.1
    and counts the connections it was sent on)."""
    uid, sid = session
    for i in range(3):
        await webhook(registry, uid, receiver.url(f"/k{i}"))
    async with running(registry, settings()):
        await store(registry, sid, range(25))
        await eventually(
            lambda: all(len(receiver.got(f"/k{i}")) == 25 for i in range(3)), "75 deliveries"
        )
        await store(registry, sid, range(25, 30))  # later: the idle connections again
        await eventually(lambda: len(receiver.got("/k0")) == 30, "5 more")
    assert 1 <= len(receiver.connections) <= 3


async def test_a_wake_up_sends_at_once_and_a_stream_keeps_draining(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    """With a poll interval far longer than the test, events stored and followed by a
    wake-up (as the journal puller does) go out at once, also while a lane is busy."""
    uid, sid = session
    await webhook(registry, uid, receiver.url("/woken"))
    async with running(registry, settings(poll_interval=60.0)) as dispatcher:
        await asyncio.sleep(0.1)  # the first scan found nothing
        await store(registry, sid, [0])
        dispatcher.wake()
        await eventually(lambda: len(receiver.got("/woken")) == 1, "the woken delivery", 2.0)
        for n in range(1, 60):
            await store(registry, sid, [n])
            dispatcher.wake()
            await asyncio.sleep(0.005)
        await eventually(lambda: len(receiver.got("/woken")) == 60, "the stream", 5.0)
    assert numbers(receiver, "/woken") == list(range(60))


async def test_giving_up_lets_the_later_events_go(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    uid, sid = session
    hook = await webhook(registry, uid, receiver.url("/gave-up"))
    receiver.fail_first["/gave-up"] = 1
    await store(registry, sid, range(3))
    async with running(registry, settings(webhook_retry_period=0.001)):
        await eventually(lambda: len(receiver.got("/gave-up")) == 3, "three POSTs")
        await asyncio.sleep(0.2)
    assert numbers(receiver, "/gave-up") == [0, 1, 2]
    first, *rest = await log(registry, uid, hook)
    assert first.status == "failed" and first.last_error == "gave up after 1 attempts: HTTP 500"
    assert [d.status for d in rest] == ["delivered", "delivered"]


async def test_a_failed_write_of_results_is_retried(
    registry: Registry,
    receiver: Receiver,
    session: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry refusing a batch of results: it is written again, and nothing is sent
    twice meanwhile (the lane waits for its results before claiming more)."""
    uid, sid = session
    hook = await webhook(registry, uid, receiver.url("/w"))
    record = registry.outbox.record_results
    failures = [RuntimeError("database is locked")]

    async def flaky(results: Sequence[Delivery]) -> None:
        if failures:
            raise failures.pop()
        await record(results)

    monkeypatch.setattr(registry.outbox, "record_results", flaky)
    await store(registry, sid, range(5))
    async with running(registry, settings()):
        await eventually(lambda: len(receiver.got("/w")) == 5, "five deliveries")
        await store(registry, sid, range(5, 8))
        await eventually(lambda: len(receiver.got("/w")) == 8, "three more")
        await asyncio.sleep(0.2)
    assert numbers(receiver, "/w") == list(range(8))
    assert [d.status for d in await log(registry, uid, hook)] == ["delivered"] * 8


async def test_stopping_records_what_was_answered_and_nothing_else(
    registry: Registry, receiver: Receiver, session: tuple[int, int]
) -> None:
    """Closed mid-page: every delivery the receiver answered is recorded as delivered
    (closing writes the results not yet written); the one cut off in flight stays
    pending, to be sent again (at-least-once), and none is marked delivered unheard."""
    uid, sid = session
    hook = await webhook(registry, uid, receiver.url("/stop"))
    receiver.slow["/stop"] = 0.05
    await store(registry, sid, range(40))
    async with running(registry, settings()):
        await eventually(lambda: len(receiver.got("/stop")) >= 5, "a few deliveries")
    heard = set(numbers(receiver, "/stop"))
    deliveries = await log(registry, uid, hook)
    delivered = {n for n, d in enumerate(deliveries) if d.status == "delivered"}
    assert delivered <= heard and len(heard - delivered) <= 1
    assert len(delivered) >= 4
    assert all(d.status == "pending" for d in deliveries[len(delivered) :])
