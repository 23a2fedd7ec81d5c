"""Ports on 127.0.0.1 for the tests' real servers, and for servers meant to be down."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar

Server = TypeVar("Server")


def _probed_free_port() -> int:
    """A port nothing listens on at this moment. Another process may take it before the test
    binds it: start servers with `on_a_free_port`, which tries again when that happens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def on_a_free_port(start: Callable[[int], Server], attempts: int = 10) -> tuple[Server, int]:
    """A server started by `start(port)` on a free port, and the port. For servers that cannot
    be handed a bound socket (aiosmtpd's Controller checks it is up by connecting to the port
    it was given, so port 0 will not do): the port is probed free, and if another xdist worker
    binds it in the moment between, the server is started again on another."""
    for attempt in range(attempts):
        port = _probed_free_port()
        try:
            return start(port), port
        except OSError as error:
            if error.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def port_down() -> Iterator[int]:
    """A port bound but not listening: a connection is refused, and no other test (another
    xdist worker) can take it while the server is meant to be down."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
