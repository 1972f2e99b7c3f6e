"""The commands that talk to a coordinator through the SDK's ``Client``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_sdk import Client, FailedPreconditionError, TaskAssignment
from agent_sdk._types import STATUSES
from agentmesh.cli import _observe, _services, _triggers, _webhooks
from agentmesh.cli import _output as out
from agentmesh.cli._parser import UsageError
from agentmesh.cli._progress import Progress, follow
from agentmesh.documents import DocumentError, read_document

ACTIVE = ("queued", "running", "paused")


def parse_object(raw: str, flag: str) -> dict[str, Any]:
    """A JSON object given as ``flag`` (inline, or ``@FILE``); UsageError naming it."""
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except OSError as e:
            raise UsageError(f"{flag}: cannot read {raw[1:]}: {e.strerror}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{flag} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def read_file(path: str) -> dict[str, Any]:
    """A definition file, read as the coordinator reads one; UsageError if it cannot be."""
    try:
        return read_document(path)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except DocumentError as e:
        raise UsageError(str(e)) from None


async def run(client: Client, args: argparse.Namespace) -> int:
    """Carry out one client command; returns its exit status."""
    handler = HANDLERS[args.command]
    return await handler(client, args)


# ------------------------------------------------------------------- agents


async def agents(client: Client, args: argparse.Namespace) -> int:
    if args.capability:
        found = await client.find_agents_by_capability(args.capability, include_offline=args.all)
    else:
        found = await client.list_agents(include_offline=args.all)
    if args.json:
        out.print_json(found)
    elif found:
        print(out.agents_table(found))
    elif args.capability:
        where = "" if args.all else " (--all includes offline agents)"
        print(f"no agent advertises {args.capability!r}{where}")
    else:
        print("no agents connected" if not args.all else "no agents known")
    return 0


# -------------------------------------------------------------------- tasks


async def task(client: Client, args: argparse.Namespace) -> int:
    sub = args.task_command
    if sub == "list":
        tasks = await client.list_tasks(status=args.status, agent_id=args.agent, limit=args.limit)
        if args.json:
            out.print_json(tasks)
        else:
            print(out.tasks_table(tasks) if tasks else "no tasks")
        return 0
    if sub == "cancel":
        t = await client.cancel_task(args.task_id, args.reason)
        out.show_task(t, args.json)
        return 0
    if sub == "assign":
        if args.quiet and args.wait:
            raise UsageError("--quiet prints the task id at once: it does not go with --wait")
        t = await _assign(client, args)
        if args.quiet:
            print(t.id)
            return 0
        if not args.wait:
            out.show_task(t, args.json)
            return 0
        print(f"task {t.id} {t.status} on {t.agent_id or '(queued)'}", file=sys.stderr)
        t = await _wait_with_progress(client, t.id)
    else:
        t = (
            await _wait_with_progress(client, args.task_id)
            if args.wait
            else await client.get_task_status(args.task_id)
        )
    out.show_task(t, args.json)
    return 1 if t.status in ("failed", "cancelled") else 0


async def _assign(client: Client, args: argparse.Namespace) -> TaskAssignment:
    if not args.capability and not args.agent:
        raise UsageError("task assign needs --capability or --agent")
    try:
        return await client.assign_task(
            args.capability,
            parse_object(args.input, "--input"),
            agent_id=args.agent,
            wait_for_agent=args.queue,
            name=args.name,
            timeout_ms=args.timeout_ms,
            max_retries=args.max_retries,
            idempotency_key=args.idempotency_key,
            priority=args.priority,
        )
    except FailedPreconditionError as e:
        # The coordinator names the API field; on the command line it is a flag.
        e.message = e.message.replace("set wait_for_agent to queue it", "--queue queues it")
        raise


async def _wait_with_progress(client: Client, task_id: str) -> TaskAssignment:
    last = ""
    while True:
        t = await client.wait_task(task_id, timeout=0.25)
        line = t.status
        if t.status == "running" and (progress := out.progress_text(t)):
            line += f" {progress}"
        if line != last and not t.finished:
            print(f"  ... {line}", file=sys.stderr, flush=True)
            last = line
        if t.finished:
            return t


# ---------------------------------------------------------------- workflows


async def workflow(client: Client, args: argparse.Namespace) -> int:
    sub = args.workflow_command
    if sub == "define":
        return await _define(client, args)
    if sub == "list":
        infos = await client.list_workflows()
        if args.json:
            out.print_json(infos)
        else:
            print(out.workflows_table(infos) if infos else "no workflows defined")
        return 0
    if sub == "validate":  # with --coordinator (without, it runs locally: _local)
        result = await client.validate_workflow(read_file(args.file))
        for line in out.issue_lines(result.issues, result.issue_count):
            print(line)
        print("valid" if result.valid else "invalid")
        return 0 if result.valid else 1
    print(json.dumps(await client.get_workflow(args.name, args.version), indent=2))
    return 0


async def _define(client: Client, args: argparse.Namespace) -> int:
    if args.name and len(args.files) > 1:
        raise UsageError("--name works with one file only")
    params = parse_params(args.param) if args.param else None
    documents = [(f, read_file(f)) for f in args.files]  # every file readable, or none sent
    for _, data in documents:
        info = await client.define_workflow(args.name or str(data.get("id") or ""), data, params)
        for line in out.issue_lines(info.warnings, len(info.warnings)):
            print(line)
        print(f"defined {info.name} version {info.version}")
    return 0


# --------------------------------------------------------------- executions


async def run_workflow(client: Client, args: argparse.Namespace) -> int:
    if args.quiet and args.follow:
        raise UsageError("--quiet prints the execution id at once: it does not go with --follow")
    e = await client.start_workflow(
        args.workflow,
        parse_object(args.input, "--input"),
        version=args.version,
        idempotency_key=args.idempotency_key,
    )
    if args.quiet:
        print(e.id)
        return 0
    if not args.follow:
        out.show_execution(e, args.json, args.output)
        return 0
    if not args.json:
        print(f"execution {e.id} of {e.workflow_name} v{e.workflow_version}", flush=True)
    say = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    e = await follow(client, e.id, Progress(), say)
    out.show_execution(e, args.json, args.output)
    return 0 if e.status == "completed" else 1


async def executions(client: Client, args: argparse.Namespace) -> int:
    statuses = [s.strip() for item in args.status for s in item.split(",") if s.strip()]
    if args.active:
        statuses.extend(ACTIVE)
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise UsageError(f"--status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    rows = await client.list_executions(
        args.workflow,
        sorted(set(statuses)),
        args.limit,
        query=args.search,
        started_after=None if args.since is None else datetime.now(UTC) - args.since,
        parent_id=args.parent,
    )
    if args.json:
        out.print_json(rows)
    else:
        print(out.executions_table(rows) if rows else "no executions")
    return 0


async def status(client: Client, args: argparse.Namespace) -> int:
    if not args.wait:
        e = await client.get_execution_status(args.execution_id)
        out.show_execution(e, args.json, args.output)
        return 0
    e = await client.wait_execution(args.execution_id)
    out.show_execution(e, args.json, args.output)
    return 0 if e.status == "completed" else 1


async def history(client: Client, args: argparse.Namespace) -> int:
    events = await client.get_execution_history(args.execution_id)
    if not args.raw:
        events = [e for e in events if not out.is_journal_input(e)]
    if args.json:
        out.print_json(events)
    else:
        for e in events:
            print(out.event_line(e))
    return 0


async def control(client: Client, args: argparse.Namespace) -> int:
    if args.command == "pause":
        e = await client.pause_workflow(args.execution_id)
    elif args.command == "resume":
        value = parse_object(args.input, "--input") if args.input else None
        e = await client.resume_workflow(args.execution_id, value)
    else:
        e = await client.stop_workflow(args.execution_id, args.reason)
    out.show_execution(e, False)
    return 0


async def event(client: Client, args: argparse.Namespace) -> int:
    return await _triggers.fire(client, args)


HANDLERS = {
    "events": _observe.events,
    "metrics": _observe.metrics,
    "top": _observe.top,
    "agents": agents,
    "task": task,
    "workflow": workflow,
    "run": run_workflow,
    "executions": executions,
    "status": status,
    "history": history,
    "pause": control,
    "resume": control,
    "stop": control,
    "event": event,
    "service": _services.service,
    "webhook": _webhooks.webhook,
    "trigger": _triggers.trigger,
}
