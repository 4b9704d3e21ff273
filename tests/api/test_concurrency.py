"""get_or_create through HTTP: many parallel PUTs for one name make one session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import Server


def test_fifty_parallel_puts_make_one_session(server: Server) -> None:
    def put(_: int) -> tuple[int, str]:
        r = server.bob.put("/v1/sessions/race", json={"start": False})
        return r.status_code, r.json()["client_id"]

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(put, range(50)))
    assert sorted(code for code, _ in results) == [200] * 49 + [201]
    assert len({cid for _, cid in results}) == 1
    names = [s["name"] for s in server.bob.get("/v1/sessions").json()["items"]]
    assert names.count("race") == 1
