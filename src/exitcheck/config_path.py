"""Where a workspace's exitcheck.yaml is, found without importing what reads it (pydantic and
PyYAML, 0.2 s): the program looks for one before it starts reading a register (launch.py),
and reads it only when there is one (workspace.load_config)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exitcheck.workspace import WorkspaceConfig

CONFIG_NAMES = ("exitcheck.yaml", "exitcheck.yml")


def find_config(start: Path) -> Path | None:
    """exitcheck.yaml in `start` or the nearest parent folder that has one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def nearby_config() -> WorkspaceConfig | None:
    """The workspace of the current folder (or the nearest parent with an exitcheck.yaml), if
    any. exitcheck.workspace, and pydantic with it, is imported only when there is one."""
    found = find_config(Path.cwd())
    if found is None:
        return None
    from exitcheck.workspace import load_config

    return load_config(found)
