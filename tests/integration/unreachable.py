"""Loopback addresses that fail the way a missing network does, for the unreachable-server
tests: nothing listening (connection refused), a listener whose queue is full (the connect
never completes: a connect timeout), a listener that never answers (a read timeout), and a
name that does not resolve (socket.getaddrinfo patched). No internet."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def closed_port_url(path: str = "/query") -> str:
    """A loopback URL with nothing listening: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@contextlib.contextmanager
def silent_server(path: str = "/query") -> Iterator[str]:
    """Connections complete (the kernel queues them) and the request is sent, but nothing
    ever answers: a read timeout, after the request may have been counted."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{path}"


@contextlib.contextmanager
def full_backlog(path: str = "/query") -> Iterator[str]:
    """A listener that never accepts, its queue filled first: a new connection's SYN is
    dropped, so the connect times out (the request is never sent)."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(8):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
        yield f"http://127.0.0.1:{address[1]}{path}"


class FailingResolver:
    """socket.getaddrinfo that fails as it does with no network; counts the lookups."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def __call__(self, host, *args, **kwargs):
        self.lookups.append(str(host))
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def no_dns(monkeypatch) -> FailingResolver:
    """Name resolution fails from here on (undone with the test's monkeypatch)."""
    for name in PROXY_VARIABLES:  # a proxy would be asked instead of the name resolved
        monkeypatch.delenv(name, raising=False)
    resolver = FailingResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return resolver
