"""The worker in-process: sessions kept apart, the journal and its cursor, restore on boot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.media_samples import png_bytes
from zapgate.config import Settings
from zapgate.domain.state import SessionState
from zapgate.engines import EngineBackends
from zapgate.engines.sim import SimEngine
from zapgate.errors import NotFound, NotSupported, ValidationFailed, WrongState, from_dict
from zapgate.worker.app import create_worker_app
from zapgate.worker.client import HttpWorkerClient
from zapgate.worker.core import Worker
from zapgate.worker.journal import Journal
from zapgate.worker.manifest import Manifest, ManifestEntry


def make_worker(data: Path) -> Worker:
    settings = Settings(qr_first_ttl=30, qr_ttl=10)
    return Worker(data_dir=data, worker_id="w1", backends=EngineBackends.build(settings, data))


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    w = make_worker(tmp_path)
    await w.initialize()
    w.start()
    yield w
    await w.shutdown()


async def until(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await pred():
            await asyncio.sleep(0.02)


async def test_sessions_are_kept_apart(worker: Worker, tmp_path: Path) -> None:
    a = await worker.start_session("u1-aaa", "sessions/u1-aaa", "sim")
    b = await worker.start_session("u2-bbb", "sessions/u2-bbb", "sim")
    assert a.client_id != b.client_id
    assert (tmp_path / "sessions" / "u1-aaa").is_dir() and (
        tmp_path / "sessions" / "u2-bbb"
    ).is_dir()

    async def both_have_qrs() -> bool:
        sa, sb = await worker.status("u1-aaa"), await worker.status("u2-bbb")
        return bool(sa.qr and sb.qr)

    await until(both_have_qrs)
    sa, sb = await worker.status("u1-aaa"), await worker.status("u2-bbb")
    assert sa.qr != sb.qr
    await worker.sim_scan(sa.qr or "", "+5511999990001")

    async def a_connected() -> bool:
        return (await worker.status("u1-aaa")).state is SessionState.CONNECTED

    await until(a_connected)
    assert (await worker.status("u2-bbb")).state is SessionState.SCAN_QR
    health = await worker.health()
    assert health.sessions == 2 and health.states == {"CONNECTED": 1, "SCAN_QR": 1}


@pytest.mark.parametrize(
    ("cid", "sdir"),
    [("../x", "sessions/x"), ("u1-a", "../../etc"), ("u1-a", "/tmp/x"), ("u1-a", "sessions")],
)
async def test_bad_ids_and_dirs_are_refused(worker: Worker, cid: str, sdir: str) -> None:
    with pytest.raises(ValidationFailed):
        await worker.start_session(cid, sdir, "sim")


async def test_unknown_engine_and_session(worker: Worker) -> None:
    with pytest.raises(ValidationFailed):
        await worker.start_session("u1-a", "sessions/u1-a", "nope")
    with pytest.raises(NotFound):
        await worker.status("u9-none")


async def test_send_needs_connected(worker: Worker) -> None:
    await worker.start_session("u1-a", "sessions/u1-a", "sim")
    with pytest.raises(WrongState):
        await worker.send_text("u1-a", "3EB0X", "+5511999990001", "hi")


async def test_a_missing_capability_is_501_not_supported(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sim engine with its capabilities removed: pairing codes and media are refused
    with 501 `not_supported` through the worker's API, an error the web tier rebuilds."""
    monkeypatch.setattr(SimEngine, "capabilities", frozenset())
    app = create_worker_app(worker, token=None, max_body_bytes=1 << 20)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://worker"
    ) as http:
        await worker.start_session("u1-a", "sessions/u1-a", "sim")

        async def has_qr() -> bool:
            return bool((await worker.status("u1-a")).qr)

        await until(has_qr)
        r = await http.post("/internal/sessions/u1-a/pair-code", json={"phone": "+5511999990001"})
        assert r.status_code == 501
        body = r.json()
        assert body["errcode"] == "not_supported"
        assert body["error"] == "The sim engine does not support pair_code."
        assert body["hint"]
        assert isinstance(from_dict(body, r.status_code), NotSupported)

        await worker.sim_scan((await worker.status("u1-a")).qr or "", "+5511999990001")

        async def connected() -> bool:
            return (await worker.status("u1-a")).state is SessionState.CONNECTED

        await until(connected)
        form = {"message_id": "3EB0M1", "to": "+5511999990002", "kind": "image"}
        r = await http.post(
            "/internal/sessions/u1-a/media",
            data={**form, "mime": "image/png"},
            files={"file": ("a.png", png_bytes(), "image/png")},
        )
        assert r.status_code == 501
        assert r.json()["errcode"] == "not_supported"
        assert r.json()["error"] == "The sim engine does not support send_media."
        sent = await http.post(
            "/internal/sessions/u1-a/messages",
            json={"message_id": "3EB0T1", "to": "+5511999990002", "text": "hi"},
        )
        assert sent.status_code == 200  # sending text is no capability: every engine does it


