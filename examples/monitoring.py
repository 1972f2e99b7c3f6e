"""The seed's monitoring example ("Start a workflow", "Monitor workflow metrics"), on the SDK.

Against a coordinator that has ``project_setup`` and its six agents, e.g.::

    agentmesh demo --keep-running        # or: agentmesh serve --workflow-dir workflows
                                         #     and agentmesh agent planner|executor|...
    python examples/monitoring.py --coordinator localhost:50051

It starts ``project_setup``, prints every event of the execution as it happens (the
seed's ``subscribeToEvents({executionId}, callback)``), and the system's performance
(``getSystemMetrics()``) every ``--interval`` seconds, until the execution ends.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent_sdk import Client, Event

INPUT = {
    "requirements": "Build a React dashboard application with TypeScript",
    "constraints": "Must use React 18 and TypeScript 4.5+",
    "priority": "high",
    "projectName": "dashboard-app",
}


async def run_project_setup_workflow(orchestrator: Client, finished: asyncio.Event) -> Any:
    execution = await orchestrator.start_workflow("project_setup", INPUT)
    print(f"Workflow started with execution ID: {execution.id}")

    def on_event(event: Event) -> None:
        print(f"Event: {event.type} - {event.step_id or ''} - {event.message or ''}")
        if event.type == "execution.completed":
            print("Workflow completed successfully!")
            print("Output:", (event.data or {}).get("output"))
            finished.set()
        elif event.type in ("execution.failed", "execution.cancelled"):
            print("Workflow failed:", event.error or event.message)
            finished.set()

    # From the start of its log (from_sequence=1 would skip nothing of it either):
    # whatever happened before the subscription is replayed, then it follows live.
    subscription = await orchestrator.subscribe_to_events(
        {"executionId": execution.id}, on_event, from_start=True
    )
    return subscription


async def monitor_system_performance(orchestrator: Client, interval: float) -> None:
    while True:
        metrics = await orchestrator.get_system_metrics()
        print("System Performance:")
        print(f"- Active workflows: {metrics.active_workflows}")
        print(f"- Tasks per second: {metrics.tasks_per_second:.2f}")
        print(f"- Error rate: {100 * metrics.error_rate:.2f}%")
        print(f"- CPU utilization: {metrics.cpu:.2f}%")
        print(f"- Memory usage: {round(metrics.memory / 1024 / 1024)} MB")
        print(f"- Status: {metrics.health_status}")
        if metrics.health_status != "healthy":  # Alert if system is not healthy
            print("System health degraded - check agent status!")
        await asyncio.sleep(interval)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", default=None, help="default $AGENTMESH_COORDINATOR")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    args = parser.parse_args()
    async with Client(args.coordinator) as orchestrator:
        finished = asyncio.Event()
        subscription = await run_project_setup_workflow(orchestrator, finished)
        monitor = asyncio.create_task(monitor_system_performance(orchestrator, args.interval))
        await finished.wait()
        monitor.cancel()
        await subscription.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
