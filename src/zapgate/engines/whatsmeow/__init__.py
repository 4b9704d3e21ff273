"""The whatsmeow engine (neonize, the Python binding of Go's whatsmeow).

The worker's side, which never loads neonize: `engine` (the Engine: state, reconnects,
deadlines), `procs` (the host processes and which sessions share one), `rpc` (the wire),
`store` (is our device in whatsmeow's auth store), `reasons` (Go's errors as reasons).
A host process's side, the only modules importing neonize: `host` (its main), `bridge`
(a client's connect() thread and the lock over Go's maps), `convert` (whatsmeow's events
as notes), `media` (media messages in and out)."""

from zapgate.engines.whatsmeow.engine import WhatsmeowEngine

__all__ = ["WhatsmeowEngine"]
