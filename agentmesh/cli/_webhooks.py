"""``agentmesh webhook register | list | show | delete | dead-letters | redeliver``."""

from __future__ import annotations

import argparse

from agent_sdk import Client
from agentmesh.cli import _output as out


def add_commands(webhook: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The ``webhook`` subcommands."""
    sub = webhook.add_subparsers(dest="webhook_command", required=True, metavar="COMMAND")
    register = sub.add_parser(
        "register",
        help="deliver matching events to a URL, signed",
        description="Events matching EVENT (a type such as execution.completed, a prefix "
        "such as step.*, or *; comma-separated) are POSTed to URL through the durable "
        "outbox, signed with HMAC-SHA256 (AgentMesh-Signature). The key is named with "
        "--secret-ref (a secret of the coordinator's secret provider: recommended) or read "
        "from the environment variable --secret-env names (stored encrypted).",
        parents=[common],
    )
    register.add_argument("event")
    register.add_argument("url")
    register.add_argument("--secret-ref", default="", metavar="SECRET")
    register.add_argument(
        "--secret-env", default="", metavar="VAR", help="a variable holding the key itself"
    )
    register.add_argument("--description", default="")
    register.add_argument("--max-attempts", type=int, default=0, metavar="N")
    wlist = sub.add_parser("list", help="the namespace's webhooks", parents=[common])
    wlist.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="a webhook and its outbox", parents=[common])
    show.add_argument("webhook_id")
    delete = sub.add_parser(
        "delete", help="delete a webhook and its pending deliveries", parents=[common]
    )
    delete.add_argument("webhook_id")
    dead = sub.add_parser(
        "dead-letters", help="deliveries that used up their attempts", parents=[common]
    )
    dead.add_argument("webhook_id", nargs="?", default="")
    dead.add_argument("--json", action="store_true")
    again = sub.add_parser(
        "redeliver", help="put dead letters back in the outbox", parents=[common]
    )
    again.add_argument("webhook_id", nargs="?", default="", help="all of the namespace if omitted")
    again.add_argument("--delivery", action="append", default=[], metavar="ID")


async def webhook(client: Client, args: argparse.Namespace) -> int:
    """The ``webhook`` command (``args.webhook_command`` says which)."""
    import os

    from agentmesh.cli._parser import UsageError

    sub = args.webhook_command
    if sub == "register":
        secret = ""
        if args.secret_env:
            secret = os.environ.get(args.secret_env, "")
            if not secret:
                raise UsageError(f"--secret-env {args.secret_env}: the variable is not set")
        hook = await client.register_webhook(
            args.event,
            args.url,
            secret_ref=args.secret_ref,
            secret=secret,
            description=args.description,
            max_attempts=args.max_attempts,
        )
        print(f"registered webhook {hook.id} ({hook.event} -> {hook.url})")
    elif sub == "list":
        hooks = await client.list_webhooks()
        if args.json:
            out.print_json(hooks)
        elif not hooks:
            print("no webhooks registered")
        else:
            rows = [
                [h.id, h.event, h.url, str(h.pending), str(h.dead_letters), str(h.delivered)]
                for h in hooks
            ]
            print(out.table(["ID", "EVENT", "URL", "PENDING", "DEAD", "DELIVERED"], rows))
    elif sub == "show":
        out.print_json(await client.get_webhook(args.webhook_id))
    elif sub == "delete":
        await client.delete_webhook(args.webhook_id)
        print(f"deleted webhook {args.webhook_id}")
    elif sub == "dead-letters":
        letters = await client.list_dead_letters(args.webhook_id)
        if args.json:
            out.print_json(letters)
        elif not letters:
            print("no dead letters")
        else:
            rows = [[d.id, d.event_type, str(d.attempts), d.last_error[:60]] for d in letters]
            print(out.table(["DELIVERY", "EVENT", "ATTEMPTS", "LAST ERROR"], rows))
    else:
        n = await client.redeliver_dead_letters(args.webhook_id, args.delivery)
        print(f"redelivering {n} dead letter(s)")
    return 0
