"""Account use cases: who an API key or a password belongs to, signing up, the dashboard
language, and a user's own API keys.

Every API request names its key, so the answer is kept for `KEY_CACHE_TTL` (1 s) in this
process: a request then costs no database read for it. Revoking a key (or changing its
user) through this process forgets that user's entries at once; a key revoked elsewhere
(`zapgate keys revoke`, another web replica) stops working within the TTL."""

from __future__ import annotations

import asyncio
import logging
import time

from zapgate.domain.models import ApiKey, User
from zapgate.registry import Registry
from zapgate.registry.credentials import hash_api_key

logger = logging.getLogger(__name__)

KEY_CACHE_TTL = 1.0
KEY_CACHE_SIZE = 10_000


class KeyCache:
    """Known API keys (by their hash, never the key) and their users, for a short while.
    Unknown keys are not kept: each costs a lookup, as before."""

    def __init__(self, ttl: float = KEY_CACHE_TTL, size: int = KEY_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, User]] = {}
        # Moves on when entries are forgotten: a lookup that began before may have read
        # what was just revoked, and is not stored.
        self.generation = 0

    def get(self, key_hash: str) -> User | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key_hash]
            return None
        return entry[1]

    def put(self, key_hash: str, user: User, generation: int | None = None) -> None:
        if generation is not None and generation != self.generation:
            return
        if len(self._entries) >= self.size:
            now = time.monotonic()
            self._entries = {h: e for h, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[key_hash] = (time.monotonic() + self.ttl, user)

    def forget_user(self, user_id: int) -> None:
        self.generation += 1
        self._entries = {h: e for h, e in self._entries.items() if e[1].id != user_id}


class AccountService:
    def __init__(self, registry: Registry, key_cache: KeyCache | None = None) -> None:
        self.registry = registry
        self.key_cache = key_cache or KeyCache()
        # Lookups under way, by key hash: when a busy key's entry expires, the requests
        # that miss together share one lookup instead of one each.
        self._lookups: dict[str, asyncio.Future[User | None]] = {}

    async def authenticate(self, key: str) -> User | None:
        """The user an API key belongs to; None when unknown or revoked."""
        key_hash = hash_api_key(key)
        user = self.key_cache.get(key_hash)
        if user is not None:
            return user
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            generation = self.key_cache.generation
            lookup = asyncio.ensure_future(self._lookup(key, key_hash, generation))
            self._lookups[key_hash] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key_hash, None))
        # Shielded: a caller that goes away does not cancel the others' lookup.
        return await asyncio.shield(lookup)

    async def _lookup(self, key: str, key_hash: str, generation: int) -> User | None:
        user = await self.registry.keys.authenticate(key)
        if user is not None:
            self.key_cache.put(key_hash, user, generation)
        return user

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
        self.key_cache.forget_user(user.id)

    async def api_keys(self, user: User) -> list[ApiKey]:
        return await self.registry.keys.list(user.id)

    async def create_api_key(self, user: User, name: str) -> tuple[ApiKey, str]:
        name = name.strip()[:100] or "default"
        return await self.registry.keys.create(user.id, name)

    async def revoke_api_key(self, user: User, key_id: int) -> bool:
        revoked = await self.registry.keys.revoke(user.id, key_id)
        self.key_cache.forget_user(user.id)
        return revoked
