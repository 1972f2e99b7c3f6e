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
    agentmesh dev certs DIR [--hosts H,...] [--client NAME ...] [--days N] [--force]
    agentmesh demo | version | completion bash|zsh

``--coordinator ADDRESS`` (``-c``) goes before or after the command; without it the
address is ``$AGENTMESH_COORDINATOR``, else ``localhost:50051``.  So do the TLS flags
``--tls``, ``--tls-ca FILE``, ``--tls-client-cert FILE``, ``--tls-client-key FILE`` and
``--tls-server-name NAME``; a flag wins over its ``AGENTMESH_TLS_*`` variable (the SDK's
``TLS.from_env``), and every command that dials a coordinator uses them.  So do
``--token TOKEN`` and ``--token-file PATH`` (a trailing newline stripped; ``--token ''``
sends none): the bearer token sent as ``authorization: Bearer TOKEN`` on every call,
default ``$AGENTMESH_TOKEN``; ``agent`` and ``demo`` give it to the agents they start.

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
import os
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``agentmesh`` command: run ``argv`` (default ``sys.argv[1:]``), return the
    exit status."""
    # gRPC's core logs each failed TLS handshake on stderr at INFO, unasked, and the
    # CLI says what failed itself.  gRPC reads GRPC_VERBOSITY when it is imported, so
    # this comes before anything imports it (the SDK, below); the user's value wins.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from agentmesh.cli._main import main as run

    return run(argv)


def build_parser(settings_flags: bool = True) -> argparse.ArgumentParser:
    """The whole command line (``_parser.build_parser``)."""
    from agentmesh.cli._parser import build_parser as build

    return build(settings_flags)
