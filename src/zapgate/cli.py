"""The `zapgate` command: serve | web | worker | simnet | users | keys | doctor |
import-legacy | migrate. Every option falls back to its ZAPGATE_* variable."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from zapgate import logredact
from zapgate.config import Settings, Topology, load_settings
from zapgate.datadir import DataDirLock, bind_listener
from zapgate.errors import GatewayError

# Plain help (rich_markup_mode=None): Typer's rich panels print `<bool>` beside every flag.
app = typer.Typer(
    rich_markup_mode=None,
    help="zapgate: a self-hosted, multi-tenant WhatsApp gateway.",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True, rich_markup_mode=None)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")

Host = Annotated[
    str | None, typer.Option(help="Address to listen on [ZAPGATE_HOST; default 127.0.0.1].")
]
DataDir = Annotated[
    Path | None, typer.Option(help="Data directory [ZAPGATE_DATA_DIR; default ./data].")
]
DbUrl = Annotated[
    str | None,
    typer.Option(
        help="Database URL, sqlite:///PATH or postgresql://... "
        "[ZAPGATE_DATABASE_URL; default DATA_DIR/zapgate.db]."
    ),
]
Engine = Annotated[
    str | None,
    typer.Option(
        help="Engine of new sessions: whatsmeow (real WhatsApp) or sim (simulated network) "
        "[ZAPGATE_ENGINE; default whatsmeow]."
    ),
]


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except GatewayError as err:
        _fail(err)
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO on every command; the registry logs
    # the one line that matters ("migrated ... from X to Y").
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logredact.install()
    return settings


def _fail(err: GatewayError, code: int = 2) -> NoReturn:
    typer.secho(f"error: {err.error}", fg="red", err=True)
    if err.hint:
        typer.echo(f"hint: {err.hint}", err=True)
    raise typer.Exit(code)


# Seconds a stopping server gives the requests still running (see _serve_asgi).
SHUTDOWN_GRACE_SECONDS = 5


def _serve_asgi(asgi: Any, host: str, port: int, log_level: str, trusted_proxies: str = "") -> None:
    import uvicorn

    # Bound before the lifespan runs: uvicorn binds after start-up, so a second process
    # on a busy port used to restore sessions before finding out.
    try:
        sock = bind_listener(host, port)
    except GatewayError as err:
        _fail(err)

    proxies = ",".join(p.strip() for p in trusted_proxies.split(",") if p.strip())
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_level=log_level.lower(),
        lifespan="on",
        # X-Forwarded-For only from ZAPGATE_TRUSTED_PROXIES: believed from anyone (uvicorn
        # trusts 127.0.0.1 by default), it let a client rotate its address at will.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        server_header=False,
        # In-flight requests get this long once SIGTERM came, then are cancelled: a web
        # tier's journal long poll (20 s) or a live stream would otherwise hold the
        # process up to their end, or forever.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    # uvicorn configured its loggers (handlers of their own) when the Config was built.
    logredact.install("uvicorn", "uvicorn.access", "uvicorn.error")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _lock_data_dir(settings: Settings, topology: Topology) -> None:
    """Own the data directory for the process's roles (see zapgate.datadir)."""
    roles = ["worker"] if topology is Topology.EMBEDDED else []
    if settings.resolved_database_url.startswith("sqlite"):
        roles.append("web")
    for role in roles:
        _held_locks.append(DataDirLock.acquire(settings.data_dir, role))


# Locks live as long as the process: the kernel drops them when it exits, even on kill -9.
_held_locks: list[DataDirLock] = []


def _run_web(settings: Settings, topology: Topology) -> None:
    from zapgate.web.app import create_app

    try:
        settings.validate_for_start(topology)
        _lock_data_dir(settings, topology)
    except GatewayError as err:
        _fail(err)
    _serve_asgi(
        create_app(settings, topology),
        settings.host,
        settings.port,
        settings.log_level,
        settings.trusted_proxies,
    )


