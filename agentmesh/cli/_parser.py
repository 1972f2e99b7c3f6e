"""The ``agentmesh`` command line: every command, flag and help text."""

from __future__ import annotations

import argparse

from agent_sdk._types import STATUSES
from agentmesh import __version__
from agentmesh.cli._parser_offline import (
    _ago,
    _auth_commands,
    _demo_command,
    _dev_commands,
    _ranged,
    _watch_commands,
)

TASK_STATUSES = ("pending", "assigned", "running", "completed", "failed", "cancelled")


class UsageError(Exception):
    """Bad usage or input on the command line (exit status 2)."""


UINT32 = _ranged(0, 2**32 - 1)
INT32 = _ranged(-(2**31), 2**31 - 1)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_settings_flags(p: argparse.ArgumentParser, cluster_only: bool = False) -> None:
    """The coordinator's settings as flags (all of them, or what reaching etcd takes)."""
    from coordinator.config import Settings  # pydantic: a fifth of start-up; serve needs it

    p.add_argument("--config", help="TOML, YAML or JSON file (camelCase or snake_case keys)")
    for name, info in Settings.model_fields.items():
        if cluster_only and not (name.startswith("etcd_") or name == "log_level"):
            continue
        # --store is the short name the cluster docs use for --state-persistence.
        aliases = ["--store"] if name == "state_persistence" else []
        p.add_argument(
            _flag(name),
            *aliases,
            dest=f"set_{name}",
            metavar="VALUE",
            help=info.description or f"default: {info.default}",
        )


# Commands whose flags include the coordinator's settings (built only when one may be
# parsed or shown: importing the settings model costs a fifth of the CLI's start-up).
SETTINGS_COMMANDS = frozenset({"serve", "cluster", "completion", "-h", "--help"})


def _add_global_flags(
    p: argparse.ArgumentParser, default: str | None, *, coordinator: bool = True
) -> None:
    """``-c`` (unless not ``coordinator``), the TLS flags and the token flags, with
    ``default`` (None on the top-level parser, SUPPRESS on a subcommand's copy)."""
    if coordinator:
        p.add_argument(
            "--coordinator",
            "-c",
            default=default,
            metavar="ADDRESS",
            help="coordinator address: HOST:PORT, H1:P1,H2:P2 (seed replicas) or "
            "etcd://HOST:PORT[/PREFIX] (default: $AGENTMESH_COORDINATOR, else localhost:50051)",
        )
        p.add_argument(
            "--namespace",
            "-n",
            default=default,
            metavar="NAME",
            help="the namespace to act in: its workflows, executions, tasks and agents "
            "(default: $AGENTMESH_NAMESPACE, else default)",
        )
    tls = p.add_argument_group(
        "TLS to the coordinator",
        "A flag wins over its AGENTMESH_TLS_* variable; any of them means TLS.",
    )
    tls.add_argument(
        "--tls",
        action="store_true",
        default=False if default is None else default,
        help="connect over TLS, trusting the system's root CAs unless --tls-ca "
        "(default: $AGENTMESH_TLS=1)",
    )
    tls.add_argument(
        "--tls-ca",
        default=default,
        metavar="FILE",
        help="PEM file of the CA that signed the coordinator's certificate "
        "(default: $AGENTMESH_TLS_CA)",
    )
    tls.add_argument(
        "--tls-client-cert",
        default=default,
        metavar="FILE",
        help="client certificate (PEM) for mutual TLS, with --tls-client-key "
        "(default: $AGENTMESH_TLS_CLIENT_CERT)",
    )
    tls.add_argument(
        "--tls-client-key",
        default=default,
        metavar="FILE",
        help="private key (PEM) of --tls-client-cert (default: $AGENTMESH_TLS_CLIENT_KEY)",
    )
    tls.add_argument(
        "--tls-server-name",
        default=default,
        metavar="NAME",
        help="the name to check the coordinator's certificate against (default: the "
        "host of the address; $AGENTMESH_TLS_SERVER_NAME)",
    )
    _add_token_flags(p, default)


def _add_token_flags(p: argparse.ArgumentParser, default: str | None) -> None:
    """``--token`` and ``--token-file``, with ``default`` as in ``_add_global_flags``."""
    auth = p.add_argument_group(
        "Authentication to the coordinator",
        "Sent as 'authorization: Bearer TOKEN' on every call; --token '' sends none.",
    )
    auth.add_argument(
        "--token",
        default=default,
        metavar="TOKEN",
        help="bearer token for the coordinator (default: $AGENTMESH_TOKEN)",
    )
    auth.add_argument(
        "--token-file",
        default=default,
        metavar="PATH",
        help="read the bearer token from this file (a trailing newline is stripped); "
        "instead of --token, which other users may see in the process list",
    )


