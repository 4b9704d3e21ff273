"""Use cases: what routes call. Services talk to the registry and to workers, never to
an engine directly."""
