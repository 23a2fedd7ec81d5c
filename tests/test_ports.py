"""The test servers' port helper: a port taken in the moment between probe and bind is retried."""

import errno
import socket

import pytest

from ports import on_a_free_port


def test_a_port_taken_between_probe_and_bind_is_retried_on_another():
    tried: list[int] = []
    taken = socket.socket()

    def start(port: int) -> socket.socket:
        tried.append(port)
        if len(tried) == 1:  # another worker bound it first
            taken.bind(("127.0.0.1", port))
        server = socket.socket()
        server.bind(("127.0.0.1", port))
        return server

    try:
        server, port = on_a_free_port(start)
        server.close()
    finally:
        taken.close()
    assert len(tried) == 2 and port == tried[1]


def test_other_errors_are_not_retried():
    calls = []

    def start(port: int) -> None:
        calls.append(port)
        raise OSError(errno.EACCES, "permission denied")

    with pytest.raises(OSError):
        on_a_free_port(start)
    assert len(calls) == 1
