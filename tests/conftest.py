"""Shared fixtures: run the real CLI in a process of its own, as a user or cron would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import cli_process  # noqa: E402 (found through the line above)


@pytest.fixture
def run_cli(tmp_path):
    """Run `python -m exitcheck ARGS` with no terminal and no stdin; returns CompletedProcess.

    Each run is a process of its own, forked from one that has imported the libraries exitcheck
    uses (tests/cli_process.py)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return cli_process.exitcheck(*args, cwd=cwd or tmp_path, env=env, timeout=timeout)

    return run
