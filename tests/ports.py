"""Ports on 127.0.0.1 for the tests' real servers, and for servers meant to be down."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def free_port() -> int:
    """A port nothing listens on (yet): the test starts its server there at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def port_down() -> Iterator[int]:
    """A port bound but not listening: a connection is refused, and no other test (another
    xdist worker) can take it while the server is meant to be down."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
