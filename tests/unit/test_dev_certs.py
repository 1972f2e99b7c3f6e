"""``make_certs`` (``agentmesh dev certs``): what it writes is a CA, a server certificate
and client certificates that a strict X.509 verifier accepts for the names asked, with
private keys only their owner can read, and nothing is overwritten unless forced."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from agentmesh.cli._certs import make_certs


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(c: x509.Certificate) -> x509.SubjectAlternativeName:
    return c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    return make_certs(tmp_path / "pki", clients=["ops", "bot"], days=7)


def test_it_writes_the_files_it_names(pki: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path / "pki"
    assert pki == {
        "ca": d / "ca.pem",
        "ca_key": d / "ca-key.pem",
        "server": d / "server.pem",
        "server_key": d / "server-key.pem",
        "client:ops": d / "ops.pem",
        "client_key:ops": d / "ops-key.pem",
        "client:bot": d / "bot.pem",
        "client_key:bot": d / "bot-key.pem",
    }
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in pki.values())


def test_the_server_certificate_verifies_against_the_ca_for_each_host(
    pki: dict[str, Path],
) -> None:
    ca, server = cert(pki["ca"]), cert(pki["server"])
    server.verify_directly_issued_by(ca)  # the CA's signature; raises if not
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert sans(server).get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans(server).get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]

    policy = PolicyBuilder().store(Store([ca]))
    for name in (
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ):
        chain = policy.build_server_verifier(name).verify(server, [])
        assert chain[-1] == ca
    with pytest.raises(VerificationError):
        policy.build_server_verifier(x509.DNSName("example.com")).verify(server, [])


def test_a_client_certificate_carries_its_name_and_spiffe_id(pki: dict[str, Path]) -> None:
    ca, ops = cert(pki["ca"]), cert(pki["client:ops"])
    ops.verify_directly_issued_by(ca)
    assert ops.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ops"
    assert sans(ops).get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://agentmesh/ops"
    ]
    usage = ops.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    verified = PolicyBuilder().store(Store([ca])).build_client_verifier().verify(ops, [])
    assert verified.chain[-1] == ca

    other = make_certs(pki["ca"].parent.parent / "other")
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([cert(other["ca"])])).build_client_verifier().verify(ops, [])


def test_keys_are_p256_match_their_certificates_and_only_the_owner_reads_them(
    pki: dict[str, Path],
) -> None:
    for role in ("ca", "server", "client:ops", "client:bot"):
        key_role = role.replace("client:", "client_key:") if ":" in role else f"{role}_key"
        path = pki[key_role]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
        assert key.public_key() == cert(pki[role]).public_key()
        assert stat.S_IMODE(pki[role].stat().st_mode) == 0o644


def test_they_are_valid_for_the_days_asked(pki: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    for role in ("ca", "server", "client:ops"):
        c = cert(pki[role])
        assert c.not_valid_before_utc <= now
        left = c.not_valid_after_utc - now
        assert timedelta(days=7) - timedelta(minutes=1) < left <= timedelta(days=7)


def test_it_refuses_to_overwrite_unless_forced(pki: dict[str, Path]) -> None:
    directory = pki["ca"].parent
    before = {p: p.read_bytes() for p in pki.values()}
    with pytest.raises(FileExistsError, match="not overwriting") as refused:
        make_certs(directory, clients=["ops"])
    assert str(pki["ca"]) in str(refused.value) and str(pki["client:ops"]) in str(refused.value)
    assert {p: p.read_bytes() for p in pki.values()} == before, "nothing was written"
    # one new client, the rest existing: still refused as a whole
    with pytest.raises(FileExistsError):
        make_certs(directory, clients=["new"])
    assert not (directory / "new.pem").exists()

    again = make_certs(directory, clients=["ops"], force=True)
    assert again["ca"].read_bytes() != before[pki["ca"]], "a new CA"
    assert stat.S_IMODE(again["ca_key"].stat().st_mode) == 0o600
    cert(again["client:ops"]).verify_directly_issued_by(cert(again["ca"]))


def test_hosts_name_dns_and_ip_subject_alt_names(tmp_path: Path) -> None:
    files = make_certs(tmp_path, hosts=["coordinator.local", "*.mesh.test", "::1", "10.1.2.3"])
    server = cert(files["server"])
    assert sans(server).get_values_for_type(x509.DNSName) == ["coordinator.local", "*.mesh.test"]
    assert sans(server).get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.1.2.3"),
    ]
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "coordinator.local"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hosts": []}, "at least one host"),
        ({"hosts": ["bad host"]}, "neither an IP address nor a DNS name"),
        ({"hosts": "localhost"}, "not one string"),
        ({"clients": ["ca"]}, "client name 'ca'"),
        ({"clients": ["ops-key"]}, "client name 'ops-key'"),
        ({"clients": ["../up"]}, "client name '../up'"),
        ({"clients": ["ops", "ops"]}, "given twice"),
        ({"days": 0}, "days must be at least 1"),
    ],
)
def test_bad_arguments_raise_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_certs(tmp_path / "pki", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "pki").exists()
