"""A test agent process: ``python -m tests.agents.worker --coordinator ADDR ...``.

Prints ``READY <agent id>`` once welcomed; WORKER_LOG=INFO shows the SDK's log. Capabilities:
- ``echo``: returns ``{"echo": input}``
- ``sleep``: sleeps ``input.seconds`` reporting progress, returns ``{"slept": s, "pid": pid}``
- ``fail``: raises ValueError(input.message)
- ``flaky``: fails (retryable) until ``attempt >= input.succeed_on``
- ``record``: appends ``task id`` to ``input.path`` then sleeps ``input.seconds``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from agent_sdk import Agent, RetryableTaskError, Task


def build(args: argparse.Namespace) -> Agent:
    agent = Agent(
        args.name,
        args.coordinator,
        max_concurrency=args.max_concurrency,
        agent_id=args.agent_id or None,
        reconnect_max=1.0,
        drain_timeout=args.drain_timeout,
    )
    caps = set(args.capability or ["echo", "sleep", "fail", "flaky", "record"])

    if "echo" in caps:

        @agent.capability("echo")
        async def echo(task: Task) -> dict[str, object]:
            return {"echo": task.input, "agent": args.name}

    if "sleep" in caps:

        @agent.capability("sleep")
        async def sleep(task: Task) -> dict[str, object]:
            seconds = float(task.input.get("seconds", 1.0))
            steps = 4
            for i in range(steps):
                await asyncio.sleep(seconds / steps)
                await task.progress((i + 1) / steps, f"step {i + 1}/{steps}")
            return {"slept": seconds, "pid": os.getpid(), "agent": args.name}

    if "fail" in caps:

        @agent.capability("fail")
        def fail(task: Task) -> None:
            raise ValueError(str(task.input.get("message", "boom")))

    if "flaky" in caps:

        @agent.capability("flaky")
        async def flaky(task: Task) -> dict[str, object]:
            if task.attempt < int(task.input.get("succeed_on", 2)):
                raise RetryableTaskError(f"attempt {task.attempt} failed on purpose")
            return {"attempt": task.attempt}

    if "record" in caps:

        @agent.capability("record")
        async def record(task: Task) -> dict[str, object]:
            with open(str(task.input["path"]), "a") as f:  # noqa: ASYNC230 - tiny test write
                f.write(f"{task.id} {task.attempt} {os.getpid()} {task.idempotency_key}\n")
            await asyncio.sleep(float(task.input.get("seconds", 0)))
            return {"pid": os.getpid()}

    return agent


async def main(args: argparse.Namespace) -> None:
    agent = build(args)
    loop = asyncio.get_running_loop()
    import signal

    loop.add_signal_handler(signal.SIGTERM, agent.request_shutdown)
    serving = asyncio.create_task(agent.serve())
    agent_id = await agent.wait_connected(30)
    print(f"READY {agent_id}", flush=True)
    await serving
    print(f"EXIT completed={agent.stats.completed}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--coordinator", required=True)
    p.add_argument("--name", default="worker")
    p.add_argument("--agent-id", default="")
    p.add_argument("--capability", action="append")
    p.add_argument("--max-concurrency", type=int, default=1)
    p.add_argument("--drain-timeout", type=float, default=30.0)
    logging.basicConfig(
        level=os.environ.get("WORKER_LOG", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    asyncio.run(main(p.parse_args()))
