"""The registry: users, API keys, sessions, messages and worker journal cursors, in
SQLite (default) or PostgreSQL, behind one async API that returns domain objects."""

from zapgate.registry.registry import Registry, UserExists

__all__ = ["Registry", "UserExists"]
