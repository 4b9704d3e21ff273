"""The operator commands, run as real processes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.conftest import ZapgateProcess, base_env, free_port, free_port_block, run_cli

TOKEN = "worker-token-Qm4v8Rz1Lx7Nc2Kp9Tw5Hb3J"


def test_users_and_keys(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    out = run_cli(
        ["users", "create", "ana@example.com", "--password-stdin"], env, stdin="pw-123456\n"
    )
    assert out.returncode == 0 and out.stdout.strip() == "1"
    dup = run_cli(["users", "create", "ANA@example.com"], env)
    assert dup.returncode != 0 and "error:" in dup.stderr and "Traceback" not in dup.stderr
    key = run_cli(["keys", "create", "ana@example.com", "--name", "ci"], env)
    assert key.returncode == 0 and key.stdout.strip().splitlines()[-1].startswith("zg_")
    missing = run_cli(["keys", "create", "nobody@example.com"], env)
    assert missing.returncode != 0 and "zapgate users create" in missing.stderr
    assert run_cli(["users", "create", "not-an-email"], env).returncode != 0


def _signs_in(base: str, email: str, password: str) -> bool:
    c = httpx.Client(base_url=base, headers={"Accept": "text/html"}, timeout=20)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    r = c.post("/login", data={"csrf_token": token[1], "email": email, "password": password})
    return r.status_code == 303 and r.headers["location"] == "/"


def test_set_password_then_sign_in_and_list_and_revoke_keys(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port))
    assert run_cli(["users", "create", "bo@example.com", "--admin"], env).returncode == 0
    assert run_cli(["users", "create", "cy@example.com"], env).returncode == 0
    short = run_cli(
        ["users", "set-password", "bo@example.com", "--password-stdin"], env, "1234567\n"
    )
    assert short.returncode != 0 and "at least 8 characters" in short.stderr
    nobody = run_cli(["users", "set-password", "no@example.com", "--password-stdin"], env, "x" * 9)
    assert nobody.returncode != 0 and "No user 'no@example.com'" in nobody.stderr
    no_flag = run_cli(["users", "set-password", "bo@example.com"], env)
    assert no_flag.returncode == 2 and "--password-stdin" in no_flag.stderr
    ok = run_cli(
        ["users", "set-password", "BO@example.com", "--password-stdin"], env, "pw-1234567\n"
    )
    assert ok.returncode == 0, ok.stderr

    listed = run_cli(["users", "list"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "ADMIN", "CREATED"]
    assert lines[1].split()[:3] == ["1", "bo@example.com", "yes"]
    assert lines[2].split()[:3] == ["2", "cy@example.com", "no"]

    first = run_cli(["keys", "create", "bo@example.com", "--name", "ci"], env).stdout.split()[-1]
    second = run_cli(["keys", "create", "bo@example.com", "--name", "laptop"], env).stdout.split()[
        -1
    ]
    keys = run_cli(["keys", "list", "bo@example.com"], env)
    assert keys.returncode == 0, keys.stderr
    rows = keys.stdout.splitlines()
    assert rows[0].split() == ["ID", "NAME", "PREFIX", "CREATED", "LAST", "USED"]
    assert [r.split()[:2] for r in rows[1:]] == [["1", "ci"], ["2", "laptop"]]
    assert first not in keys.stdout and second not in keys.stdout  # never the key itself
    assert rows[1].split()[2] == first[:10] + "…" and rows[1].rstrip().endswith("-")

    # cy cannot revoke bo's key; a missing key is an error naming the command to list them
    other = run_cli(["keys", "revoke", "cy@example.com", "1"], env)
    assert other.returncode != 0 and "zapgate keys list cy@example.com" in other.stderr
    huge = run_cli(["keys", "revoke", "bo@example.com", str(2**64)], env)
    assert huge.returncode == 2 and "Traceback" not in huge.stderr
    assert run_cli(["keys", "revoke", "bo@example.com", "1"], env).returncode == 0
    again = run_cli(["keys", "revoke", "bo@example.com", "1"], env)
    assert again.returncode != 0 and "no API key 1" in again.stderr
    keys = run_cli(["keys", "list", "bo@example.com"], env).stdout.splitlines()
    assert [r.split()[:2] for r in keys[1:]] == [["2", "laptop"]]

    proc = ZapgateProcess(["serve"], env, port, tmp_path / "serve.log").start()
    try:
        assert _signs_in(proc.url, "bo@example.com", "pw-1234567")
        assert not _signs_in(proc.url, "cy@example.com", "pw-1234567")  # has no password
        auth = lambda k: {"Authorization": f"Bearer {k}"}  # noqa: E731
        assert httpx.get(proc.url + "/v1/sessions", headers=auth(first)).status_code == 401
        assert httpx.get(proc.url + "/v1/sessions", headers=auth(second)).status_code == 200
    finally:
        proc.stop()


def test_migrate_and_doctor_embedded(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    out = run_cli(["migrate"], env)
    assert out.returncode == 0 and "revision" in out.stdout
    doc = run_cli(["doctor"], env)
    assert doc.returncode == 0, doc.stdout + doc.stderr
    assert "[ok]   configuration" in doc.stdout and "[FAIL]" not in doc.stdout


def test_doctor_names_an_unreachable_worker(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        tmp_path / "data", ZAPGATE_TOPOLOGY="shared", ZAPGATE_WORKER_URL=f"http://127.0.0.1:{port}"
    )
    doc = run_cli(["doctor"], env)
    assert doc.returncode == 1
    assert f"worker http://127.0.0.1:{port} (port {port}) not reachable" in doc.stdout
    assert "fix:" in doc.stdout


def test_doctor_passes_with_a_live_worker(tmp_path: Path) -> None:
    port = free_port()
    wenv = base_env(tmp_path / "w", ZAPGATE_WORKER_TOKEN=TOKEN)
    worker = ZapgateProcess(["worker", "--port", str(port)], wenv, port, tmp_path / "w.log")
    worker.start()
    try:
        env = base_env(
            tmp_path / "data",
            ZAPGATE_TOPOLOGY="shared",
            ZAPGATE_WORKER_TOKEN=TOKEN,
            ZAPGATE_WORKER_URL=f"http://127.0.0.1:{port}",
        )
        doc = run_cli(["doctor"], env)
        assert doc.returncode == 0, doc.stdout
        assert f"[ok]   worker http://127.0.0.1:{port}" in doc.stdout
        bad = run_cli(["doctor"], {**env, "ZAPGATE_WORKER_TOKEN": "wrong-token-" + "w" * 20})
        assert bad.returncode == 1 and "ZAPGATE_WORKER_TOKEN" in bad.stdout
    finally:
        worker.stop()


def test_doctor_in_production_without_secrets(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", ZAPGATE_ENV="production", ZAPGATE_TOPOLOGY="embedded")
    doc = run_cli(["doctor"], env)
    assert doc.returncode == 1 and "ZAPGATE_SECRET_KEY" in doc.stdout


def test_import_legacy_then_migrate_on_start(tmp_path: Path) -> None:
    base = free_port_block(3)
    legacy = {
        "1": {"port": base, "client_id": "user_1", "session_dir": "sessions/user_1"},
        "2": {"port": base + 1},
        "3": {"port": base + 2, "client_id": "../../etc"},
        "4": {},
        "x": {"port": 1},
        "5": "not an object",
        "6": {"port": "abc"},
        "7": {"port": str(base)},
    }
    path = tmp_path / "user_instances.json"
    path.write_text(json.dumps(legacy))
    env = base_env(tmp_path / "data", ZAPGATE_BASE_PORT=str(base))
    out = run_cli(["import-legacy", str(path)], env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "5 imported, 3 skipped" in text
    assert "skipped entry 'x'" in text and "skipped user 5" in text and "skipped user 6" in text
    assert "user 3: client_id '../../etc' is unsafe" in text
    assert "u3/default" in text and f"port {base + 2}" in text
    again = run_cli(["import-legacy", str(path)], env)
    assert "existing session" in again.stdout  # idempotent
    # Issue 8.21: a re-import neither contradicts itself nor ignores silently.
    assert "already in use; a new one was derived" not in again.stdout
    changed = {**legacy, "2": {"port": base + 7, "client_id": "other-client"}}
    path.write_text(json.dumps(changed))
    moved = run_cli(["import-legacy", str(path)], env)
    assert f"user 2: legacy port {base + 7} not applied; the session is on port {base + 1}" in (
        moved.stdout
    )
    assert "user 2: legacy client_id 'other-client' not applied" in moved.stdout
    path.write_text(json.dumps(legacy))

    # Production, shared on `base`: every imported record is moved there at start-up.
    port = free_port()
    prod = {
        **env,
        "IS_PRODUCTION": "1",
        "ZAPGATE_SECRET_KEY": "prod-secret-Hx4Tn7Qa2Wz9Lm5Vc8Rb3K",
        "ZAPGATE_WORKER_TOKEN": TOKEN,
        "ZAPGATE_TOPOLOGY": "shared",
        "ZAPGATE_WORKER_URL": f"http://127.0.0.1:{base}",
        "ZAPGATE_PORT": str(port),
    }
    doc = run_cli(["doctor"], prod)
    assert f"session u3/default is on port {base + 2}; it will move" in doc.stdout
    web = ZapgateProcess(["web"], prod, port, tmp_path / "web.log")
    web.start()
    web.stop()
    log = web.log()
    assert f"session u3/default: port {base + 2} -> {base}" in log
    assert f"session u2/default: port {base + 1} -> {base}" in log
    assert f"session u4/default: port None -> {base}" in log
    assert "migrated 3 session route(s)" in log


def test_import_legacy_bad_files(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    missing = run_cli(["import-legacy", str(tmp_path / "nope.json")], env)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = run_cli(["import-legacy", str(bad)], env)
    assert out.returncode != 0 and "not valid JSON" in out.stderr
    bad.write_text("[1, 2]")
    out = run_cli(["import-legacy", str(bad)], env)
    assert out.returncode != 0 and "object keyed by user id" in out.stderr


def test_bad_configuration_is_an_error_line_not_a_traceback(tmp_path: Path) -> None:
    for var, value in (
        ("ZAPGATE_TOPOLOGY", "sideways"),
        ("ZAPGATE_MAX_BODY_BYTES", "abc"),
        ("ZAPGATE_QUEUE_DEADLINE", "-5"),
    ):
        out = run_cli(["doctor"], base_env(tmp_path / "data", **{var: value}))
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"error: Bad configuration: {var}"), out.stderr
        assert "hint:" in out.stderr and "Traceback" not in out.stderr


def test_uppercase_topology_is_understood(tmp_path: Path) -> None:
    out = run_cli(["doctor"], base_env(tmp_path / "data", ZAPGATE_TOPOLOGY="PER-USER"))
    assert "Traceback" not in out.stderr
    assert "per-user" in out.stdout


def test_doctor_never_creates_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "data"
    out = run_cli(["doctor"], base_env(data, ZAPGATE_DOCTOR_WHATSAPP="off"))
    assert out.returncode == 0, out.stdout
    assert f"[warn] data directory {data} does not exist yet" in out.stdout
    assert not data.exists() and not data.parent.exists()


def test_cli_output_is_quiet_and_help_is_plain(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    out = run_cli(["users", "create", "quiet@example.com"], env)
    assert out.returncode == 0 and "alembic" not in out.stderr, out.stderr
    helped = run_cli(["serve", "--help"], env)
    assert "<bool>" not in helped.stdout
    assert "whatsmeow" in helped.stdout and "sim" in helped.stdout
    assert "default 8000" in helped.stdout


def test_password_stdin_follows_the_dashboard_rule(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    out = run_cli(["users", "create", "short@example.com", "--password-stdin"], env, "12345\n")
    assert out.returncode != 0
    assert "at least 8 characters" in out.stderr
