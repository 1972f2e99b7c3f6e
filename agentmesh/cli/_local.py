"""The commands that need no coordinator to talk to: serve, agent, demo, cluster
status (reads etcd), local validation, version, dev certs and shell completion."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent_sdk import TLS, Client, RpcError
from agent_sdk._auth import TOKEN_ENV, auth_metadata
from agent_sdk._namespace import NAMESPACE_ENV
from agent_sdk._tls import open_channel
from agentmesh import __version__
from agentmesh.cli import _output as out
from agentmesh.cli._commands import read_file
from agentmesh.cli._parser import UsageError


def settings_of(args: argparse.Namespace, **fixed: Any) -> Any:
    """The coordinator's settings from --config, AGENTMESH_* and flags (``fixed`` last);
    a bad value is bad usage (exit 2) naming the setting."""
    from coordinator.config import load_settings
    from coordinator.errors import ConfigError

    try:
        return load_settings(args.config, {**overrides(args), **fixed})
    except ConfigError as e:
        raise UsageError(str(e)) from None


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (``--etcd-endpoints`` -> ``etcd_endpoints``)."""
    return {
        k.removeprefix("set_"): v
        for k, v in vars(args).items()
        if k.startswith("set_") and v is not None
    }


def serve(args: argparse.Namespace) -> int:
    # Imported here: the server is most of the CLI's start-up time, and only serve needs it.
    from coordinator import logs
    from coordinator.errors import ConfigError
    from coordinator.server import ListenError
    from coordinator.server import serve as serve_forever
    from coordinator.store import StoreLocked

    settings = settings_of(args)
    logs.configure(settings.log_level, settings.log_format)
    try:
        return asyncio.run(serve_forever(settings))
    except (StoreLocked, ListenError, ConfigError) as e:  # ConfigError: unusable TLS files
        raise UsageError(str(e)) from None


def validate(args: argparse.Namespace) -> int:
    """``workflow validate FILE`` without a coordinator: the engine's own checks."""
    from coordinator.engine.definition import parse_definition
    from coordinator.engine.issues import cap_issues
    from coordinator.engine.validate import validate_definition
    from coordinator.errors import DefinitionError

    data = read_file(args.file)
    try:
        issues = validate_definition(parse_definition(data))
    except DefinitionError as e:
        issues = e.issues
    shown, total = cap_issues(issues)
    for line in out.issue_lines(shown, total):
        print(line)
    valid = not any(i.severity == "error" for i in issues)
    print("valid" if valid else "invalid")
    return 0 if valid else 1