async def test_journal_cursor_and_long_poll(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    await j.open()
    try:
        assert (await j.read(0)).items == []
        reader = asyncio.create_task(j.read(0, wait=5))
        await asyncio.sleep(0.05)
        seq = await j.append("c1", "state", {"state": "STARTING"})
        page = await asyncio.wait_for(reader, 2)
        assert [e.seq for e in page.items] == [seq] and page.next == seq
        await j.append("c1", "state", {"state": "SCAN_QR"})
        page2 = await j.read(page.next)
        assert [e.data["state"] for e in page2.items] == ["SCAN_QR"]
        # A reader ahead of the journal (a new worker data dir) starts over.
        assert (await j.read(10_000)).next == 0
    finally:
        await j.close()
    j2 = Journal(tmp_path / "j.db")
    await j2.open()
    assert j2.last_seq == 2  # durable across reopen
    await j2.close()


async def test_a_long_poll_cancelled_as_an_entry_arrives_is_cancelled(tmp_path: Path) -> None:
    """The web tier's puller is cancelled on shutdown while it long-polls; an entry
    appended in the same round must not swallow the cancel (the puller would poll again
    and the process never stop)."""
    j = Journal(tmp_path / "j.db")
    await j.open()
    try:
        reader = asyncio.create_task(j.read(0, wait=30))
        await asyncio.sleep(0.01)
        await j.append("c1", "state", {"state": "STARTING"})
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
    finally:
        await j.close()


async def test_restore_on_boot_without_a_new_qr(tmp_path: Path) -> None:
    w = make_worker(tmp_path)
    await w.initialize()
    w.start()
    await w.start_session("u1-a", "sessions/u1-a", "sim")
    await w.start_session("u2-b", "sessions/u2-b", "sim")

    async def has_qr() -> bool:
        return bool((await w.status("u1-a")).qr)

    await until(has_qr)
    await w.sim_scan((await w.status("u1-a")).qr or "", "+5511999990001")

    async def linked() -> bool:
        return (await w.status("u1-a")).state is SessionState.CONNECTED

    await until(linked)
    await w.shutdown()

    w2 = make_worker(tmp_path)
    await w2.initialize()
    w2.start()
    try:
        await asyncio.wait_for(w2.restored.wait(), 5)
        s = await w2.status("u1-a")
        assert s.state is SessionState.CONNECTED and s.phone == "+5511999990001"
        assert s.qr is None
        # The unlinked one is known but not started (it would need a new QR).
        assert (await w2.status("u2-b")).state is SessionState.STOPPED
    finally:
        await w2.shutdown()


async def test_delete_removes_the_session_dir(worker: Worker, tmp_path: Path) -> None:
    await worker.start_session("u1-a", "sessions/u1-a", "sim")
    await worker.delete_session("u1-a")
    assert not (tmp_path / "sessions" / "u1-a").exists()
    with pytest.raises(NotFound):
        await worker.status("u1-a")
    await worker.delete_session("u1-a")  # idempotent


def test_the_manifest_keeps_a_row_per_session_across_reopen(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "m.db")
    m.load()
    m.put(ManifestEntry("u1-a", "sessions/u1-a", "sim"))
    m.put(ManifestEntry("u2-b", "sessions/u2-b", "whatsmeow"))
    m.put(ManifestEntry("u1-a", "sessions/u1-a", "whatsmeow"))  # changed engine
    m.remove("u2-b")
    m.remove("u9-none")  # unknown: nothing happens
    m.close()
    again = Manifest(tmp_path / "m.db")
    again.load()
    assert again.entries() == [ManifestEntry("u1-a", "sessions/u1-a", "whatsmeow")]
    again.close()


def test_a_json_manifest_of_an_earlier_version_is_imported_once(tmp_path: Path) -> None:
    legacy = tmp_path / "worker-sessions.json"
    legacy.write_text(
        json.dumps(
            {
                "u1-a": {"client_id": "u1-a", "session_dir": "sessions/u1-a", "engine": "sim"},
                "u2-b": {"client_id": "u2-b", "session_dir": "sessions/u2-b", "engine": "sim"},
            }
        ),
        encoding="utf-8",
    )
    m = Manifest(tmp_path / "worker-sessions.db", legacy_json=legacy)
    m.load()
    assert {e.client_id for e in m.entries()} == {"u1-a", "u2-b"}
    assert not legacy.exists() and (tmp_path / "worker-sessions.json.imported").exists()
    m.remove("u2-b")
    m.close()
    again = Manifest(tmp_path / "worker-sessions.db", legacy_json=legacy)
    again.load()  # the renamed file is not imported again: u2-b stays removed
    assert [e.client_id for e in again.entries()] == ["u1-a"]
    again.close()


async def test_contacts_and_calls_through_the_http_client(worker: Worker) -> None:
    """Every contact and call command, and the simulated phone's side of them, over the
    worker's internal API through the web tier's client."""
    app = create_worker_app(worker, token=None, max_body_bytes=1 << 20)
    client = HttpWorkerClient("http://worker", token=None, timeout=5)
    await client.aclose()
    client._http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://worker"
    )
    me, friend, nobody = "+5511999990001", "+5511999990002", "+5511999990009"
    try:
        await worker.start_session("u1-a", "sessions/u1-a", "sim")

        async def has_qr() -> bool:
            return bool((await worker.status("u1-a")).qr)

        await until(has_qr)
        await client.sim_scan((await worker.status("u1-a")).qr or "", me)

        async def connected() -> bool:
            return (await worker.status("u1-a")).state is SessionState.CONNECTED

        await until(connected)
        await client.sim_off_whatsapp(nobody)
        await client.sim_set_profile(friend, about="Oi", business=True)
        checks = await client.check_numbers("u1-a", [friend, nobody])
        assert [(c.phone, c.on_whatsapp, c.business) for c in checks] == [
            (friend, True, True),
            (nobody, False, False),
        ]
        profile = await client.contact_profile("u1-a", friend)
        assert (profile.address, profile.about, profile.blocked) == (friend, "Oi", False)
        await client.set_blocked("u1-a", friend, True)
        assert (await client.contact_profile("u1-a", friend)).blocked
        await client.set_blocked("u1-a", friend, False)
        await client.sim_phone_save_contact(me, friend, "Amigo")

        async def saved() -> bool:
            return [(e.address, e.name) for e in await client.address_book("u1-a")] == [
                (friend, "Amigo")
            ]

        await until(saved)
        call_id = await client.sim_phone_call(friend, me, video=True)

        async def rang() -> bool:
            page = await client.events(0, limit=1000)
            return any(e.type == "call" and e.data["id"] == call_id for e in page.items)

        await until(rang)
        await client.reject_call("u1-a", call_id, friend)
        log = await client.sim_phone_log(friend)
        assert [(e["id"], e["from"]) for e in log if e["type"] == "call_rejected"] == [
            (call_id, me)
        ]
    finally:
        await client.aclose()
