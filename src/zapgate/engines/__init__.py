"""WhatsApp engines. `base` is the contract; each adapter is the only module importing
its SDK. `build_engine` picks the adapter by name, importing it lazily so a worker that
never hosts a real session never loads the real SDK."""

from __future__ import annotations

import importlib
from pathlib import Path

from zapgate.engines.base import Emit, Engine, EngineOptions
from zapgate.errors import ValidationFailed

_ADAPTERS: dict[str, str] = {
    "sim": "zapgate.engines.sim:SimEngine",
    "whatsmeow": "zapgate.engines.whatsmeow:WhatsmeowEngine",
}


def known_engines() -> list[str]:
    return sorted(_ADAPTERS)


def validate_engine_name(name: str) -> str:
    if name not in _ADAPTERS:
        raise ValidationFailed(
            f"unknown engine {name[:40]!r}",
            hint=f"Use one of: {', '.join(known_engines())}.",
        )
    return name


def build_engine(
    name: str, *, client_id: str, session_dir: Path, emit: Emit, options: EngineOptions
) -> Engine:
    module_name, _, cls_name = _ADAPTERS[validate_engine_name(name)].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    engine: Engine = cls(client_id=client_id, session_dir=session_dir, emit=emit, options=options)
    return engine


__all__ = [
    "Emit",
    "Engine",
    "EngineOptions",
    "build_engine",
    "known_engines",
    "validate_engine_name",
]
