"""The whatsmeow engine (neonize, the Python binding of Go's whatsmeow): `engine` is the
Engine, `bridge` the way its threads meet Go and the event loop, `convert` whatsmeow's data
as zapgate's, `media` media messages in and out. The only package importing neonize."""

from zapgate.engines.whatsmeow.engine import WhatsmeowEngine

__all__ = ["WhatsmeowEngine"]
