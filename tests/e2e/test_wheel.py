"""A regular install runs from any folder: scripts/check-wheel.sh builds the wheel, installs it into a
fresh virtual environment (requirements borrowed from this one, so no download and the same torch) and
runs ``semiad train --cfg job`` and ``semiad train trainer.max_epochs=1`` from an empty folder. About
20 s on a loaded 2-core machine; `make test` (what CI runs) runs it with the rest of the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_runs_from_an_empty_folder() -> None:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check-wheel.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "check-wheel: ok" in proc.stdout
