"""Alembic environment for the registry.

zapgate runs migrations in-process: `zapgate.registry.migrator` opens a
connection (inside a transaction) and hands it over in `config.attributes["connection"]`,
so no alembic.ini, URL or logging setup is needed at runtime.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from zapgate.registry.tables import metadata

config = context.config


def run_migrations_offline() -> None:
    # `alembic -c src/zapgate/registry/alembic.ini upgrade head --sql`: print the SQL.
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "zapgate migrations run in-process: use `zapgate migrate` (Registry.migrate), "
            "which passes the connection in config.attributes['connection']."
        )
    # The caller's transaction wraps the whole upgrade. SQLite's DDL is transactional
    # too (Alembic assumes otherwise only because the sqlite3 module used to commit
    # implicitly, which the registry's engine turns off).
    context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
