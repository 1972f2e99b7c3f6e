"""The commands of the ``agentmesh`` command line beside the main tree (``_parser``):
the offline ones (auth, dev, demo) and the watching ones (events, metrics, top)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

DEMO_WORKFLOWS = ("project_setup", "implement_feature", "data_processing")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _ago(text: str) -> timedelta:
    """An argparse type: a span such as ``90s``, ``15m``, ``2h`` or ``7d``."""
    unit = _UNITS.get(text[-1:])
    try:
        amount = float(text[:-1]) if unit else float("nan")
    except ValueError:
        amount = float("nan")
    if unit is None or not amount >= 0 or amount * unit > 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span such as 90s, 15m, 2h or 7d")
    return timedelta(seconds=amount * unit)


def _ranged(low: int, high: int) -> Any:
    """An argparse type: an integer in [low, high] (argparse names the flag on error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _auth_commands(auth: argparse.ArgumentParser) -> None:
    asub = auth.add_subparsers(dest="auth_command", required=True, metavar="COMMAND")
    new = asub.add_parser(
        "new-token",
        help="make a random bearer token and print the tokens-file entry for it",
        description="Prints the token once (give it to the principal; it is not stored "
        "anywhere) and the YAML entry, with its SHA-256, to append to auth_tokens_file.",
    )
    new.add_argument("name", help="the principal's name")
    new.add_argument(
        "--role", action="append", required=True, help="agent, viewer, operator or admin"
    )
    new.add_argument("--namespace", action="append", default=[], help="default: default; * for all")
    new.add_argument(
        "--capability", action="append", default=[], help="for role agent: what it may serve"
    )
    new.add_argument("--expires", default="", help="ISO date or time it stops working")
    new.add_argument(
        "--append",
        default="",
        metavar="FILE",
        help="append the entry to this tokens file (made if missing) and print only the token",
    )
    hashed = asub.add_parser(
        "hash-token",
        help="print the SHA-256 of a token (read from stdin when not given)",
    )
    hashed.add_argument("token", nargs="?", default=None)
    asub.add_parser(
        "new-history-key",
        help="print a new key for history_key_secret (encrypts secret values at rest)",
        description="Prints a random Fernet key. Store it as the secret history_key_secret "
        "names (default history-key: a file history-key in secrets_dir, or "
        "$AGENTMESH_SECRET_HISTORY_KEY); keep it, or the sealed values cannot be read back.",
    )
    check = asub.add_parser(
        "check",
        help="explain whether PRINCIPAL may call METHOD (exit 0: allowed, 1: denied)",
        description="Reads the tokens and policy files the coordinator would (--config, "
        "the environment, or the flags) and prints the decision and why.",
    )
    check.add_argument("principal", help="a name in the tokens file (or any label with --role)")
    check.add_argument(
        "method", help="e.g. StopWorkflow, ExecutionService/StopWorkflow or its full path"
    )
    check.add_argument("--namespace", default="default")
    check.add_argument(
        "--role", action="append", default=[], help="check these roles instead of a file entry"
    )
    check.add_argument("--config", help="the coordinator's config file")
    check.add_argument("--tokens-file", default=None, help="default: auth_tokens_file")
    check.add_argument("--policy-file", default=None, help="default: auth_policy_file")


def _dev_commands(dev: argparse.ArgumentParser) -> None:
    dsub = dev.add_subparsers(dest="dev_command", required=True, metavar="COMMAND")
    certs = dsub.add_parser(
        "certs",
        help="write a local CA, a server and client certificates (for tests and demos)",
        description="Writes DIR/ca.pem and ca-key.pem (a new CA), server.pem and "
        "server-key.pem (for --hosts), and NAME.pem and NAME-key.pem for each --client "
        "(CN=NAME, URI SAN spiffe://agentmesh/NAME); EC P-256 keys, mode 0600. Then "
        "prints the flags and environment that use them. Not for production: the CA key "
        "lies beside what it signs.",
    )
    certs.add_argument("directory", metavar="DIR")
    certs.add_argument(
        "--hosts",
        action="append",
        default=[],
        metavar="HOST,...",
        help="DNS names and IP addresses the server certificate is for (comma-separated "
        "or repeated; default localhost,127.0.0.1)",
    )
    certs.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="NAME",
        help="also a client certificate for NAME, for mutual TLS (repeat for more)",
    )
    certs.add_argument(
        "--days", type=_ranged(1, 3650), default=30, help="valid this long (default 30)"
    )
    certs.add_argument("--force", action="store_true", help="replace files that exist")


def _demo_command(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--workflow", default="project_setup", choices=DEMO_WORKFLOWS)
    demo.add_argument("--workspace", default="", help="default ./agentmesh-demo")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the coordinator and agents running afterwards",
    )
    demo.add_argument(
        "--kill-agent",
        default="",
        metavar="NAME",
        help="SIGKILL this agent during its first task and restart it",
    )
    demo.add_argument(
        "--cluster",
        action="store_true",
        help="three coordinator replicas in cluster mode on a real etcd (needs an etcd binary)",
    )
    demo.add_argument(
        "--secure",
        action="store_true",
        help="mutual TLS, agents authenticated by certificate, the client by token, "
        "an audit log: all made fresh for the run",
    )
    demo.add_argument(
        "--kill-leader",
        action="store_true",
        help="cluster mode: SIGKILL the leader mid-workflow (implies --cluster)",
    )


def _watch_commands(command: Any) -> None:
    """``events``, ``metrics`` and ``top`` (``command`` makes a subcommand)."""
    events = command(
        "events",
        "the mesh's events: those in the log now, or (--follow) as they happen",
    )
    events.add_argument(
        "--follow", "-f", action="store_true", help="keep following (resumes after drops)"
    )
    events.add_argument("--execution", default="", help="only this execution's (and children's)")
    events.add_argument("--workflow", default="", help="only this workflow's")
    events.add_argument("--agent", default="", help="only this agent's")
    events.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only these types; a trailing * matches a prefix ('step.*'); repeatable",
    )
    events.add_argument(
        "--from",
        dest="from_sequence",
        type=_ranged(0, 2**63 - 1),
        default=None,
        metavar="SEQ",
        help="after this sequence, 0 for the start of the log (default: the start; "
        "with --follow: now)",
    )
    events.add_argument(
        "--until",
        default="",
        metavar="TYPE",
        help="stop after the first event of this type (a trailing * matches a prefix)",
    )
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    metrics = command("metrics", "the system's metrics, or a workflow's")
    metrics.add_argument("workflow", nargs="?", default="")
    metrics.add_argument("--json", action="store_true")
    top = command("top", "a live view of agents, queues, throughput and running executions")
    top.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="refresh period"
    )
    top.add_argument("--once", action="store_true", help="print one screen and exit")
