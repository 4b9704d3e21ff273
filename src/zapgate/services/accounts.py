"""Account use cases: who an API key or a password belongs to, signing up, the dashboard
language, and a user's own API keys."""

from __future__ import annotations

import logging

from zapgate.domain.models import ApiKey, User
from zapgate.registry import Registry

logger = logging.getLogger(__name__)


class AccountService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def authenticate(self, key: str) -> User | None:
        """The user an API key belongs to; None when unknown or revoked."""
        return await self.registry.keys.authenticate(key)

    async def verify_password(self, email: str, password: str) -> User | None:
        return await self.registry.users.verify_password(email, password)

    async def get(self, user_id: int) -> User | None:
        return await self.registry.users.get(user_id)

    async def sign_up(self, email: str, password: str) -> User:
        # The first account of a fresh install administers it: nobody else could. The
        # registry decides "first" atomically (see UserRepo.create), as for `users create`.
        user = await self.registry.users.create(email, password, first_is_admin=True)
        logger.info(
            "dashboard: user %s signed up%s", user.id, " (first: admin)" if user.is_admin else ""
        )
        return user

    async def open_dashboard_session(self, user: User) -> str:
        """A server-side record of a new dashboard sign-in; its id goes in the cookie."""
        return await self.registry.logins.open(user.id)

    async def dashboard_session_valid(self, sid: str, user_id: int) -> bool:
        return await self.registry.logins.check(sid, user_id)

    async def close_dashboard_session(self, sid: str) -> None:
        await self.registry.logins.revoke(sid)

    async def set_lang(self, user: User, lang: str | None) -> None:
        await self.registry.users.set_lang(user.id, lang)

    async def api_keys(self, user: User) -> list[ApiKey]:
        return await self.registry.keys.list(user.id)

    async def create_api_key(self, user: User, name: str) -> tuple[ApiKey, str]:
        name = name.strip()[:100] or "default"
        return await self.registry.keys.create(user.id, name)

    async def revoke_api_key(self, user: User, key_id: int) -> bool:
        return await self.registry.keys.revoke(user.id, key_id)
