"""TLS and bearer-token auth for the dispatch benchmark's ``coord+auth`` and ``e2e+auth`` runs.

``make_secure_setup(directory)`` writes, into a (temporary) directory, a local CA and a
server certificate for localhost and 127.0.0.1 (``agentmesh.cli._certs.make_certs``) and a
tokens file with two random bearer tokens: one of role ``agent`` granted the benchmark's
capability, for the agents, and one of role ``operator``, for the e2e client. It returns a
``SecureSetup``: plain strings only, so it pickles into the spawned child processes, which
build their ``agent_sdk.TLS`` from it (``agent_tls()``, ``client_tls()``). The coordinator
gets the files through ``settings_overrides()``.

Only server TLS: neither the agents nor the client present a certificate; each
authenticates with its token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_sdk import TLS

AGENT_PRINCIPAL = "bench-agent"
CLIENT_PRINCIPAL = "bench-client"


@dataclass(frozen=True)
class SecureSetup:
    """The files and tokens of one secure run (picklable: paths are strings).

    ``ca`` is the CA that signed ``server_cert``; ``server_key`` is that certificate's
    key; ``tokens_file`` is the coordinator's ``auth_tokens_file``. ``agent_token`` is a
    principal of role ``agent`` allowed the benchmark capability, ``client_token`` one of
    role ``operator`` (may assign and read tasks).
    """

    ca: str
    server_cert: str
    server_key: str
    tokens_file: str
    agent_token: str = field(repr=False)  # never shown, like the SDK's tokens
    client_token: str = field(repr=False)

    def settings_overrides(self) -> dict[str, str]:
        """The ``load_settings`` overrides that turn on TLS on the listener and auth."""
        return {
            "tls_cert": self.server_cert,
            "tls_key": self.server_key,
            "auth_tokens_file": self.tokens_file,
        }

    def agent_tls(self) -> TLS:
        """The agents' TLS settings: verify the coordinator against the benchmark's CA."""
        from agent_sdk import TLS

        return TLS(ca=self.ca)

    def client_tls(self) -> TLS:
        """The e2e client's TLS settings: verify the coordinator against the benchmark's CA."""
        from agent_sdk import TLS

        return TLS(ca=self.ca)


def tokens_yaml(agent_token: str, client_token: str, capability: str) -> str:
    """The tokens file's text: the two principals, each identified by its token's digest."""
    from coordinator.auth import token_digest

    return (
        "tokens:\n"
        f"  - name: {AGENT_PRINCIPAL}\n"
        f"    sha256: {token_digest(agent_token)}\n"
        "    roles: [agent]\n"
        f"    capabilities: [{capability}]\n"
        f"  - name: {CLIENT_PRINCIPAL}\n"
        f"    sha256: {token_digest(client_token)}\n"
        "    roles: [operator]\n"
    )


def make_secure_setup(directory: Path, capability: str = "echo") -> SecureSetup:
    """Write certificates (in ``directory/pki``) and a tokens file (``directory/tokens.yaml``,
    mode 0600) for a run whose agents serve ``capability``; return what the coordinator and
    the child processes need. ``directory`` must exist (a ``tempfile.TemporaryDirectory``:
    removing it is the caller's job)."""
    from agentmesh.cli._certs import make_certs

    files = make_certs(directory / "pki")
    agent_token = secrets.token_urlsafe(32)
    client_token = secrets.token_urlsafe(32)
    tokens = directory / "tokens.yaml"
    tokens.write_text(tokens_yaml(agent_token, client_token, capability), encoding="utf-8")
    tokens.chmod(0o600)
    return SecureSetup(
        ca=str(files["ca"]),
        server_cert=str(files["server"]),
        server_key=str(files["server_key"]),
        tokens_file=str(tokens),
        agent_token=agent_token,
        client_token=client_token,
    )
