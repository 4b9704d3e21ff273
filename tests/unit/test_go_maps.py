"""The lock over neonize's Go maps inside a host process (issue 14.8): a call keeps its
share only while Go looks its client up, so a long download or upload never holds a
starting client (and every call queued behind it) for its whole length."""

from __future__ import annotations

import threading

import pytest

from zapgate.engines.whatsmeow.bridge import GoMaps

pytestmark = pytest.mark.timeout(20)


def test_a_long_call_lets_a_writer_in_while_it_runs() -> None:
    maps = GoMaps()
    writer_in = threading.Event()

    def long_download() -> str:
        # Returns only once the writer got the maps: with the share held for the whole
        # call this would wait for ever (the test's timeout).
        assert writer_in.wait(10)
        return "bytes"

    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(maps.call(long_download, hold=0.05)))
    reader.start()

    def start_client() -> None:
        with maps.exclusive():
            writer_in.set()

    writer = threading.Thread(target=start_client)
    writer.start()
    writer.join(10)
    reader.join(10)
    assert writer_in.is_set() and result == ["bytes"]


def test_a_writer_excludes_calls_until_it_releases() -> None:
    maps = GoMaps()
    hold = maps.hold()
    entered = threading.Event()
    t = threading.Thread(target=lambda: maps.call(entered.set))
    t.start()
    assert not entered.wait(0.2)  # the call waits for the start
    hold.release()
    hold.release()  # idempotent
    assert entered.wait(5)
    t.join(5)


def test_a_call_keeps_writers_out_while_go_may_read_its_map() -> None:
    maps = GoMaps()
    release = threading.Event()
    reader = threading.Thread(target=lambda: maps.call(lambda: release.wait(10), hold=0.5))
    reader.start()
    writer_in = threading.Event()

    def start_client() -> None:
        with maps.exclusive():
            writer_in.set()

    writer = threading.Thread(target=start_client)
    writer.start()
    assert not writer_in.wait(0.1)  # the call has just begun: Go may be reading the map
    assert writer_in.wait(5)  # past its hold the call no longer keeps the writer out
    release.set()
    reader.join(5)
    writer.join(5)
