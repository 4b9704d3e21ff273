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