def _common(coordinator: bool = True) -> argparse.ArgumentParser:
    """Global flags, accepted after the subcommand too: a subcommand's copy leaves the
    value alone unless given there (SUPPRESS), so ``-c X agents`` and ``agents -c X``
    are the same. (The top-level parser has its own actions: argparse shares a
    parent's action objects, and a default set on one would leak into the other.)
    Without ``coordinator``: the TLS and token flags only (``cluster status`` finds the
    leader in etcd, and checks it over TLS)."""
    common = argparse.ArgumentParser(add_help=False)
    _add_global_flags(common, argparse.SUPPRESS, coordinator=coordinator)
    return common


def build_parser(settings_flags: bool = True) -> argparse.ArgumentParser:
    """The whole command line; without ``settings_flags``, ``serve`` and ``cluster status``
    lack their settings flags (for parsing any other command faster)."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="agentmesh",
        description="AgentMesh coordinator and CLI",
        epilog="Exit status: 0 ok; 1 the task or execution failed, or validation found "
        "errors; 2 bad usage or input (unreadable or malformed files included); 3 the "
        "coordinator refused the call or could not be reached.",
    )
    _add_global_flags(parser, None)
    parser.add_argument("--version", action="version", version=f"agentmesh {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        help: str,
        *,
        remote: bool = True,
        parents: tuple[argparse.ArgumentParser, ...] = (),
    ) -> argparse.ArgumentParser:
        """A subcommand; ``remote`` ones (that talk to a coordinator) take -c too."""
        return sub.add_parser(name, help=help, parents=[common] if remote else list(parents))

    serve = command("serve", "run a coordinator", remote=False)
    if settings_flags:
        _add_settings_flags(serve)

    agents = command("agents", "list the agents of the mesh")
    agents.add_argument("--all", action="store_true", help="include offline agents")
    agents.add_argument("--capability", help="only agents advertising this capability")
    agents.add_argument("--json", action="store_true")

    _task_commands(command("task", "submit, inspect, list and cancel tasks"), common)
    _workflow_commands(command("workflow", "define, list, validate and show workflows"), common)

    run = command("run", "start a workflow execution")
    run.add_argument("workflow")
    run.add_argument("--input", default="{}", help="JSON object, or @FILE")
    run.add_argument("--version", default="")
    run.add_argument("--idempotency-key", default="")
    run.add_argument("--follow", "-f", action="store_true", help="show each step until it ends")
    run.add_argument("--output", action="store_true", help="print the whole output")
    run.add_argument("--json", action="store_true")
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print only the execution id (for scripts)"
    )

    executions = command("executions", "active and recent executions, newest first")
    executions.add_argument("--workflow", default="", help="only this workflow's")
    executions.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help=f"only these ({', '.join(STATUSES)}; repeat or comma-separate)",
    )
    executions.add_argument(
        "--active", action="store_true", help="= --status queued,running,paused"
    )
    executions.add_argument(
        "--limit", type=_ranged(1, 1000), default=20, help="at most this many (default 20)"
    )
    executions.add_argument(
        "--search", default="", metavar="TEXT", help="whose id or input (JSON) contains TEXT"
    )
    executions.add_argument(
        "--since", type=_ago, metavar="SPAN", help="started in the last SPAN (90s, 15m, 2h, 7d)"
    )
    executions.add_argument("--parent", default="", metavar="ID", help="children of execution ID")
    executions.add_argument("--json", action="store_true")

    status = command("status", "an execution's status")
    status.add_argument("execution_id")
    status.add_argument("--output", action="store_true", help="print the whole output")
    status.add_argument(
        "--wait",
        action="store_true",
        help="wait until it finishes; exit 1 unless it completed",
    )
    status.add_argument("--json", action="store_true")
    history = command("history", "an execution's history, every event in order")
    history.add_argument("execution_id")
    history.add_argument(
        "--raw", action="store_true", help="also the engine's journal inputs (debugging)"
    )
    history.add_argument("--json", action="store_true")
    for verb in ("pause", "resume", "stop"):
        p = command(verb, f"{verb} an execution")
        p.add_argument("execution_id")
        if verb == "resume":
            p.add_argument("--input", default="", help="JSON merged into the variables")
        if verb == "stop":
            p.add_argument("--reason", default="")
    _watch_commands(command)
    from agentmesh.cli._services import add_commands as service_commands

    service_commands(command("service", "register, list and call external services"), common)
    from agentmesh.cli._webhooks import add_commands as webhook_commands

    webhook_commands(command("webhook", "deliver events to URLs; dead letters"), common)
    from agentmesh.cli._triggers import add_commands as trigger_commands

    trigger_commands(command("trigger", "event triggers and schedules; fire an event"), common)
    event = command("event", "trigger an event that executions may wait for")
    event.add_argument("name")
    event.add_argument("--payload", default="{}", help="JSON object, or @FILE")
    event.add_argument("--key", default="", help="correlation key")
    event.add_argument(
        "--id", default="", help="the event's id: triggers start once per id (default: fresh)"
    )

    cluster = command("cluster", "cluster mode on etcd", remote=False)
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    cstatus = csub.add_parser(
        "status",
        help="replicas, leader, term and etcd health",
        description="Reads etcd directly (no coordinator needed). Takes the etcd settings "
        "a replica uses (flags, AGENTMESH_* env, --config): endpoints, prefix, TLS, auth. "
        "With --wait it also asks the leader whether it serves, over TLS if the --tls "
        "flags (or AGENTMESH_TLS_*) say so.",
        parents=[_common(coordinator=False)],
    )
    if settings_flags:
        _add_settings_flags(cstatus, cluster_only=True)
    cstatus.add_argument(
        "--prefix", dest="set_etcd_prefix", metavar="VALUE", help="= --etcd-prefix"
    )
    cstatus.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait up to SECONDS for etcd and a serving leader (exit 3 if none)",
    )
    cstatus.add_argument("--json", action="store_true")

    agent = command("agent", "run a reference agent (planner, executor, ...)")
    agent.add_argument("name", help="planner, executor, notion, build, reviewer, refactor")
    agent.add_argument(
        "--workspace",
        default="",
        help="where it may write (default $AGENTMESH_WORKSPACE or ./agentmesh-workspace)",
    )
    agent.add_argument("--max-concurrency", type=int, default=4)

    # The demo starts its own coordinator, but its agents and client send the token.
    tokens = argparse.ArgumentParser(add_help=False)
    _add_token_flags(tokens, argparse.SUPPRESS)
    _demo_command(
        command(
            "demo",
            "the seed's project setup on six agents, end to end",
            remote=False,
            parents=(tokens,),
        )
    )

    version = command("version", "this CLI's version, and the coordinator's when reachable")
    version.add_argument("--json", action="store_true")

    _dev_commands(command("dev", "development helpers: local TLS certificates", remote=False))
    _auth_commands(command("auth", "tokens and authorization decisions (offline)", remote=False))

    completion = command("completion", "print a shell completion script", remote=False)
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


def _task_commands(task: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    tsub = task.add_subparsers(dest="task_command", required=True, metavar="COMMAND")
    assign = tsub.add_parser("assign", help="submit a task", parents=[common])
    assign.add_argument("--capability", default="")
    assign.add_argument("--agent", default="", help="pin the task to this agent id")
    assign.add_argument("--input", default="{}", help="JSON object, or @FILE")
    assign.add_argument("--name", default="")
    assign.add_argument("--timeout-ms", type=UINT32, default=0)
    assign.add_argument("--max-retries", type=UINT32, default=None)
    assign.add_argument("--idempotency-key", default="")
    assign.add_argument("--priority", type=INT32, default=0)
    assign.add_argument(
        "--queue", action="store_true", help="queue even if no agent advertises the capability yet"
    )
    assign.add_argument("--wait", action="store_true", help="wait for the result, showing progress")
    assign.add_argument("--json", action="store_true")
    assign.add_argument(
        "--quiet", "-q", action="store_true", help="print only the task id (for scripts)"
    )
    get = tsub.add_parser("get", help="show a task (with its progress)", parents=[common])
    get.add_argument("task_id")
    get.add_argument("--wait", action="store_true")
    get.add_argument("--json", action="store_true")
    tlist = tsub.add_parser("list", help="recent tasks, newest first", parents=[common])
    tlist.add_argument("--status", default="", choices=["", *TASK_STATUSES], metavar="STATUS")
    tlist.add_argument("--agent", default="", help="only this agent's")
    tlist.add_argument(
        "--limit", type=_ranged(1, 10_000), default=20, help="at most this many (default 20)"
    )
    tlist.add_argument("--json", action="store_true")
    cancel = tsub.add_parser("cancel", help="cancel a task", parents=[common])
    cancel.add_argument("task_id")
    cancel.add_argument("--reason", default="")
    cancel.add_argument("--json", action="store_true")


def _workflow_commands(wf: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    wsub = wf.add_subparsers(dest="workflow_command", required=True, metavar="COMMAND")
    define = wsub.add_parser(
        "define", help="define workflows from JSON/YAML files", parents=[common]
    )
    define.add_argument("files", nargs="+", metavar="FILE")
    define.add_argument("--name", default="", help="name to define it under (one file)")
    define.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="template parameter (value is JSON, or a plain string)",
    )
    wlist = wsub.add_parser("list", help="defined workflows and their versions", parents=[common])
    wlist.add_argument("--json", action="store_true")
    validate = wsub.add_parser(
        "validate",
        help="check a definition file, print issues",
        description="A local check: no coordinator needed. With --coordinator, the "
        "coordinator checks it too and warns of capabilities no live agent advertises "
        "and of workflows it does not know.",
        parents=[common],
    )
    validate.add_argument("file", metavar="FILE")
    show = wsub.add_parser("show", help="print a defined workflow's definition", parents=[common])
    show.add_argument("name")
    show.add_argument("--version", default="")
