"""Imports flow down: the worker's HTTP app shares the error handlers and body limits of
`zapgate.http` with the public app, and loads nothing of the web tier."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_app_loads_nothing_of_the_web_tier() -> None:
    script = (
        "import sys, zapgate.worker.app\n"
        "print(' '.join(m for m in sys.modules if m.startswith('zapgate.web')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_worker_never_loads_neonize() -> None:
    """neonize's import starts the Go runtime; only whatsmeow host processes may have it
    (engines/whatsmeow/host.py), never the worker, even with whatsmeow sessions built."""
    script = (
        "import sys, asyncio, pathlib, tempfile\n"
        "import zapgate.worker.core, zapgate.engines.whatsmeow\n"
        "from zapgate.engines import EngineBackends, build_engine\n"
        "from zapgate.engines.base import EngineOptions\n"
        "async def emit(event): pass\n"
        "build_engine('whatsmeow', client_id='u1-aaa', emit=emit, options=EngineOptions(),\n"
        "    session_dir=pathlib.Path(tempfile.mkdtemp()), backends=EngineBackends())\n"
        "print(' '.join(m for m in sys.modules if m.startswith('neonize')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
