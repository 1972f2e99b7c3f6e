"""``agentmesh service register | list | show | delete | call``: external services."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent_sdk import Client
from agent_sdk._integrations import POLICY_FIELDS
from agentmesh.cli import _output as out
from agentmesh.cli._parser import UsageError


def add_commands(service: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The ``service`` subcommands."""
    sub = service.add_subparsers(dest="service_command", required=True, metavar="COMMAND")
    register = sub.add_parser(
        "register",
        help="register (or replace) an external service",
        description="Credentials are never given here: --auth-secret-ref names a secret of "
        "the coordinator's secret provider, read at each call.",
        parents=[common],
    )
    register.add_argument("name")
    register.add_argument("base_url")
    register.add_argument(
        "--operation",
        action="append",
        default=[],
        metavar="NAME=METHOD /PATH",
        help="a named operation, e.g. 'repo=GET /repos/{owner}/{repo}' (repeatable)",
    )
    register.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="sent with every call"
    )
    register.add_argument("--auth-secret-ref", default="", metavar="SECRET")
    register.add_argument(
        "--auth-scheme", default="", metavar="SCHEME", help="bearer (default), basic, header:NAME"
    )
    register.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="KEY=NUMBER",
        help=f"one of {', '.join(POLICY_FIELDS)} (repeatable)",
    )
    slist = sub.add_parser("list", help="the namespace's external services", parents=[common])
    slist.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="a service's configuration and state", parents=[common])
    show.add_argument("name")
    delete = sub.add_parser("delete", help="forget an external service", parents=[common])
    delete.add_argument("name")
    call = sub.add_parser(
        "call", help="call an operation; prints the answer as JSON", parents=[common]
    )
    call.add_argument("name")
    call.add_argument("operation", help="a declared operation, or 'METHOD /path'")
    call.add_argument("--params", default="{}", help="JSON object, or @FILE")
    call.add_argument("--timeout-ms", type=int, default=0, metavar="MS")


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects NAME=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _policies(items: list[str]) -> dict[str, float]:
    policies = {}
    for key, value in _pairs(items, "--policy").items():
        if key not in POLICY_FIELDS:
            raise UsageError(f"--policy {key}: not one of {', '.join(POLICY_FIELDS)}")
        try:
            policies[key] = float(value) if "." in value else int(value)
        except ValueError:
            raise UsageError(f"--policy {key}: {value!r} is not a number") from None
    return policies


async def service(client: Client, args: argparse.Namespace) -> int:
    """The ``service`` command (``args.service_command`` says which)."""
    from agentmesh.cli._commands import parse_object

    sub = args.service_command
    if sub == "register":
        name = await client.register_external_service(
            args.name,
            args.base_url,
            headers=_pairs(args.header, "--header"),
            operations=_pairs(args.operation, "--operation"),
            auth_secret_ref=args.auth_secret_ref,
            auth_scheme=args.auth_scheme,
            **_policies(args.policy),
        )
        print(f"registered service {name}")
    elif sub == "list":
        services = await client.list_external_services()
        if args.json:
            out.print_json(services)
        elif not services:
            print("no external services registered")
        else:
            rows = [[s.name, s.base_url, s.breaker, str(len(s.operations))] for s in services]
            print(out.table(["NAME", "BASE URL", "BREAKER", "OPERATIONS"], rows))
    elif sub == "show":
        out.print_json(await client.get_external_service(args.name))
    elif sub == "delete":
        await client.delete_external_service(args.name)
        print(f"deleted service {args.name}")
    else:
        params: dict[str, Any] = parse_object(args.params, "--params")
        result = await client.call_external_service(
            args.name, args.operation, params, timeout_ms=args.timeout_ms
        )
        print(json.dumps(result.value, indent=2))
        origin = "cache" if result.cached else f"{result.attempts} attempt(s)"
        print(f"HTTP {result.http_status} ({origin})", file=sys.stderr)
    return 0
