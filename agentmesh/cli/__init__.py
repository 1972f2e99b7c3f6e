"""The ``agentmesh`` command.

    agentmesh serve [--config FILE] [--listen HOST:PORT] [--<setting> VALUE ...]
    agentmesh agents [--all] [--capability C] [--json]
    agentmesh agent NAME [--workspace DIR]
    agentmesh task assign|get|list|cancel ...
    agentmesh workflow define|list|validate|show ...
    agentmesh run WORKFLOW --input JSON [--follow] [--output]
    agentmesh executions [--workflow W] [--status S] [--active]
    agentmesh status|history|pause|resume|stop EXECUTION_ID
    agentmesh event NAME --payload JSON [--key K]
    agentmesh cluster status
    agentmesh demo | version | completion bash|zsh

``--coordinator ADDRESS`` (``-c``) goes before or after the command; without it the
address is ``$AGENTMESH_COORDINATOR``, else ``localhost:50051``.

Exit status, the same for every command:

    0  ok
    1  the task or execution failed (or was cancelled), or validation found errors
    2  bad usage or input: flags, JSON, unreadable or malformed files, settings, an
       address that cannot be parsed or bound, a store another process holds
    3  the coordinator refused the call or could not be reached
    130 interrupted (Ctrl-C); 141 the reader of the output went away (``| head``)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from agent_sdk import Client, RpcError
from agent_sdk._discovery import parse_address, resolve_address
from agentmesh.cli import _commands, _local
from agentmesh.cli._parser import SETTINGS_COMMANDS, UsageError, build_parser

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_COORDINATOR = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_PIPE = 130, 141


def _coordinator(args: argparse.Namespace) -> str:
    """``--coordinator``, else ``$AGENTMESH_COORDINATOR``, else localhost:50051 (the
    SDK's own rule), checked here so a malformed one is bad usage (exit 2)."""
    address, _ = resolve_address(args.coordinator)
    try:
        parse_address(address)
    except ValueError as e:
        raise UsageError(f"--coordinator: {e}") from None
    return address


async def _client_command(args: argparse.Namespace, address: str) -> int:
    async with Client(address) as client:
        return await _commands.run(client, args)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    command = args.command
    if command == "serve":
        return _local.serve(args)
    if command == "demo":
        return _local.demo(args)
    if command == "cluster":
        return asyncio.run(_local.cluster_status(args))
    if command == "completion":
        return _local.completion(args, parser)
    if command == "workflow" and args.workflow_command == "validate" and not args.coordinator:
        return _local.validate(args)
    address = _coordinator(args)
    if command == "agent":
        return _local.agent(args, address)
    if command == "version":
        return asyncio.run(_local.version(args, address))
    return asyncio.run(_client_command(args, address))


def _closed_pipe() -> int:
    """The reader went away (``agentmesh history ID | head``): stop quietly. Python
    would complain when it flushes stdout at exit, so point stdout at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(settings_flags=not SETTINGS_COMMANDS.isdisjoint(words))
    args = parser.parse_args(words)
    try:
        return _dispatch(parser, args)
    except BrokenPipeError:
        return _closed_pipe()
    except UsageError as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RpcError as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return EXIT_COORDINATOR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
