"""Shared fixtures: run the real CLI in a subprocess, as a user or cron would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def run_cli(tmp_path):
    """Run `python -m exitcheck ARGS` with no terminal and no stdin; returns CompletedProcess."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "exitcheck", *args],
            capture_output=True, text=True, cwd=cwd or tmp_path, env=environment,
            stdin=subprocess.DEVNULL, timeout=timeout,
        )

    return run
