"""TLS to the coordinator: the settings (``TLS``) and the one place the SDK dials a
coordinator (``open_channel``), so that every address form (``host:port``, seed lists,
the leader an ``etcd://`` address resolves to) and every redirect and failover uses the
same TLS.  (The etcd lookup itself is another hop, with its own settings:
``_discovery.EtcdCredentials``.)

Environment (read by ``TLS.from_env``, the default of ``Agent`` and ``Client``)::

    AGENTMESH_TLS_CA           PEM file of the CA that signed the coordinator's certificate
    AGENTMESH_TLS_CLIENT_CERT  a client certificate (PEM) for mutual TLS ...
    AGENTMESH_TLS_CLIENT_KEY   ... and its private key (PEM): both or neither
    AGENTMESH_TLS_SERVER_NAME  the name to check the coordinator's certificate against
    AGENTMESH_TLS=1            TLS with the system's root CAs (when none of the above is set)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

TLS_ENV = "AGENTMESH_TLS"
CA_ENV = "AGENTMESH_TLS_CA"
CLIENT_CERT_ENV = "AGENTMESH_TLS_CLIENT_CERT"
CLIENT_KEY_ENV = "AGENTMESH_TLS_CLIENT_KEY"
SERVER_NAME_ENV = "AGENTMESH_TLS_SERVER_NAME"
SERVER_NAME_OPTION = "grpc.ssl_target_name_override"

# Each setting's names in code, on the command line and in the environment (messages).
_WHERE = {
    "ca": f"TLS.ca, --tls-ca, {CA_ENV}",
    "cert": f"TLS.cert, --tls-client-cert, {CLIENT_CERT_ENV}",
    "key": f"TLS.key, --tls-client-key, {CLIENT_KEY_ENV}",
    "server_name": f"TLS.server_name, --tls-server-name, {SERVER_NAME_ENV}",
}
_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class TLS:
    """How to reach a coordinator over TLS: ``TLS(ca="ca.pem")``.

    ``ca`` is the PEM file of the CA that signed the coordinator's certificate (None:
    the system's root CAs); ``cert`` and ``key`` a client certificate and its key for
    mutual TLS (both or neither: ValueError otherwise); ``server_name`` overrides the
    name checked against the coordinator's certificate (default: the host of the
    address dialled).  The files are read each time a channel is opened (an agent opens
    one per session, a client one per replica it moves to), so renewed certificates are
    picked up from the next one on.
    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str = ""

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise ValueError(
                f"TLS: a client certificate needs its key: cert ({_WHERE['cert']}) and "
                f"key ({_WHERE['key']}) go together"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TLS | None:
        """The settings in ``AGENTMESH_TLS_CA``, ``AGENTMESH_TLS_CLIENT_CERT``,
        ``AGENTMESH_TLS_CLIENT_KEY`` and ``AGENTMESH_TLS_SERVER_NAME`` of ``environ``
        (default ``os.environ``; an empty value counts as unset); None (no TLS) when
        none of them is set.  ``AGENTMESH_TLS=1`` (or true/yes/on) alone means TLS with
        the system's root CAs; ``AGENTMESH_TLS=0`` (false/no/off) turns TLS off whatever
        the others say.  ValueError for another ``AGENTMESH_TLS`` value, or for a client
        certificate without its key (or the other way round)."""
        env = os.environ if environ is None else environ
        switch = env.get(TLS_ENV, "").strip().lower()
        if switch and switch not in _ON | _OFF:
            raise ValueError(f"{TLS_ENV}={env[TLS_ENV]!r}: expected 1 or 0 (true/false)")
        names = (CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV, SERVER_NAME_ENV)
        ca, cert, key, server_name = (env.get(n, "").strip() for n in names)
        if switch in _OFF or not (switch or ca or cert or key or server_name):
            return None
        return cls(ca or None, cert or None, key or None, server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        """The gRPC channel credentials, from the files as they are now.  Raises
        ValueError naming the file and the setting when one cannot be read."""
        return grpc.ssl_channel_credentials(
            root_certificates=self._read("ca"),
            private_key=self._read("key"),
            certificate_chain=self._read("cert"),
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        """The gRPC channel options these settings add (the server name override)."""
        return [(SERVER_NAME_OPTION, self.server_name)] if self.server_name else []

    def _read(self, field: str) -> bytes | None:
        path = getattr(self, field)
        if not path:
            return None
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ValueError(
                f"TLS {field} ({_WHERE[field]}): cannot read {str(path)!r}: {e.strerror or e}"
            ) from None
        if b"-----BEGIN " not in data:
            raise ValueError(f"TLS {field} ({_WHERE[field]}): {str(path)!r} is not a PEM file")
        return data


def open_channel(
    address: str, tls: TLS | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """A channel to the coordinator at ``address``: over TLS when ``tls`` is given, in
    plain text when it is None.  Raises ValueError when a TLS file cannot be read."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(
        address, tls.credentials(), options=[*options, *tls.channel_options()]
    )


def tls_hint(details: str) -> str | None:
    """What to check, for a connection that failed as gRPC's ``details`` say (None when
    they point at neither TLS nor a connection closed at once).  gRPC reports a failed
    handshake as e.g. ``failed to connect to all addresses; last error: UNKNOWN:
    ipv4:...: Tls handshake failed (TSI_PROTOCOL_FAILURE): ...CERTIFICATE_VERIFY_FAILED``."""
    text = details.lower()
    for needles, hint in _HINTS:
        if any(n in text for n in needles):
            return hint
    return None


_FAILED = "the TLS handshake failed: "
# (what gRPC's details contain, what to tell the user), the first match wins.
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("wrong_version_number",),
        _FAILED + "the coordinator does not seem to serve TLS (check the address, or "
        "connect without TLS)",
    ),
    (
        ("hostname verification", "no match found for server name"),
        _FAILED + "the coordinator's certificate does not name the host dialled (check "
        f"the address, or set the server name: {_WHERE['server_name']})",
    ),
    (
        ("certificate_verify_failed", "unable to get local issuer", "self signed", "self-signed"),
        _FAILED + "the coordinator's certificate is not signed by the CA in use (check "
        f"the CA: {_WHERE['ca']}; without one the system's root CAs are used)",
    ),
    (
        ("alert_bad_certificate", "alert_certificate", "alert_unknown_ca"),
        _FAILED + "the coordinator refused this client's certificate, or wants one "
        f"({_WHERE['cert']}; {_WHERE['key']})",
    ),
    (
        ("handshake", "ssl", "certificate"),
        _FAILED + f"check the CA ({_WHERE['ca']}), the server name "
        f"({_WHERE['server_name']}) and that the coordinator serves TLS",
    ),
    (
        ("socket closed",),
        "the coordinator closed the connection at once: if it serves TLS, connect with TLS "
        f"({_WHERE['ca']}); if it requires a client certificate, give one "
        f"({_WHERE['cert']}; {_WHERE['key']})",
    ),
)