async def _leader_serving(address: str, tls: TLS | None, token: str) -> bool:
    """Whether the replica at ``address`` serves as the leader (its AgentService health
    is SERVING only while it leads)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with open_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            r = await stub.Check(
                health_pb2.HealthCheckRequest(service="agentmesh.v1.AgentService"),
                timeout=2.0,
                metadata=auth_metadata(token),
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(r.status == health_pb2.HealthCheckResponse.SERVING)


async def cluster_status(args: argparse.Namespace, tls: TLS | None, token: str) -> int:
    from coordinator.cluster.membership import cluster_status as read_status
    from coordinator.server.replica import make_kv

    if args.wait is not None and args.wait <= 0:
        raise UsageError(f"--wait must be a number of seconds above 0, got {args.wait}")
    settings = settings_of(args, state_persistence="etcd")
    kv = make_kv(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (args.wait or 0)
    try:
        while True:
            status = await read_status(kv, settings.etcd_prefix)
            ready = bool(status["etcd"].get("healthy") and status.get("leader_address"))
            if ready and args.wait is not None:
                ready = await _leader_serving(str(status["leader_address"]), tls, token)
            if args.wait is None or ready or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await kv.close()
    waited_in_vain = args.wait is not None and not ready
    if waited_in_vain:
        print(f"agentmesh: no serving leader within {args.wait:g}s", file=sys.stderr)
    code = 3 if waited_in_vain or not status["etcd"].get("healthy") else 0
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return code
    _print_cluster(status)
    return code


def _print_cluster(status: dict[str, Any]) -> None:
    etcd = status["etcd"]
    why = etcd.get("error") or status.get("error")  # etcd's own answer, or why none came
    print(
        f"etcd      {'healthy' if etcd.get('healthy') else 'UNHEALTHY'}{f'  {why}' if why else ''}"
    )
    where = f" at {status['leader_address']}" if status.get("leader_address") else ""
    print(f"leader    {status.get('leader') or '(none)'}{where}  term {status.get('term', 0)}")
    for r in status.get("replicas", []):
        mark = "*" if r["leader"] else " "
        print(f"  {mark} {r['id']:<24} {r['address']:<22} started {r['started']}")
    if not status.get("replicas"):
        print("  no replicas registered")


@contextlib.contextmanager
def agent_environment(token: str, namespace: str) -> Iterator[None]:
    """``AGENTMESH_TOKEN`` set to ``token`` (unset for ``""``) and ``AGENTMESH_NAMESPACE``
    to ``namespace`` inside the block, as they were afterwards.  The agent factories take
    neither: the Agent they make reads them from there (and the executor's commands,
    which get an environment of their own, never see the token)."""
    wanted = {TOKEN_ENV: token, NAMESPACE_ENV: namespace}
    before = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, old in before.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def agent(
    args: argparse.Namespace, coordinator: str, tls: TLS | None, token: str, namespace: str
) -> int:
    from agentmesh.agents.registry import REFERENCE, build_agent

    options: dict[str, Any] = {"max_concurrency": args.max_concurrency}
    if args.workspace and args.name in REFERENCE:
        options["workspace"] = Path(args.workspace).resolve()
    try:
        with agent_environment(token, namespace):  # sent from its first connection
            built = build_agent(args.name, coordinator, **options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    built.tls = tls  # the factories take no TLS; the agent dials with it from the start
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    built.run()
    return 0


def demo(args: argparse.Namespace, token: str) -> int:
    from agentmesh.cli._demo import run_demo

    return run_demo(
        args.workflow,
        args.keep_running,
        args.workspace,
        args.kill_agent,
        cluster=args.cluster,
        kill_leader=args.kill_leader,
        token=token,
        secure=args.secure,
    )


async def version(
    args: argparse.Namespace, coordinator: str, tls: TLS | None, token: str, namespace: str
) -> int:
    """This CLI's version, then the coordinator's when one is reachable (one that is
    not is reported, and is no error: the CLI's version is what was asked)."""
    report: dict[str, Any] = {"cli": __version__, "coordinator": None}
    try:
        async with Client(
            coordinator, timeout=5.0, tls=tls, token=token, namespace=namespace
        ) as client:
            info = await client.get_coordinator_info()
        report["coordinator"] = {
            "address": coordinator,
            "version": info.version,
            "protocol_version": info.protocol_version,
            "id": info.coordinator_id,
            "store": info.store,
            "start_time": info.start_time,
        }
    except RpcError as e:
        report["error"] = str(e)
    if args.json:
        out.print_json(report)
        return 0
    print(f"agentmesh {__version__}")
    c = report["coordinator"]
    if c is None:
        print(f"coordinator at {coordinator}: not reachable ({report['error']})")
    else:
        print(
            f"coordinator {c['version']} at {coordinator} (protocol {c['protocol_version']}, "
            f"{c['store']} store, up since {out.ago(c['start_time'])})"
        )
    return 0


def dev_certs(args: argparse.Namespace) -> int:
    """``dev certs DIR``: write the certificates, then say how to use them."""
    from agentmesh.cli._certs import DEFAULT_HOSTS, make_certs

    def names(items: list[str]) -> list[str]:
        return [n.strip() for item in items for n in item.split(",") if n.strip()]

    hosts = names(args.hosts) or list(DEFAULT_HOSTS)
    directory = Path(args.directory).absolute()
    try:
        files = make_certs(directory, hosts, names(args.client), args.days, force=args.force)
    except FileExistsError as e:
        raise UsageError(f"{e} (--force replaces them)") from None
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or directory}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    _say_how_to_use(directory, files, hosts, args.days)
    return 0


def _say_how_to_use(directory: Path, files: dict[str, Path], hosts: list[str], days: int) -> None:
    from agentmesh.cli._certs import spiffe_id

    q = {role: shlex.quote(str(path)) for role, path in files.items()}
    clients = [role.removeprefix("client:") for role in files if role.startswith("client:")]
    what = [
        ("ca.pem, ca-key.pem", "the CA (keep ca-key.pem to yourself)"),
        ("server.pem, server-key.pem", f"the coordinator's, for {', '.join(hosts)}"),
        *((f"{n}.pem, {n}-key.pem", f"client {n} ({spiffe_id(n)})") for n in clients),
    ]
    width = max(len(files_) for files_, _ in what)
    print(f"wrote into {directory} (valid {days} days):")
    for files_, role in what:
        print(f"  {files_.ljust(width)}  {role}")
    server, server_key, ca = q["server"], q["server_key"], q["ca"]
    print("serve over TLS:")
    print(f"  agentmesh serve --tls-cert {server} --tls-key {server_key}")
    print(f"  (environment: AGENTMESH_TLS_CERT={server} AGENTMESH_TLS_KEY={server_key})")
    print(f"  mutual TLS: add --tls-client-ca {ca} (AGENTMESH_TLS_CLIENT_CA={ca})")
    print("connect (the CLI; Agent and Client read the same environment):")
    print(f"  agentmesh --tls-ca {ca} agents")
    print(f"  (environment: AGENTMESH_TLS_CA={ca}; in Python: TLS(ca={ca!r}))")
    for n in clients:
        cert, key = q[f"client:{n}"], q[f"client_key:{n}"]
        print(f"  as {n}: --tls-client-cert {cert} --tls-client-key {key}")
        print(f"  (environment: AGENTMESH_TLS_CLIENT_CERT={cert} AGENTMESH_TLS_CLIENT_KEY={key})")


def completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import shtab

    print(shtab.complete(parser, shell=args.shell))
    return 0
