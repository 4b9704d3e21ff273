"""Where sessions live: placement per topology, migration of stale routes, health cache."""
