"""What ``agentmesh`` does with its command line: parse it, pick the command, map
errors to the exit statuses (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agent_sdk import TLS, Client, RpcError
from agent_sdk._auth import check_token, resolve_token
from agent_sdk._discovery import parse_address, resolve_address
from agent_sdk._namespace import resolve_namespace
from agentmesh.cli import _commands, _local
from agentmesh.cli._parser import SETTINGS_COMMANDS, UsageError, build_parser

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


def _tls(args: argparse.Namespace) -> TLS | None:
    """The TLS to dial the coordinator with: ``AGENTMESH_TLS_*`` (``TLS.from_env``), each
    setting replaced by its flag when given (the client certificate and key as a pair);
    None for plain text.  Half-given or unreadable files are bad usage (exit 2)."""
    try:
        env = TLS.from_env()
        flags = (args.tls_ca, args.tls_client_cert, args.tls_client_key, args.tls_server_name)
        if not args.tls and not any(flags):
            tls = env
        else:
            base = env or TLS()
            cert, key = base.cert, base.key
            if args.tls_client_cert or args.tls_client_key:
                if not (args.tls_client_cert and args.tls_client_key):
                    raise UsageError("--tls-client-cert and --tls-client-key go together")
                cert, key = args.tls_client_cert, args.tls_client_key
            tls = TLS(
                ca=args.tls_ca or base.ca,
                cert=cert,
                key=key,
                server_name=args.tls_server_name or base.server_name,
            )
        if tls is not None:
            tls.credentials()  # every file readable now, or exit 2 before dialling
    except ValueError as e:
        raise UsageError(str(e)) from None
    return tls


def _token(args: argparse.Namespace) -> str:
    """The bearer token to send: ``--token`` (``""``: none), else the contents of
    ``--token-file`` (one trailing newline stripped), else ``$AGENTMESH_TOKEN``; ``""``
    for none.  Given as ``token=`` to every Agent and Client the CLI makes, so they do
    not read the environment again.  Both flags, an unreadable or empty file, or a token
    that cannot be sent (whitespace, non-ASCII) are bad usage (exit 2)."""
    try:
        if args.token is not None and args.token_file is not None:
            raise UsageError("--token and --token-file: give one of them")
        if args.token is not None:
            return check_token(args.token, "--token")
        if args.token_file is not None:
            return _read_token_file(args.token_file)
        return resolve_token(None) or ""
    except ValueError as e:
        raise UsageError(str(e)) from None


def _read_token_file(path: str) -> str:
    where = f"--token-file {path!r}"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"{where}: cannot read it: {e.strerror or e}") from None
    text = data.decode("utf-8", errors="replace")  # a bad byte: "non-ASCII" below
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise UsageError(f"{where}: the file is empty")
    return check_token(text, where)


def _namespace(args: argparse.Namespace) -> str:
    """The namespace to act in: ``--namespace``, else ``$AGENTMESH_NAMESPACE``, else
    ``default``; a malformed name is bad usage (exit 2)."""
    try:
        return resolve_namespace(args.namespace)
    except ValueError as e:
        raise UsageError(str(e).replace("namespace argument", "--namespace")) from None


async def _client_command(
    args: argparse.Namespace, address: str, tls: TLS | None, token: str, namespace: str
) -> int:
    async with Client(address, tls=tls, token=token, namespace=namespace) as client:
        return await _commands.run(client, args)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    command = args.command
    if command == "serve":
        return _local.serve(args)
    if command == "demo":
        return _local.demo(args, _token(args))
    if command == "dev":
        return _local.dev_certs(args)
    if command == "auth":
        from agentmesh.cli import _auth

        return _auth.run(args)
    if command == "cluster":
        if args.wait is None:  # only --wait dials the leader
            return asyncio.run(_local.cluster_status(args, None, ""))
        return asyncio.run(_local.cluster_status(args, _tls(args), _token(args)))
    if command == "completion":
        return _local.completion(args, parser)
    if command == "workflow" and args.workflow_command == "validate" and not args.coordinator:
        return _local.validate(args)
    address = _coordinator(args)
    tls = _tls(args)
    token = _token(args)
    namespace = _namespace(args)
    if command == "agent":
        return _local.agent(args, address, tls, token, namespace)
    if command == "version":
        return asyncio.run(_local.version(args, address, tls, token, namespace))
    return asyncio.run(_client_command(args, address, tls, token, namespace))


def _closed_pipe() -> int:
    """The reader went away (``agentmesh history ID | head``): stop quietly. Python
    would complain when it flushes stdout at exit, so point stdout at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
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
