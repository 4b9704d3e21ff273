"""Operator tasks behind `zapgate users|keys|migrate`: open the registry, do one thing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from zapgate.config import Settings
from zapgate.domain.models import ApiKey, User
from zapgate.errors import NotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import Registry, credentials


@contextlib.asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[Registry]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = await Registry.open(settings.resolved_database_url)
    try:
        yield registry
    finally:
        await registry.close()


def _check_password(password: str) -> None:
    if len(password) < credentials.MIN_PASSWORD_CHARS:
        raise ValidationFailed(
            N_("The password needs at least {n} characters."),
            hint=N_("Pipe a longer password into --password-stdin."),
            n=credentials.MIN_PASSWORD_CHARS,
        )


async def _user(registry: Registry, email: str) -> User:
    user = await registry.users.get_by_email(email)
    if user is None:
        raise NotFound(
            N_("No user {email!r}."), hint=N_("zapgate users create {email}"), email=email
        )
    return user


async def create_user(settings: Settings, email: str, password: str | None, admin: bool) -> User:
    if "@" not in email or len(email) > 254:
        raise ValidationFailed(N_("{email!r} is not an e-mail address."), email=email[:80])
    if password is not None:
        _check_password(password)
    async with _opened(settings) as registry:
        # The same first-user rule as a dashboard sign-up: the first user is an admin.
        return await registry.users.create(email, password, is_admin=admin, first_is_admin=True)


async def create_key(settings: Settings, email: str, name: str) -> str:
    async with _opened(settings) as registry:
        user = await _user(registry, email)
        _, key = await registry.keys.create(user.id, name)
        return key


async def set_password(settings: Settings, email: str, password: str) -> User:
    _check_password(password)
    async with _opened(settings) as registry:
        user = await _user(registry, email)
        await registry.users.set_password(user.id, password)
        return user


async def list_users(settings: Settings) -> list[User]:
    async with _opened(settings) as registry:
        return await registry.users.list()


async def list_keys(settings: Settings, email: str) -> list[ApiKey]:
    async with _opened(settings) as registry:
        return await registry.keys.list((await _user(registry, email)).id)


async def revoke_key(settings: Settings, email: str, key_id: int) -> None:
    async with _opened(settings) as registry:
        user = await _user(registry, email)
        if not await registry.keys.revoke(user.id, key_id):
            raise NotFound(
                N_("{email!r} has no API key {id}."),
                hint=N_("zapgate keys list {email}"),
                email=email,
                id=key_id,
            )


async def migrate(settings: Settings) -> str | None:
    async with _opened(settings) as registry:
        await registry.migrate()
        return await registry.revision()


async def set_session_limit(settings: Settings, email: str, limit: int | None) -> User:
    """A user's own session limit; None follows ZAPGATE_MAX_SESSIONS_PER_USER again."""
    async with _opened(settings) as registry:
        user = await _user(registry, email)
        await registry.users.set_max_sessions(user.id, limit)
        return user