@app.command()
def serve(
    host: Host = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port [ZAPGATE_PORT; default 8000].")
    ] = None,
    engine: Engine = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Run everything in one process: web tier + embedded worker, SQLite by default."""
    settings = _settings(
        host=host, port=port, engine=engine, data_dir=data_dir, database_url=database_url
    )
    _run_web(settings, Topology.EMBEDDED)


@app.command()
def web(
    topology: Annotated[
        Topology | None,
        typer.Option(help="Where sessions live [ZAPGATE_TOPOLOGY; default shared]."),
    ] = None,
    host: Host = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port [ZAPGATE_PORT, PORT; default 8000].")
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Run the web tier alone; sessions live on the worker(s) the topology names."""
    if port is None and "ZAPGATE_PORT" not in os.environ and os.environ.get("PORT", "").isdigit():
        port = int(os.environ["PORT"])
    settings = _settings(
        topology=topology, host=host, port=port, data_dir=data_dir, database_url=database_url
    )
    _run_web(settings, settings.effective_topology)


@app.command()
def worker(
    port: Annotated[int, typer.Option(help="Port of the internal API.", show_default=True)] = 5001,
    host: Host = None,
    worker_id: Annotated[
        str | None, typer.Option(help="Worker id [ZAPGATE_WORKER_ID; default HOSTNAME:PORT].")
    ] = None,
    engine: Engine = None,
    data_dir: DataDir = None,
) -> None:
    """Run a WhatsApp worker: many sessions in one process, internal API on --port."""
    from zapgate.engines import EngineBackends
    from zapgate.worker.app import create_worker_app
    from zapgate.worker.core import Worker

    settings = _settings(host=host, engine=engine, data_dir=data_dir, worker_id=worker_id)
    if settings.is_production:
        try:
            settings.validate_for_start(Topology.SHARED)
        except GatewayError as err:
            _fail(err)
    data = settings.data_dir.resolve()
    try:
        _held_locks.append(DataDirLock.acquire(data, "worker"))
    except GatewayError as err:
        _fail(err)
    w = Worker(
        data_dir=data,
        worker_id=settings.worker_id or f"{socket.gethostname()}:{port}",
        backends=EngineBackends.build(settings, data),
    )
    logging.getLogger("zapgate.worker").info(
        "worker %s listening on http://%s:%s (data dir %s)", w.worker_id, settings.host, port, data
    )
    _serve_asgi(
        create_worker_app(
            w,
            token=settings.worker_token,
            max_body_bytes=settings.max_body_bytes,
            media_body_bytes=settings.media_body_bytes,
        ),
        settings.host,
        port,
        settings.log_level,
    )


@app.command()
def simnet(
    port: Annotated[
        int, typer.Option(help="Port of the simulated network.", show_default=True)
    ] = 5090,
    host: Host = None,
    data_dir: DataDir = None,
) -> None:
    """Run the simulated WhatsApp network (servers + phones) as its own process."""
    from zapgate.simnet.network import SimNetwork
    from zapgate.simnet.server import create_app as create_simnet_app

    settings = _settings(host=host, data_dir=data_dir)
    network = SimNetwork(settings.data_dir.resolve() / "simnet.json")
    _serve_asgi(create_simnet_app(network), settings.host, port, settings.log_level)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except GatewayError as err:
        _fail(err, 1)


@users_app.command("create")
def users_create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a dashboard password (8+ characters) from the first line of stdin.",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a user; prints the numeric user id."""
    from zapgate import admin_ops

    password = _password_from_stdin() if password_stdin else None
    settings = _settings(data_dir=data_dir, database_url=database_url)
    user = _run(admin_ops.create_user(settings, email, password, admin))
    typer.echo(user.id)


