"""The reading's own threads, as the tests that stop a reading look for them."""

from __future__ import annotations

import threading


def reading_threads() -> list[str]:
    """Names of the live threads exitcheck started to read and scan (all named exitcheck-...)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("exitcheck-")]
