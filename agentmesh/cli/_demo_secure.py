"""``agentmesh demo --secure``: the same demo with TLS, mutual TLS and auth on.

Everything is made fresh in the run's directory (``pki/``, ``tokens.yaml``,
``audit.jsonl``): a local CA and certificates (``agentmesh dev certs``), one client
certificate per agent whose SPIFFE ID the tokens file names as a principal of role
``agent`` granted exactly that agent's capabilities, and a bearer token of role ``admin``
for the demo's own client (which defines the workflows and starts one). A ``viewer``
token is made too, and the demo shows its ``StopWorkflow`` refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent_sdk import TLS
from agent_sdk._auth import TOKEN_ENV
from agent_sdk._tls import CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV
from agentmesh.cli._certs import make_certs, spiffe_id
from coordinator.auth import token_digest

CLIENT = "demo"  # the demo client's certificate (its principal comes from its token)


@dataclass
class Secure:
    """What the secure demo's processes are given."""

    tls: TLS  # the demo client's
    token: str  # the demo client's bearer token (role admin)
    viewer_token: str  # a viewer's, to show a refusal
    serve_args: list[str] = field(default_factory=list)
    agent_env: dict[str, dict[str, str]] = field(default_factory=dict)
    audit_log: Path = Path()

    def describe(self) -> str:
        """One paragraph for the demo's output."""
        return (
            "Secure mode: mutual TLS (a local CA in pki/), each agent authenticated by its "
            "certificate's SPIFFE ID and allowed only its own capabilities, the demo's "
            f"client by a bearer token of role admin; audit log {self.audit_log}."
        )


def _tokens_yaml(agents: Mapping[str, Iterable[str]], admin: str, viewer: str) -> str:
    lines = ["tokens:"]
    for name, capabilities in agents.items():
        lines += [
            f"  - name: {name}",
            f"    spiffe: {spiffe_id(name)}",
            "    roles: [agent]",
            f"    capabilities: [{', '.join(capabilities)}]",
        ]
    lines += [
        "  - name: demo-admin",
        f"    sha256: {token_digest(admin)}",
        "    roles: [admin]",
        "  - name: demo-viewer",
        f"    sha256: {token_digest(viewer)}",
        "    roles: [viewer]",
    ]
    return "\n".join(lines) + "\n"


def prepare(ws: Path, agents: Mapping[str, Iterable[str]]) -> Secure:
    """Certificates, the tokens file and the settings for a secure run in ``ws``."""
    files = make_certs(ws / "pki", clients=[*agents, CLIENT])
    admin, viewer = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tokens = ws / "tokens.yaml"
    tokens.write_text(_tokens_yaml(agents, admin, viewer))
    tokens.chmod(0o600)
    audit = ws / "audit.jsonl"
    secure = Secure(
        tls=TLS(ca=files["ca"], cert=files[f"client:{CLIENT}"], key=files[f"client_key:{CLIENT}"]),
        token=admin,
        viewer_token=viewer,
        audit_log=audit,
    )
    secure.serve_args = [
        "--tls-cert", str(files["server"]),
        "--tls-key", str(files["server_key"]),
        "--tls-client-ca", str(files["ca"]),
        "--auth-tokens-file", str(tokens),
        "--audit-log", str(audit),
    ]  # fmt: skip
    for name in agents:
        secure.agent_env[name] = {
            CA_ENV: str(files["ca"]),
            CLIENT_CERT_ENV: str(files[f"client:{name}"]),
            CLIENT_KEY_ENV: str(files[f"client_key:{name}"]),
            TOKEN_ENV: "",  # the certificate is the credential
        }
    return secure


async def show_refusal(address: str, secure: Secure, say: Callable[[str], None]) -> None:
    """Show auth at work: a viewer's StopWorkflow refused, and what the audit log holds."""
    from agent_sdk import Client, PermissionDeniedError

    async with Client(address, tls=secure.tls, token=secure.viewer_token, timeout=10) as viewer:
        executions = await viewer.list_executions()
        target = executions[0].id if executions else "none"
        try:
            await viewer.stop_workflow(target)
            say("  !! a viewer could stop an execution: authorization is not enforced")
        except PermissionDeniedError as e:
            say(f"\nA viewer's StopWorkflow was refused: PERMISSION_DENIED: {e.message}")
    lines = secure.audit_log.read_text().splitlines() if secure.audit_log.exists() else []
    say(f"The audit log {secure.audit_log} holds {len(lines)} records (writes and refusals).")
