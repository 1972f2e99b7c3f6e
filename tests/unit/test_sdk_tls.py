"""``agent_sdk.TLS``: the settings from arguments and ``AGENTMESH_TLS_*``, the files read
when a connection is made (with errors that name the file and the setting), the server
name override, and the hint a failed handshake's error carries.  No coordinator: the
handshakes themselves are in tests/integration/test_tls.py."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from agent_sdk import TLS, Agent, Client, RpcError, UnavailableError
from agent_sdk._errors import rpc_error
from agent_sdk._tls import open_channel
from agentmesh.cli._certs import make_certs

CA, CERT, KEY, NAME = (
    "AGENTMESH_TLS_CA",
    "AGENTMESH_TLS_CLIENT_CERT",
    "AGENTMESH_TLS_CLIENT_KEY",
    "AGENTMESH_TLS_SERVER_NAME",
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("pki"), clients=["ops"])


@pytest.fixture(autouse=True)
def no_tls_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent and Client read os.environ by default: start each test without TLS in it."""
    for name in ("AGENTMESH_TLS", CA, CERT, KEY, NAME):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"AGENTMESH_COORDINATOR": "h:1", "AGENTMESH_TLS_CERT": "server.pem"}, None),
        ({CA: "", NAME: "  "}, None),  # empty counts as unset
        ({"AGENTMESH_TLS": "1"}, TLS()),
        ({"AGENTMESH_TLS": "true"}, TLS()),
        ({"AGENTMESH_TLS": "0"}, None),
        ({"AGENTMESH_TLS": "off", CA: "ca.pem"}, None),  # the switch turns it off
        ({CA: "ca.pem"}, TLS(ca="ca.pem")),
        ({"AGENTMESH_TLS": "1", CA: "ca.pem"}, TLS(ca="ca.pem")),
        ({NAME: "coordinator.local"}, TLS(server_name="coordinator.local")),
        ({CERT: "c.pem", KEY: "k.pem"}, TLS(cert="c.pem", key="k.pem")),
        (
            {CA: "ca.pem", CERT: "c.pem", KEY: "k.pem", NAME: "n"},
            TLS("ca.pem", "c.pem", "k.pem", "n"),
        ),
    ],
)
def test_from_env(environ: dict[str, str], expected: TLS | None) -> None:
    assert TLS.from_env(environ) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({CERT: "c.pem"}, "AGENTMESH_TLS_CLIENT_KEY"),
        ({KEY: "k.pem"}, "AGENTMESH_TLS_CLIENT_CERT"),
        ({"AGENTMESH_TLS": "maybe"}, "AGENTMESH_TLS='maybe'"),
    ],
)
def test_from_env_refuses_half_given_settings(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TLS.from_env(environ)


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TLS.from_env() is None
    monkeypatch.setenv(CA, "/etc/ca.pem")
    assert TLS.from_env() == TLS(ca="/etc/ca.pem")


# ------------------------------------------------------------ the settings


@pytest.mark.parametrize("half", [{"cert": "c.pem"}, {"key": "k.pem"}])
def test_a_client_certificate_needs_its_key(half: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="go together"):
        TLS(**half)


def test_credentials_read_the_files(pki: dict[str, Path]) -> None:
    assert isinstance(TLS().credentials(), grpc.ChannelCredentials)  # the system roots
    mutual = TLS(ca=pki["ca"], cert=str(pki["client:ops"]), key=pki["client_key:ops"])
    assert isinstance(mutual.credentials(), grpc.ChannelCredentials)


@pytest.mark.parametrize(
    ("field", "setting"),
    [("ca", "AGENTMESH_TLS_CA"), ("cert", "--tls-client-cert"), ("key", "TLS.key")],
)
def test_a_missing_file_is_named_with_its_setting(
    pki: dict[str, Path], tmp_path: Path, field: str, setting: str
) -> None:
    files: dict[str, Path] = {"ca": pki["ca"], "cert": pki["client:ops"]}
    files["key"] = pki["client_key:ops"]
    files[field] = tmp_path / "gone.pem"
    tls = TLS(ca=files["ca"], cert=files["cert"], key=files["key"])
    with pytest.raises(ValueError) as missing:
        tls.credentials()
    text = str(missing.value)
    assert str(tmp_path / "gone.pem") in text and setting in text, text
    assert "No such file or directory" in text, text


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.der").write_bytes(b"\x30\x82\x01\x0a")
    with pytest.raises(ValueError, match=r"TLS ca .*ca\.der' is not a PEM file"):
        TLS(ca=tmp_path / "ca.der").credentials()


def test_the_files_are_read_at_each_connection(pki: dict[str, Path], tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki["ca"].read_bytes())
    tls = TLS(ca=ca)
    tls.credentials()
    ca.unlink()
    with pytest.raises(ValueError, match="cannot read"):
        tls.credentials()


def test_channel_options_carry_the_server_name_override() -> None:
    assert TLS().channel_options() == []
    assert TLS(server_name="coordinator.local").channel_options() == [
        ("grpc.ssl_target_name_override", "coordinator.local")
    ]


async def test_open_channel_is_plain_without_tls_and_checks_files_with_it(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    for tls in (None, TLS(ca=pki["ca"], server_name="localhost")):
        channel = open_channel("127.0.0.1:1", tls, [("grpc.max_send_message_length", 1024)])
        await channel.close()
    with pytest.raises(ValueError, match=r"gone\.pem"):
        open_channel("127.0.0.1:1", TLS(ca=tmp_path / "gone.pem"))


# ------------------------------------------------------ Agent and Client


async def test_agent_and_client_take_tls_or_read_the_environment(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    given = TLS(ca=pki["ca"])
    client = Client("127.0.0.1:1", tls=given)
    await client.close()
    assert client.tls is given
    assert Agent("a", "127.0.0.1:1", tls=given).tls is given
    assert Agent("a", "127.0.0.1:1").tls is None

    monkeypatch.setenv(CA, str(pki["ca"]))
    client = Client("127.0.0.1:1")
    await client.close()
    assert client.tls == TLS(ca=str(pki["ca"]))
    assert Agent("a", "127.0.0.1:1").tls == TLS(ca=str(pki["ca"]))


async def test_agent_and_client_refuse_unreadable_files_at_once(tmp_path: Path) -> None:
    gone = TLS(ca=tmp_path / "gone.pem")
    with pytest.raises(ValueError, match=r"gone\.pem"):
        Agent("a", "127.0.0.1:1", tls=gone)
    with pytest.raises(ValueError, match=r"gone\.pem"):
        Client("127.0.0.1:1", tls=gone)
    # etcd:// dials no coordinator before the first call: it is checked all the same
    with pytest.raises(ValueError, match=r"gone\.pem"):
        Client("etcd://127.0.0.1:2379", tls=gone)


# ------------------------------------------------------------- error hints

HANDSHAKE = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4: Tls "
    "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL "
    "routines:OPENSSL_internal:{reason}"
)


def failed(details: str, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> RpcError:
    return rpc_error(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details))


@pytest.mark.parametrize(
    ("details", "says"),
    [
        (HANDSHAKE.format(reason="CERTIFICATE_VERIFY_FAILED"), "not signed by the CA in use"),
        (HANDSHAKE.format(reason="WRONG_VERSION_NUMBER"), "does not seem to serve TLS"),
        (
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4: "
            "Custom verification check failed with error: UNAUTHENTICATED: Hostname "
            "Verification Check failed.",
            "--tls-server-name",
        ),
        (HANDSHAKE.format(reason="TLSV1_ALERT_UNKNOWN_CA"), "client's certificate"),
        (HANDSHAKE.format(reason="SOMETHING_NEW"), "check the CA"),
    ],
)
def test_a_failed_handshake_says_so_and_what_to_check(details: str, says: str) -> None:
    error = failed(details)
    assert isinstance(error, UnavailableError)
    assert error.message.startswith("the TLS handshake failed: "), error.message
    assert says in error.message and error.message.endswith(f"; gRPC: {details}")


def test_a_connection_closed_at_once_suggests_tls() -> None:
    error = failed("failed to connect to all addresses; last error: UNAVAILABLE: x: Socket closed")
    assert "if it serves TLS" in error.message and "AGENTMESH_TLS_CA" in error.message


@pytest.mark.parametrize(
    ("details", "code"),
    [
        ("failed to connect to all addresses; last error: Connection refused", None),
        ("the certificate field is invalid", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_other_errors_keep_their_message(details: str, code: grpc.StatusCode | None) -> None:
    assert failed(details, code or grpc.StatusCode.UNAVAILABLE).message == details
