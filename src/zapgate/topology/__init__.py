"""Where sessions live: placement per topology, migration of stale routes, the worker pool
and its health cache."""
