"""Coordinator addresses and leader discovery for cluster mode.

A coordinator address is one of::

    host:port                          one coordinator
    h1:p1,h2:p2,h3:p3                  seed replicas, tried in turn
    etcd://h1:2379,h2:2379[/prefix]    read the leader from etcd (prefix default /agentmesh)

Which address an ``Agent`` or ``Client`` uses (:func:`resolve_address`): the one given
in code, else the environment variable ``AGENTMESH_COORDINATOR``, else ``localhost:50051``.

A gRPC target with a scheme the SDK does not interpret (``unix:``, ``dns:``, ``ipv4:`` ...)
is passed to gRPC as one address.

In cluster mode a replica that is not the leader answers with ``UNAVAILABLE`` and the
trailing metadata ``agentmesh-leader: host:port`` (:func:`leader_hint` reads it).  The
leader is also the election candidate with the lowest create revision under
``<prefix>/election/``; its value is JSON ``{"id": ..., "address": "host:port"}``
(:func:`find_leader` reads it, read-only, straight from etcd).

A secured etcd is reached with the same environment variables the coordinator reads:
``AGENTMESH_ETCD_CA_CERT`` (enables TLS), ``AGENTMESH_ETCD_CERT`` and
``AGENTMESH_ETCD_KEY`` (a client certificate), ``AGENTMESH_ETCD_USER`` and
``AGENTMESH_ETCD_PASSWORD`` (etcd authentication); see :class:`EtcdCredentials`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from agent_sdk._errors import UnavailableError
from agentmesh.protocol import (
    DEFAULT_PREFIX,
    ELECTION_METADATA,
    LEADER_METADATA,
    election_prefix,
    prefix_end,
)

ETCD_SCHEME = "etcd://"
COORDINATOR_ENV = "AGENTMESH_COORDINATOR"
DEFAULT_COORDINATOR = "localhost:50051"
# gRPC name-resolver schemes passed through untouched (one target, no validation).
_GRPC_SCHEMES = ("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:", "vsock:")


@dataclass(frozen=True, slots=True)
class CoordinatorAddress:
    """A parsed coordinator address: either ``seeds`` (one or more ``host:port``,
    tried in turn) or ``etcd`` endpoints plus the cluster ``prefix``."""

    seeds: tuple[str, ...] = ()
    etcd: tuple[str, ...] = ()
    prefix: str = DEFAULT_PREFIX

    @property
    def uses_etcd(self) -> bool:
        return bool(self.etcd)

    @property
    def replicated(self) -> bool:
        """Whether another replica can be tried when one fails (seed list or etcd)."""
        return self.uses_etcd or len(self.seeds) > 1

    def __str__(self) -> str:
        if self.uses_etcd:
            suffix = "" if self.prefix == DEFAULT_PREFIX else self.prefix
            return ETCD_SCHEME + ",".join(self.etcd) + suffix
        return ",".join(self.seeds)


def resolve_address(
    explicit: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The coordinator address to use and where it came from: ``explicit`` when given
    (``"argument"``: code the user wrote wins), else ``AGENTMESH_COORDINATOR`` from
    ``environ`` (default ``os.environ``; ``"AGENTMESH_COORDINATOR"``), else
    ``localhost:50051`` (``"default"``). An empty string counts as not given."""
    if explicit:
        return explicit, "argument"
    env = os.environ if environ is None else environ
    from_env = env.get(COORDINATOR_ENV, "")
    if from_env.strip():
        return from_env, COORDINATOR_ENV
    return DEFAULT_COORDINATOR, "default"


