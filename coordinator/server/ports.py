"""The coordinator's listening sockets: binding a gRPC port with an error that says why it
failed, and the private loopback socket the HTTP gateway calls the gRPC server through."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import grpc

from coordinator.errors import ListenError


def check_bind(listen: str, what: str) -> None:
    """ListenError (``what`` names the setting) when ``listen`` cannot be bound."""
    problem = bind_problem(listen)
    if problem is not None:
        raise ListenError(f"cannot listen on {listen}{what}: {problem}")


def bind(
    server: grpc.aio.Server,
    listen: str,
    credentials: grpc.ServerCredentials | None,
    what: str,
) -> int:
    """Add the port ``listen`` to ``server`` (TLS with ``credentials``); its number,
    or ListenError saying why it could not be bound."""
    port: int
    try:
        if credentials is not None:
            port = int(server.add_secure_port(listen, credentials))
        else:
            port = int(server.add_insecure_port(listen))
    except RuntimeError:  # grpc's way of saying the bind failed
        port = 0
    if port == 0:
        problem = bind_problem(listen) or "the address is not available to gRPC here"
        raise ListenError(f"cannot listen on {listen}{what}: {problem}")
    return port


def bind_problem(listen: str) -> str | None:
    """Why ``listen`` cannot be bound, in the operating system's words ("address
    already in use", "cannot assign requested address"), or None if it can. gRPC only
    logs that a bind failed, so the coordinator asks first."""
    host, _, port = listen.rpartition(":")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        return reason[:1].lower() + reason[1:]
    return None


class Loopback:
    """A Unix socket on ``server`` for the HTTP gateway: plaintext, in a directory only
    this user may enter (``0700``), removed by ``remove()``. It serves what the main port
    serves, through the same guard: a local process that finds it still needs credentials
    when auth is on."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="agentmesh-"))
        self.target = f"unix:{self.directory / 'grpc.sock'}"
        server.add_insecure_port(self.target)

    def remove(self) -> None:
        """Delete the socket and its directory (after the server stopped)."""
        shutil.rmtree(self.directory, ignore_errors=True)
