"""``agentmesh dev certs``: a local CA, a server certificate and client certificates, for
tests and demos of TLS and mutual TLS (never for production: the CA key sits beside the
certificates it signs, unencrypted).

Every key is EC P-256.  The server certificate names each host as a DNS or IP
subjectAltName (what gRPC checks); a client certificate has ``CN=NAME`` and the URI
SAN ``spiffe://agentmesh/NAME`` (an mTLS identity the coordinator can read).  Keys are
written mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPIFFE_TRUST_DOMAIN = "agentmesh"
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
# Client names become file names and certificate CNs: keep them to one plain word, and
# away from the names the CA and the server files take.
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED = frozenset({"ca", "server"})
# Issued a little in the past: a peer whose clock is slightly behind still accepts them.
_BACKDATE = timedelta(minutes=5)


def spiffe_id(name: str) -> str:
    """The SPIFFE ID a client certificate made for ``name`` carries."""
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/{name}"


def make_certs(
    directory: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    clients: Sequence[str] = (),
    days: int = 30,
    *,
    force: bool = False,
) -> dict[str, Path]:
    """Write a CA (``ca.pem``, ``ca-key.pem``), a server certificate for ``hosts``
    (``server.pem``, ``server-key.pem``) and one client certificate per name in
    ``clients`` (``NAME.pem``, ``NAME-key.pem``) into ``directory`` (created if need
    be), each valid for ``days``.  Returns the paths by role: ``ca``, ``ca_key``,
    ``server``, ``server_key``, ``client:NAME``, ``client_key:NAME``.

    Raises ValueError for no hosts, a malformed host or client name, a repeated client
    or ``days < 1``; FileExistsError (naming them) when any of the files exists, unless
    ``force`` (then they are all replaced).  Nothing is written when it raises.
    """
    names = _check(hosts, clients, days)
    directory = Path(directory)
    paths = {"ca": "ca.pem", "ca_key": "ca-key.pem", "server": "server.pem"}
    paths["server_key"] = "server-key.pem"
    for name in names:
        paths[f"client:{name}"] = f"{name}.pem"
        paths[f"client_key:{name}"] = f"{name}-key.pem"
    files = {role: directory / file for role, file in paths.items()}
    existing = [str(p) for p in files.values() if p.exists() or p.is_symlink()]
    if existing and not force:
        raise FileExistsError(f"not overwriting what exists: {', '.join(existing)}")

    now = datetime.now(UTC) - _BACKDATE
    until = now + _BACKDATE + timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AgentMesh (dev)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "AgentMesh dev CA"),
        ]
    )
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    # (certificate role, key role) -> what to write there
    issued = {("ca", "ca_key"): (ca, ca_key)}

    def leaf(
        cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            _builder(subject, ca.subject, key.public_key(), now, until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    issued["server", "server_key"] = leaf(
        hosts[0], [_san(h) for h in hosts], ExtendedKeyUsageOID.SERVER_AUTH
    )
    for name in names:
        issued[f"client:{name}", f"client_key:{name}"] = leaf(
            name,
            [x509.UniformResourceIdentifier(spiffe_id(name))],
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )

    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    for (cert_role, key_role), (cert, key) in issued.items():
        _write(files[key_role], _key_pem(key), 0o600)
        _write(files[cert_role], cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _check(hosts: Sequence[str], clients: Sequence[str], days: int) -> list[str]:
    """The client names, once the arguments are known to be usable (ValueError if not)."""
    if isinstance(hosts, str) or isinstance(clients, str):
        raise ValueError("hosts and clients are sequences of names, not one string")
    if not hosts:
        raise ValueError("the server certificate needs at least one host")
    for h in hosts:
        _san(h)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    names: list[str] = []
    for name in clients:
        if not _CLIENT_NAME.fullmatch(name) or name in _RESERVED or name.endswith("-key"):
            raise ValueError(
                f"client name {name!r}: use letters, digits, '.', '_' and '-' (at most 64, "
                "not 'ca', 'server' or a name ending in '-key'): it names its files"
            )
        if name in names:
            raise ValueError(f"client {name!r} is given twice")
        names.append(name)
    return names


def _san(host: str) -> x509.GeneralName:
    """A host as the subjectAltName gRPC checks: an IP address, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?", host):
        raise ValueError(f"host {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the first byte on (a key is never readable by
    others, not even for a moment), replacing what a --force run finds there."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # the umask may have narrowed it
        f.write(data)