def ignored_environment(
    address: str, source: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The ``AGENTMESH_COORDINATOR`` value that an explicit ``address`` overrides, if it
    names a different coordinator (None when it is unset, the same, or not overridden)."""
    if source != "argument":
        return None
    env = os.environ if environ is None else environ
    value = env.get(COORDINATOR_ENV, "").strip()
    if not value or value == address.strip():
        return None
    try:
        same = parse_address(value) == parse_address(address)
    except ValueError:
        same = False
    return None if same else value


def parse_address(text: str) -> CoordinatorAddress:
    """Parse a coordinator address (see the module docstring); ValueError if malformed."""
    text = text.strip()
    if not text:
        raise ValueError("coordinator address is empty")
    if text.lower().startswith(ETCD_SCHEME):
        rest = text[len(ETCD_SCHEME) :]
        hosts, _, path = rest.partition("/")
        body = path.rstrip("/")
        prefix = "/" + body if body else DEFAULT_PREFIX
        if "//" in prefix:
            raise ValueError(f"etcd prefix {prefix!r} in {text!r} has an empty path segment")
        endpoints = _host_ports(hosts, text)
        return CoordinatorAddress(etcd=endpoints, prefix=prefix)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"unsupported scheme {scheme!r} in coordinator address {text!r} "
            "(use host:port, h1:p1,h2:p2 or etcd://host:port[/prefix])"
        )
    if text.startswith(_GRPC_SCHEMES):
        return CoordinatorAddress(seeds=(text,))
    return CoordinatorAddress(seeds=_host_ports(text, text))


def _host_ports(text: str, whole: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ValueError(f"no host:port in coordinator address {whole!r}")
    return tuple(_host_port(p, whole) for p in parts)


def _host_port(part: str, whole: str) -> str:
    if not part:
        raise ValueError(f"empty entry in coordinator address {whole!r}")
    host, colon, port = part.rpartition(":")
    if not colon:
        raise ValueError(f"{part!r} in coordinator address {whole!r} has no port (host:port)")
    if host.startswith("["):  # [v6 address]:port
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"bad IPv6 host in {part!r} (coordinator address {whole!r})")
    elif not host or any(c in host for c in " /[]"):
        raise ValueError(f"bad or empty host in {part!r} (coordinator address {whole!r})")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in {part!r} (coordinator address {whole!r})")
    return f"{host}:{int(port)}"


def election_pending(e: grpc.aio.AioRpcError) -> bool:
    """A live replica answered that no leader is known yet (an election is under way):
    worth asking again shortly, unlike a replica that did not answer at all."""
    if e.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return any(key == ELECTION_METADATA for key, _ in e.trailing_metadata() or ())


def leader_hint(e: grpc.aio.AioRpcError) -> str | None:
    """The leader's address a non-leader replica named in its UNAVAILABLE answer, if any."""
    if e.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    for key, value in e.trailing_metadata() or ():
        if key == LEADER_METADATA:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return text.strip() or None
    return None


@dataclass(frozen=True, slots=True)
class EtcdCredentials:
    """How to reach a secured etcd: TLS (``ca_cert``, plus ``cert``/``key`` for a client
    certificate) and/or etcd authentication (``user``/``password``). Paths are PEM files."""

    ca_cert: str = ""
    cert: str = ""
    key: str = ""
    user: str = ""
    password: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EtcdCredentials:
        env = os.environ if environ is None else environ
        names = ("CA_CERT", "CERT", "KEY", "USER", "PASSWORD")
        creds = cls(*(env.get(f"AGENTMESH_ETCD_{name}", "") for name in names))
        if bool(creds.cert) != bool(creds.key):
            raise ValueError("AGENTMESH_ETCD_CERT and AGENTMESH_ETCD_KEY go together")
        if bool(creds.user) != bool(creds.password):
            raise ValueError("AGENTMESH_ETCD_USER and AGENTMESH_ETCD_PASSWORD go together")
        return creds

    @property
    def tls(self) -> bool:
        return bool(self.ca_cert or self.cert)

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        if not self.tls:
            return grpc.aio.insecure_channel(endpoint)
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(self.ca_cert).read_bytes() if self.ca_cert else None,
                private_key=Path(self.key).read_bytes() if self.key else None,
                certificate_chain=Path(self.cert).read_bytes() if self.cert else None,
            )
        except OSError as e:
            raise UnavailableError(f"cannot read etcd TLS files: {e}") from None
        return grpc.aio.secure_channel(endpoint, credentials)


async def find_leader(
    endpoints: Sequence[str],
    prefix: str = DEFAULT_PREFIX,
    timeout: float = 2.0,
    credentials: EtcdCredentials | None = None,
) -> str:
    """The leader coordinator's ``host:port``, read from etcd.

    Endpoints are tried in order; ``timeout`` bounds each one (connect plus read).
    ``credentials`` default to :meth:`EtcdCredentials.from_env`.
    Raises UnavailableError when no endpoint answers or no leader is registered.
    """
    creds = EtcdCredentials.from_env() if credentials is None else credentials
    from aetcd import rpc  # the generated etcd v3 stubs; imported only when used

    key = election_prefix(prefix).encode()
    request = rpc.RangeRequest(
        key=key,
        range_end=prefix_end(key),
        limit=1,
        sort_target=rpc.RangeRequest.CREATE,
        sort_order=rpc.RangeRequest.ASCEND,
    )
    where = ",".join(endpoints)
    failures: list[str] = []
    response: Any = None
    for endpoint in endpoints:
        async with creds.channel(endpoint) as channel:
            try:
                metadata: tuple[tuple[str, str], ...] = ()
                if creds.user:
                    auth = await rpc.AuthStub(channel).Authenticate(
                        rpc.AuthenticateRequest(name=creds.user, password=creds.password),
                        timeout=timeout,
                    )
                    metadata = (("token", auth.token),)
                # Not wait_for_ready: a refused connection fails at once, and the
                # deadline bounds a silent host.
                response = await rpc.KVStub(channel).Range(
                    request, timeout=timeout, metadata=metadata
                )
            except grpc.aio.AioRpcError as e:
                failures.append(f"{endpoint}: {e.code().name}: {e.details()}")
                continue
        break
    if response is None:
        raise UnavailableError(
            f"cannot find the coordinator leader: etcd unreachable at {where} "
            f"({'; '.join(failures) or 'no endpoints'})"
        )
    if not response.kvs:
        raise UnavailableError(
            f"no coordinator leader registered in etcd {where} under {key.decode()}"
        )
    kv = response.kvs[0]
    try:
        address = json.loads(kv.value)["address"]
    except (ValueError, TypeError, KeyError) as e:
        raise UnavailableError(
            f"malformed leader record {kv.key.decode(errors='replace')} in etcd {where}: {e!r}"
        ) from None
    if not isinstance(address, str) or not address:
        raise UnavailableError(f"leader record in etcd {where} has no address")
    return address
