"""Placement, the seed incident, and the health cache."""

from __future__ import annotations

import logging

import pytest

from zapgate.config import Settings, Topology
from zapgate.domain.models import Route
from zapgate.topology.health import HealthCache
from zapgate.topology.placement import build_placement


def placement(topology: Topology, **kw: object):  # type: ignore[no-untyped-def]
    return build_placement(Settings(**kw), topology)  # type: ignore[arg-type]


def test_seed_incident_development_per_user_gives_one_port_per_user() -> None:
    p = placement(Topology.PER_USER, worker_host="127.0.0.1")
    assert [p.place(u).port for u in (1, 2, 3)] == [5001, 5002, 5003]
    assert p.place(3).worker_url == "http://127.0.0.1:5003"


def test_seed_incident_production_shared_gives_5001_to_everyone() -> None:
    p = placement(Topology.SHARED, worker_url="http://whatsapp-server-2:5001")
    routes = {p.place(u) for u in (1, 2, 3)}
    assert routes == {
        Route(
            worker_id="whatsapp-server-2:5001",
            worker_url="http://whatsapp-server-2:5001",
            port=5001,
        )
    }


def test_embedded_has_no_port() -> None:
    r = placement(Topology.EMBEDDED).place(7)
    assert r.worker_url is None and r.port is None and r.worker_id == "embedded"


def test_base_port_is_configurable() -> None:
    assert placement(Topology.PER_USER, base_port=7000).place(4).port == 7003


def test_unreachable_hint_names_the_shared_topology_for_per_user() -> None:
    p = placement(Topology.PER_USER)
    hint = p.unreachable_hint(p.place(3), production=False)
    assert "5003" in hint and "ZAPGATE_TOPOLOGY=shared" in hint


def test_health_cache_remembers_briefly(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    cache = HealthCache(ttl=5, clock=lambda: now[0])
    assert cache.fresh("http://w:5001") is None
    with caplog.at_level(logging.INFO, logger="zapgate.topology.health"):
        cache.mark("http://w:5001", True)
        cache.mark("http://w:5001", True)
    assert cache.fresh("http://w:5001") is True
    assert caplog.text.count("worker http://w:5001 is reachable") == 1
    now[0] += 6
    assert cache.fresh("http://w:5001") is None


def test_health_cache_keeps_the_failure_detail() -> None:
    now = [0.0]
    cache = HealthCache(ttl=5, clock=lambda: now[0])
    cache.mark("u", False, "connection refused")
    assert cache.fresh("u") is False and cache.detail("u") == "connection refused"
    now[0] = 10
    assert cache.fresh("u") is None  # stale: the next real call decides again