def _password_from_stdin() -> str:
    return sys.stdin.readline().rstrip("\n")


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def _columns(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@users_app.command("set-password")
def users_set_password(
    email: str,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the new dashboard password (8+ characters) from the first line of stdin.",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Set a user's dashboard password (read from stdin, never from the command line)."""
    from zapgate import admin_ops

    if not password_stdin:
        typer.secho("error: give the password on stdin with --password-stdin.", fg="red", err=True)
        typer.echo(
            "hint: printf '%s\n' \"$PASSWORD\" | zapgate users set-password EMAIL --password-stdin",
            err=True,
        )
        raise typer.Exit(2)
    password = _password_from_stdin()
    settings = _settings(data_dir=data_dir, database_url=database_url)
    user = _run(admin_ops.set_password(settings, email, password))
    typer.echo(f"password set for {user.email}")


@users_app.command("list")
def users_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List users: id, e-mail, admin, created."""
    from zapgate import admin_ops

    settings = _settings(data_dir=data_dir, database_url=database_url)
    users = _run(admin_ops.list_users(settings))
    _columns(
        ["ID", "EMAIL", "ADMIN", "CREATED"],
        [[str(u.id), u.email, "yes" if u.is_admin else "no", _when(u.created_at)] for u in users],
    )


@keys_app.command("list")
def keys_list(email: str, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List a user's API keys (never the keys themselves): id, name, prefix, created, last used."""
    from zapgate import admin_ops

    settings = _settings(data_dir=data_dir, database_url=database_url)
    keys = _run(admin_ops.list_keys(settings, email))
    _columns(
        ["ID", "NAME", "PREFIX", "CREATED", "LAST USED"],
        [
            [str(k.id), k.name, f"{k.prefix}…", _when(k.created_at), _when(k.last_used_at)]
            for k in keys
        ],
    )


@keys_app.command("revoke")
def keys_revoke(
    email: str,
    key_id: Annotated[
        int,
        typer.Argument(help="The key's ID, as `zapgate keys list` shows it.", min=1, max=2**63 - 1),
    ],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Revoke one of a user's API keys; it stops working at once."""
    from zapgate import admin_ops

    settings = _settings(data_dir=data_dir, database_url=database_url)
    _run(admin_ops.revoke_key(settings, email, key_id))
    typer.echo(f"revoked API key {key_id} of {email}")


@keys_app.command("create")
def keys_create(
    email: str,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "default",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an API key for a user; the key is printed once, on the last line."""
    from zapgate import admin_ops

    settings = _settings(data_dir=data_dir, database_url=database_url)
    key = _run(admin_ops.create_key(settings, email, name))
    typer.echo(f"API key for {email} (shown once, store it now):", err=True)
    typer.echo(key)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Apply the database migrations."""
    from zapgate import admin_ops

    settings = _settings(data_dir=data_dir, database_url=database_url)
    rev = _run(admin_ops.migrate(settings))
    typer.echo(f"database at revision {rev}")


@users_app.command("set-limit")
def users_set_limit(
    email: str,
    limit: Annotated[
        str,
        typer.Argument(
            help="Sessions the user may have (0 or more), or 'default' to follow "
            "ZAPGATE_MAX_SESSIONS_PER_USER."
        ),
    ],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Set how many sessions a user may have (over ZAPGATE_MAX_SESSIONS_PER_USER)."""
    from zapgate import admin_ops
    from zapgate.errors import ValidationFailed
    from zapgate.i18n import N_

    value: int | None = None
    if limit.strip().lower() != "default":
        try:
            value = int(limit)
        except ValueError:
            _fail(
                ValidationFailed(
                    N_("The session limit must be a whole number or 'default', not {value!r}."),
                    hint=N_("For example: zapgate users set-limit {email} 20"),
                    value=limit[:40],
                    email=email,
                )
            )
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _run(admin_ops.set_session_limit(settings, email, value))
    shown = "the default (ZAPGATE_MAX_SESSIONS_PER_USER)" if value is None else str(value)
    typer.echo(f"session limit of {email}: {shown}")


@app.command()
def doctor(
    topology: Annotated[
        Topology | None,
        typer.Option(
            help="Topology to check [ZAPGATE_TOPOLOGY; default embedded, shared in production]."
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Check the configuration, the database and every worker the topology names."""
    from zapgate import doctor as doctor_mod

    settings = _settings(topology=topology, data_dir=data_dir, database_url=database_url)
    ok = asyncio.run(doctor_mod.run(settings, settings.doctor_topology, typer.echo))
    raise typer.Exit(0 if ok else 1)


@app.command("import-legacy")
def import_legacy(
    path: Path,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import the old app's data/user_instances.json (one record per user)."""
    from zapgate import legacy

    settings = _settings(data_dir=data_dir, database_url=database_url)
    report = _run(legacy.import_file(settings, path))
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(0 if report.imported or not report.skipped else 1)
