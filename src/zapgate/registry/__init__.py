"""The registry: users, API keys, sessions, messages and worker journal cursors, in
SQLite (default) or PostgreSQL, behind one async API that returns domain objects."""

from zapgate.errors import UserExists
from zapgate.registry.registry import Registry

__all__ = ["Registry", "UserExists"]
