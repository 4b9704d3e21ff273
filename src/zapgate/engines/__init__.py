"""WhatsApp engines. `base` is the contract, `backends` what the engines of one worker
share; each adapter is the only module importing its SDK. `build_engine` picks the adapter
by name, importing it lazily so a worker that never hosts a real session never loads the
real SDK."""

from __future__ import annotations

from pathlib import Path

from zapgate.engines.backends import EngineBackends
from zapgate.engines.base import Emit, Engine, EngineOptions
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_

_ENGINES = ("sim", "whatsmeow")


def known_engines() -> list[str]:
    return sorted(_ENGINES)


def validate_engine_name(name: str) -> str:
    if name not in _ENGINES:
        raise ValidationFailed(
            N_("unknown engine {name!r}"),
            hint=N_("Use one of: {engines}."),
            name=name[:40],
            engines=", ".join(known_engines()),
        )
    return name


def build_engine(
    name: str,
    *,
    client_id: str,
    session_dir: Path,
    emit: Emit,
    options: EngineOptions,
    backends: EngineBackends,
) -> Engine:
    """An engine `name` for one session, given its share of the worker's `backends`."""
    if validate_engine_name(name) == "whatsmeow":
        from zapgate.engines.whatsmeow import WhatsmeowEngine

        return WhatsmeowEngine(
            client_id=client_id,
            session_dir=session_dir,
            emit=emit,
            options=options,
            runtime=backends.whatsmeow,
        )
    from zapgate.engines.sim import SimEngine

    return SimEngine(
        client_id=client_id, session_dir=session_dir, emit=emit, options=options, link=backends.sim
    )


__all__ = [
    "Emit",
    "Engine",
    "EngineBackends",
    "EngineOptions",
    "build_engine",
    "known_engines",
    "validate_engine_name",
]
