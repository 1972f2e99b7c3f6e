"""``agentmesh trigger list | fire``: what starts executions by itself."""

from __future__ import annotations

import argparse
import sys

from agent_sdk import Client
from agentmesh.cli import _output as out


def add_commands(trigger: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The ``trigger`` subcommands."""
    sub = trigger.add_subparsers(dest="trigger_command", required=True, metavar="COMMAND")
    tlist = sub.add_parser(
        "list",
        help="the event triggers and schedules of the namespace's definitions",
        parents=[common],
    )
    tlist.add_argument("--json", action="store_true")
    fire = sub.add_parser(
        "fire",
        help="send an event: wakes waiting steps, starts triggered workflows",
        description="The same as 'agentmesh event': TriggerEvent. With --id, a second fire "
        "with the same id starts no second execution of a triggered workflow.",
        parents=[common],
    )
    fire.add_argument("name")
    fire.add_argument("--payload", default="{}", help="JSON object, or @FILE")
    fire.add_argument("--key", default="", help="correlation key")
    fire.add_argument("--id", default="", help="the event's id (default: fresh)")


async def trigger(client: Client, args: argparse.Namespace) -> int:
    """The ``trigger`` command (``args.trigger_command`` says which)."""
    if args.trigger_command == "list":
        triggers = await client.list_triggers()
        if args.json:
            out.print_json(triggers)
        elif not triggers:
            print("no triggers in the namespace's definitions")
        else:
            rows = []
            for t in triggers:
                what = f"event {t.event}" + (f" if {t.filter}" if t.filter else "")
                if t.cron:
                    what = f"cron {t.cron} (missed: {t.missed})"
                nxt = t.next_fire.isoformat(timespec="seconds") if t.next_fire else "-"
                rows.append([t.workflow, str(t.index), what, nxt])
            print(out.table(["WORKFLOW", "#", "TRIGGER", "NEXT"], rows))
        return 0
    return await fire(client, args)


async def fire(client: Client, args: argparse.Namespace) -> int:
    """``trigger fire`` and ``event``: TriggerEvent, and what it woke and started."""
    from agentmesh.cli._commands import parse_object

    result = await client.trigger_event(
        args.name, parse_object(args.payload, "--payload"), args.key, event_id=args.id
    )
    print(f"delivered to {result.delivered} waiting execution(s)")
    for execution_id in result.started:
        print(f"started {execution_id}")
    for refusal in result.refused:
        print(f"not started: {refusal}", file=sys.stderr)
    return 0
