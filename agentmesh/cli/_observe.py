"""``agentmesh events``, ``agentmesh metrics`` and ``agentmesh top``: watching the mesh."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from agent_sdk import Client, Event, EventFilter, SystemMetrics, WorkflowMetrics
from agentmesh.cli import _output as out

# ANSI: home the cursor and clear the screen (top's refresh), and clear to the end.
_HOME, _CLEAR_DOWN = "\x1b[H\x1b[2J", "\x1b[J"


def event_line(e: Event) -> str:
    """One event as ``events`` prints it: sequence, time, type, what it concerns."""
    when = e.time.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3] if e.time else ""
    about = " ".join(
        p
        for p in (
            e.execution_id[:12] + (f"/{e.step_id}" if e.step_id else "") if e.execution_id else "",
            f"agent={e.agent_id}" if e.agent_id else "",
            f"task={e.task_id[:12]}" if e.task_id and not e.execution_id else "",
        )
        if p
    )
    msg = f"  {e.message}" if e.message else ""
    if e.error is not None:
        msg = f"  {e.error.type}: {e.error.message}"
    return f"{e.sequence:>8} {when} {e.type:<24} {about}{msg}".rstrip()


async def events(client: Client, args: argparse.Namespace) -> int:
    """Print the matching events already in the log (``--follow``: then follow)."""
    f = EventFilter(args.execution, args.workflow, args.agent, tuple(args.type))
    start = args.from_sequence == 0 or (args.from_sequence is None and not args.follow)
    stream = client.subscribe_to_events(
        f, from_sequence=args.from_sequence or 0, from_start=start, follow=args.follow
    )
    until: str = args.until
    async with stream:
        async for e in stream:
            if args.json:
                print(json.dumps(out.to_jsonable(e)), flush=True)
            else:
                print(event_line(e), flush=True)
            if until and (
                e.type == until or (until.endswith("*") and e.type.startswith(until[:-1]))
            ):
                break
    return 0


def system_lines(s: SystemMetrics) -> list[str]:
    queues = ", ".join(f"{c}={n}" for c, n in sorted(s.queue_sizes.items())) or "none"
    return [
        f"health      {s.health_status}",
        f"workflows   {s.active_workflows} active",
        f"tasks       {s.total_tasks_processed} processed, {s.tasks_per_second:.1f}/s, "
        f"{100 * s.error_rate:.1f}% failed, {s.avg_task_latency_ms:.1f} ms average latency",
        f"agents      {s.active_agents} connected",
        f"queues      {queues}",
        f"resources   cpu {s.cpu:.0f}%, memory {s.memory / 2**20:.0f} MiB, store "
        f"{s.storage / 2**20:.1f} MiB, network in {s.network_in / 2**20:.1f} MiB / out "
        f"{s.network_out / 2**20:.1f} MiB",
    ]


def workflow_lines(w: WorkflowMetrics) -> list[str]:
    lines = [
        f"workflow    {w.workflow_name}",
        f"executions  {w.total_executions} total, {w.active_executions} active, "
        f"{100 * w.success_rate:.1f}% succeeded, {100 * w.error_rate:.1f}% failed, "
        f"{w.average_duration_ms:.1f} ms average",
    ]
    if w.step_metrics:
        rows = [
            (
                step,
                str(m.count),
                f"{m.average_duration_ms:.1f}",
                f"{100 * m.error_rate:.1f}",
                f"{100 * m.retry_rate:.1f}",
            )
            for step, m in sorted(w.step_metrics.items())
        ]
        lines += ["", out.table(("STEP", "RUNS", "AVG MS", "FAIL%", "RETRY%"), rows)]
    if w.agent_utilization:
        shares = [(a, f"{100 * u:.1f}") for a, u in sorted(w.agent_utilization.items())]
        lines += ["", out.table(("AGENT", "SHARE%"), shares)]
    return lines


async def metrics(client: Client, args: argparse.Namespace) -> int:
    """The seed's system metrics, or one workflow's."""
    if args.workflow:
        w = await client.get_workflow_metrics(args.workflow)
        if args.json:
            out.print_json(w)
        else:
            print("\n".join(workflow_lines(w)))
        return 0
    s = await client.get_system_metrics()
    if args.json:
        out.print_json(s)
    else:
        print("\n".join(system_lines(s)))
    return 0


async def frame(client: Client) -> str:
    """One screen of ``top``: the system, the agents, the running executions."""
    s, agents, running = await asyncio.gather(
        client.get_system_metrics(),
        client.list_agents(include_offline=True),
        client.list_executions(statuses=["queued", "running", "paused"], limit=15),
    )
    now = datetime.now(UTC).strftime("%H:%M:%S")
    lines = [f"agentmesh top - {now} - {client.address} (namespace {client.namespace})", ""]
    lines += system_lines(s)
    lines += ["", out.agents_table(agents) if agents else "no agents", ""]
    lines.append(out.executions_table(running) if running else "no running executions")
    return "\n".join(lines)


async def top(client: Client, args: argparse.Namespace) -> int:
    """Refresh ``frame`` every ``--interval`` seconds (``--once``: print one, exit)."""
    if args.once:
        print(await frame(client))
        return 0
    tty = sys.stdout.isatty()
    while True:
        text = await frame(client)
        sys.stdout.write((_HOME if tty else "") + text + ("\n" + _CLEAR_DOWN if tty else "\n\n"))
        sys.stdout.flush()
        await asyncio.sleep(args.interval)
