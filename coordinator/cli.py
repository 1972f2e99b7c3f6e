"""The ``agentmesh`` command.

    agentmesh serve [--config FILE] [--listen HOST:PORT] [--<setting> VALUE ...]
    agentmesh agents [--all] [--json]
    agentmesh task assign --capability C --input JSON [--agent ID] [--wait] [--json]
    agentmesh task get ID [--wait] [--json]
    agentmesh workflow define|list|validate|show ...
    agentmesh run WORKFLOW --input JSON [--follow]
    agentmesh status|history|pause|resume|stop EXECUTION_ID
    agentmesh event NAME --payload JSON [--key K]
    agentmesh demo

Exit status: 0 success, 1 the task failed or was cancelled, 2 bad usage or
input, 3 the coordinator refused the call or could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from agent_sdk import AgentInfo, Client, Execution, ExecutionEvent, RpcError, TaskAssignment
from agent_sdk._workflows import read_definition
from coordinator.config import ConfigError, Settings, load_settings

DEFAULT_COORDINATOR = os.environ.get("AGENTMESH_COORDINATOR", "localhost:50051")
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class UsageError(Exception):
    pass


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_settings_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML, YAML or JSON file (camelCase or snake_case keys)")
    for name, info in Settings.model_fields.items():
        # --store is the short name the cluster docs use for --state-persistence.
        aliases = ["--store"] if name == "state_persistence" else []
        p.add_argument(
            _flag(name),
            *aliases,
            dest=f"set_{name}",
            metavar="VALUE",
            help=info.description or f"default: {info.default}",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentmesh", description="AgentMesh coordinator and CLI")
    parser.add_argument(
        "--coordinator",
        "-c",
        default=DEFAULT_COORDINATOR,
        help="coordinator address (env AGENTMESH_COORDINATOR; default %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a coordinator")
    _add_settings_flags(serve)

    agents = sub.add_parser("agents", help="list the agents of the mesh")
    agents.add_argument("--all", action="store_true", help="include offline agents")
    agents.add_argument("--capability", help="only agents advertising this capability")
    agents.add_argument("--json", action="store_true")

    task = sub.add_parser("task", help="submit and inspect tasks")
    tsub = task.add_subparsers(dest="task_command", required=True)
    assign = tsub.add_parser("assign", help="submit a task")
    assign.add_argument("--capability", default="")
    assign.add_argument("--agent", default="", help="pin the task to this agent id")
    assign.add_argument("--input", default="{}", help="JSON object, or @FILE")
    assign.add_argument("--name", default="")
    assign.add_argument("--timeout-ms", type=int, default=0)
    assign.add_argument("--max-retries", type=int, default=None)
    assign.add_argument("--idempotency-key", default="")
    assign.add_argument("--priority", type=int, default=0)
    assign.add_argument(
        "--queue", action="store_true", help="queue even if no agent advertises the capability yet"
    )
    assign.add_argument("--wait", action="store_true", help="wait for the result, showing progress")
    assign.add_argument("--json", action="store_true")
    get = tsub.add_parser("get", help="show a task")
    get.add_argument("task_id")
    get.add_argument("--wait", action="store_true")
    get.add_argument("--json", action="store_true")

    wf = sub.add_parser("workflow", help="define, list and validate workflows")
    wsub = wf.add_subparsers(dest="workflow_command", required=True)
    define = wsub.add_parser("define", help="define workflows from JSON/YAML files")
    define.add_argument("files", nargs="+", metavar="FILE")
    define.add_argument("--name", default="", help="name to define it under (one file)")
    define.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="template parameter (value is JSON, or a plain string)",
    )
    wsub.add_parser("list", help="defined workflows and their versions")
    validate = wsub.add_parser("validate", help="check a definition file, print issues")
    validate.add_argument("file", metavar="FILE")
    show = wsub.add_parser("show", help="print a defined workflow's definition")
    show.add_argument("name")
    show.add_argument("--version", default="")

    run = sub.add_parser("run", help="start a workflow execution")
    run.add_argument("workflow")
    run.add_argument("--input", default="{}", help="JSON object, or @FILE")
    run.add_argument("--version", default="")
    run.add_argument("--idempotency-key", default="")
    run.add_argument("--follow", "-f", action="store_true", help="show each step until it ends")
    run.add_argument("--json", action="store_true")
    status = sub.add_parser("status", help="an execution's status")
    status.add_argument("execution_id")
    status.add_argument("--json", action="store_true")
    history = sub.add_parser("history", help="an execution's history, every event in order")
    history.add_argument("execution_id")
    history.add_argument("--json", action="store_true")
    for verb in ("pause", "resume", "stop"):
        p = sub.add_parser(verb, help=f"{verb} an execution")
        p.add_argument("execution_id")
        if verb == "resume":
            p.add_argument("--input", default="", help="JSON merged into the variables")
        if verb == "stop":
            p.add_argument("--reason", default="")
    event = sub.add_parser("event", help="trigger an event that executions may wait for")
    event.add_argument("name")
    event.add_argument("--payload", default="{}", help="JSON object, or @FILE")
    event.add_argument("--key", default="", help="correlation key")

    cluster = sub.add_parser("cluster", help="cluster mode on etcd")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    cstatus = csub.add_parser(
        "status",
        help="replicas, leader, term and etcd health",
        description="Reads etcd directly (no coordinator needed). Takes the serve settings "
        "(flags, AGENTMESH_* env, --config), so the etcd endpoints, prefix, TLS and auth a "
        "replica uses work here too.",
    )
    _add_settings_flags(cstatus)
    cstatus.add_argument(
        "--prefix", dest="set_etcd_prefix", metavar="VALUE", help="= --etcd-prefix"
    )
    cstatus.add_argument("--json", action="store_true")

    agent = sub.add_parser("agent", help="run a reference agent (planner, executor, ...)")
    agent.add_argument("name", help="planner, executor, notion, build, reviewer, refactor")
    agent.add_argument(
        "--workspace",
        default="",
        help="where it may write (default $AGENTMESH_WORKSPACE or ./agentmesh-workspace)",
    )
    agent.add_argument("--max-concurrency", type=int, default=4)

    demo = sub.add_parser("demo", help="the seed's project setup on six agents, end to end")
    demo.add_argument(
        "--workflow",
        default="project_setup",
        choices=["project_setup", "implement_feature", "data_processing"],
    )
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
        "--kill-leader",
        action="store_true",
        help="cluster mode: SIGKILL the leader mid-workflow (implies --cluster)",
    )
    return parser


def _parse_input(raw: str) -> dict[str, Any]:
    if raw.startswith("@"):
        try:
            with open(raw[1:]) as f:
                raw = f.read()
        except OSError as e:
            raise UsageError(f"--input: cannot read {raw[1:]}: {e.strerror}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"--input is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"--input must be a JSON object, got {type(value).__name__}")
    return value


def _parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _ago(t: datetime | None) -> str:
    if t is None:
        return "-"
    s = (datetime.now(UTC) - t).total_seconds()
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago"


def _agents_table(agents: Sequence[AgentInfo]) -> str:
    rows = [("ID", "TYPE", "STATUS", "LOAD", "TASKS", "OK%", "AVG MS", "SEEN", "CAPABILITIES")]
    for a in agents:
        rows.append(
            (
                a.id,
                a.type,
                a.status,
                f"{a.task_count}/{a.max_concurrency}",
                str(a.tasks_completed + a.tasks_failed),
                f"{a.success_rate * 100:.0f}",
                f"{a.average_task_duration_ms:.0f}",
                _ago(a.last_seen_time),
                ",".join(a.capabilities),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    return obj


def _show_task(t: TaskAssignment, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_to_jsonable(asdict(t)), indent=2))
        return
    print(f"task      {t.id}")
    print(f"status    {t.status} (attempt {t.attempt}, retries {t.retry_count})")
    print(f"agent     {t.agent_id or '-'}")
    print(f"capability {t.capability}")
    if t.result is not None:
        print("result    " + json.dumps(t.result, indent=2).replace("\n", "\n          "))
    if t.error is not None:
        print(f"error     {t.error.type}: {t.error.message}")


async def _wait_with_progress(client: Client, task_id: str) -> TaskAssignment:
    last = ""
    while True:
        t = await client.wait_task(task_id, timeout=0.25)
        line = f"{t.status}"
        if t.status == "running" and (t.progress or t.progress_message):
            line += f" {t.progress * 100:.0f}% {t.progress_message}"
        if line != last and not t.finished:
            print(f"  ... {line}", file=sys.stderr, flush=True)
            last = line
        if t.finished:
            return t


def _show_execution(e: Execution, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_to_jsonable(asdict(e)), indent=2))
        return
    print(f"execution {e.id}")
    print(f"workflow  {e.workflow_name} v{e.workflow_version}")
    print(f"status    {e.status}")
    m = e.metrics
    print(
        f"steps     {m['completedSteps']:.0f} completed of {m['stepCount']:.0f} started, "
        f"{m['taskCount']:.0f} tasks, {m['retryCount']:.0f} retries, "
        f"{m['errorCount']:.0f} errors, {m['duration'] / 1000:.2f}s"
    )
    for s in e.current_steps:
        print(f"  running {s.step_id} ({s.type}, attempt {s.attempt})")
    if e.error is not None:
        print(f"error     {e.error.type}: {e.error.message}")
    if e.status == "completed":
        print("output    " + json.dumps(e.output, indent=2).replace("\n", "\n          "))


def _event_line(ev: ExecutionEvent) -> str:
    when = ev.time.strftime("%H:%M:%S.%f")[:-3] if ev.time else ""
    step = f" {ev.step_id}" if ev.step_id else ""
    msg = f"  {ev.message}" if ev.message else ""
    return f"{ev.sequence:>5} {when} {ev.type:<24}{step}{msg}"


async def _follow(client: Client, execution_id: str) -> Execution:
    after = 0
    while True:
        for ev in await client.get_execution_history(execution_id, after):
            after = ev.sequence
            if not ev.type[0].isupper():  # journal entries, not raw inputs
                print(_event_line(ev), flush=True)
        e = await client.wait_execution(execution_id, timeout=0.25)
        if e.finished:
            for ev in await client.get_execution_history(execution_id, after):
                if not ev.type[0].isupper():
                    print(_event_line(ev), flush=True)
            return e


async def _workflow_command(client: Client, args: argparse.Namespace) -> int:
    if args.command == "workflow":
        if args.workflow_command == "define":
            if args.name and len(args.files) > 1:
                raise UsageError("--name works with one file only")
            params = _parse_params(args.param) if args.param else None
            for f in args.files:
                info = await client.load_workflow(f, args.name, params)
                print(f"defined {info.name} version {info.version}")
            return 0
        if args.workflow_command == "list":
            infos = await client.list_workflows()
            if not infos:
                print("no workflows defined")
            for i in infos:
                print(
                    f"{i.name:<28} v{i.version:<6} {i.step_count:>3} steps  "
                    f"versions {','.join(i.versions)}  {i.description}"
                )
            return 0
        if args.workflow_command == "validate":
            result = await client.validate_workflow(read_definition(args.file))
            for issue in result.issues:
                print(f"{issue.severity}: {issue.location}: {issue.message}")
            if result.issue_count > len(result.issues):
                print(f"... and {result.issue_count - len(result.issues)} more issues")
            print("valid" if result.valid else "invalid")
            return 0 if result.valid else 1
        print(json.dumps(await client.get_workflow(args.name, args.version), indent=2))
        return 0
    if args.command == "run":
        e = await client.start_workflow(
            args.workflow,
            _parse_input(args.input),
            version=args.version,
            idempotency_key=args.idempotency_key,
        )
        if args.follow:
            print(f"execution {e.id} of {e.workflow_name} v{e.workflow_version}", flush=True)
            e = await _follow(client, e.id)
        _show_execution(e, args.json)
        return 1 if args.follow and e.status != "completed" else 0
    if args.command == "status":
        _show_execution(await client.get_execution_status(args.execution_id), args.json)
        return 0
    if args.command == "history":
        events = await client.get_execution_history(args.execution_id)
        if args.json:
            print(json.dumps([_to_jsonable(asdict(x)) for x in events], indent=2))
        for x in [] if args.json else events:
            print(_event_line(x))
        return 0
    if args.command == "pause":
        _show_execution(await client.pause_workflow(args.execution_id), False)
    elif args.command == "resume":
        value = _parse_input(args.input) if args.input else None
        _show_execution(await client.resume_workflow(args.execution_id, value), False)
    elif args.command == "stop":
        _show_execution(await client.stop_workflow(args.execution_id, args.reason), False)
    elif args.command == "event":
        n = await client.trigger_event(args.name, _parse_input(args.payload), args.key)
        print(f"delivered to {n} waiting execution(s)")
    return 0


async def _run_client(args: argparse.Namespace) -> int:
    async with Client(args.coordinator) as client:
        if args.command not in ("agents", "task"):
            return await _workflow_command(client, args)
        if args.command == "agents":
            if args.capability:
                agents = await client.find_agents_by_capability(
                    args.capability, include_offline=args.all
                )
            else:
                agents = await client.list_agents(include_offline=args.all)
            if args.json:
                print(json.dumps([_to_jsonable(asdict(a)) for a in agents], indent=2))
            elif not agents:
                print("no agents connected")
            else:
                print(_agents_table(agents))
            return 0
        if args.task_command == "assign":
            if not args.capability and not args.agent:
                raise UsageError("task assign needs --capability or --agent")
            t = await client.assign_task(
                args.capability,
                _parse_input(args.input),
                agent_id=args.agent,
                wait_for_agent=args.queue,
                name=args.name,
                timeout_ms=args.timeout_ms,
                max_retries=args.max_retries,
                idempotency_key=args.idempotency_key,
                priority=args.priority,
            )
            if not args.wait:
                _show_task(t, args.json)
                return 0
            print(f"task {t.id} {t.status} on {t.agent_id or '(queued)'}", file=sys.stderr)
            t = await _wait_with_progress(client, t.id)
        else:
            t = (
                await _wait_with_progress(client, args.task_id)
                if args.wait
                else await client.get_task_status(args.task_id)
            )
        _show_task(t, args.json)
        return 1 if t.status in ("failed", "cancelled") else 0


async def _cluster_status(args: argparse.Namespace) -> int:
    from coordinator.cluster.membership import cluster_status
    from coordinator.cluster.node import make_kv

    settings = load_settings(args.config, {**_overrides(args), "state_persistence": "etcd"})
    kv = make_kv(settings)
    try:
        status = await cluster_status(kv, settings.etcd_prefix)
    finally:
        await kv.close()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        etcd = status["etcd"]
        print(
            f"etcd      {'healthy' if etcd.get('healthy') else 'UNHEALTHY'}"
            f"{'  ' + str(etcd.get('error')) if etcd.get('error') else ''}"
        )
        where = f" at {status['leader_address']}" if status.get("leader_address") else ""
        print(f"leader    {status.get('leader') or '(none)'}{where}  term {status.get('term', 0)}")
        for r in status.get("replicas", []):
            mark = "*" if r["leader"] else " "
            print(f"  {mark} {r['id']:<24} {r['address']:<22} started {r['started']}")
        if not status.get("replicas"):
            print("  no replicas registered")
    return 0 if status["etcd"].get("healthy") else 3


def _run_agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agentmesh.agents.registry import REFERENCE, build_agent

    options: dict[str, Any] = {"max_concurrency": args.max_concurrency}
    if args.workspace and args.name in REFERENCE:
        options["workspace"] = Path(args.workspace).resolve()
    try:
        agent = build_agent(args.name, args.coordinator, **options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    agent.run()
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (``--etcd-endpoints`` -> ``etcd_endpoints``)."""
    return {
        k.removeprefix("set_"): v
        for k, v in vars(args).items()
        if k.startswith("set_") and v is not None
    }


def _serve(args: argparse.Namespace) -> int:
    from coordinator.server import ListenError, serve
    from coordinator.store import StoreLocked

    settings = load_settings(args.config, _overrides(args))
    logging.basicConfig(
        level=LOG_LEVELS[settings.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(serve(settings))
    except (StoreLocked, ListenError) as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            from coordinator.demo import run_demo

            return run_demo(
                args.workflow,
                args.keep_running,
                args.workspace,
                args.kill_agent,
                cluster=args.cluster,
                kill_leader=args.kill_leader,
            )
        if args.command == "agent":
            return _run_agent(args)
        if args.command == "cluster":
            return asyncio.run(_cluster_status(args))
        return asyncio.run(_run_client(args))
    except UsageError as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return 2
    except RpcError as e:
        print(f"agentmesh: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
