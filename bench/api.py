"""The public API end to end against the bare gRPC floor, in one run: bulk submission with
its completions, and the sequential submit-and-wait round trip.

    python bench/api.py [--duration S] [--warmup S] [--agents N] [--quick]

It prints figures and never asserts timings. Everything runs on 127.0.0.1: the
coordinator (default settings, memory store) in this process, N SDK agents
(``max_concurrency=1``, echo) in one spawned process, each client in another.

- **bare N / bare 1**: the floor (``dispatch.run_bare``): N streams, one 118-byte message
  each way per task, and one stream in lock-step (its p50 is the bare round trip).
- **bulk+wait_task**: each of 2 client loops submits 64 tasks (``bulk_assign_tasks``) and
  waits for each with its own ``wait_task`` call (what the API offered before ``WaitTasks``).
- **bulk+as_completed**: the same submissions, the completions on one ``WaitTasks``
  stream per batch (``Client.as_completed``).
- **seq assign+wait** / **seq run_task**: one loop, one task at a time: ``assign_task``
  then ``wait_task`` (two round trips), or ``run_task`` (one).

Ratios printed: bulk paths over bare N tasks/s (target >= 0.7), sequential p50 over the
bare lock-step p50 (target <= 2.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dispatch import (  # noqa: E402
    CAPABILITY,
    READY_TIMEOUT_S,
    Child,
    CpuMeter,
    _quiet_logs,
    bulk_round,
    coordinator_settings,
    machine,
    quantile,
    rss_kb,
    run_bare,
    wait_for_agents,
)

MODES = ("bulk+wait_task", "bulk+as_completed", "seq assign+wait", "seq run_task")


async def _client_main(
    address: str,
    mode: str,
    warmup: float,
    duration: float,
    batch: int,
    workers: int,
    conn: Connection,
) -> None:
    from agent_sdk import Client

    counted = failed = 0
    latencies: list[float] = []
    async with Client(address) as client:
        start = time.perf_counter()
        window_start, window_end = start + warmup, start + warmup + duration
        last_done = window_start

        async def bulk(w: int) -> None:
            nonlocal counted, failed, last_done
            k = 0
            while time.perf_counter() < window_end:
                began = time.perf_counter()
                streamed = mode == "bulk+as_completed"
                done = await bulk_round(client, batch, w * 10_000_000 + k, streamed=streamed)
                k += batch
                now = time.perf_counter()
                if began >= window_start:
                    counted += len(done)
                    failed += sum(1 for t in done if t.status != "completed")
                    last_done = max(last_done, now)

        async def sequential() -> None:
            nonlocal counted, failed, last_done
            k = 0
            while time.perf_counter() < window_end:
                began = time.perf_counter()
                if mode == "seq run_task":
                    done = await client.run_task(CAPABILITY, {"i": k}, timeout=60.0)
                else:
                    assigned = await client.assign_task(CAPABILITY, {"i": k})
                    done = await client.wait_task(assigned.id, 60.0)
                k += 1
                now = time.perf_counter()
                if began >= window_start:
                    counted += 1
                    failed += done.status != "completed"
                    latencies.append(now - began)
                    last_done = now

        if mode.startswith("seq"):
            await sequential()
        else:
            await asyncio.gather(*(bulk(w) for w in range(workers)))
    latencies.sort()
    conn.send(
        (
            "result",
            {
                "tasks": counted,
                "elapsed": max(last_done - window_start, 1e-9),
                "failed": failed,
                "p50": quantile(latencies, 0.5) * 1000 if latencies else float("nan"),
                "p99": quantile(latencies, 0.99) * 1000 if latencies else float("nan"),
                "rss_kb": rss_kb(),
                "pid": os.getpid(),
            },
        )
    )


def _child(role: str, args: tuple[Any, ...], conn: Connection) -> None:
    """Entry point of the spawned client process."""
    _quiet_logs()
    try:
        address, mode, warmup, duration, batch, workers = args
        asyncio.run(_client_main(address, mode, warmup, duration, batch, workers, conn))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        conn.close()


async def run_api(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """Each mode against one coordinator and one set of agents."""
    from coordinator.server import Coordinator

    coordinator = Coordinator(coordinator_settings())
    await coordinator.start()
    agents: Child | None = None
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        mesh = coordinator.mesh
        assert mesh is not None
        agents = Child.spawn("agents", coordinator.address, args.agents, None)
        await agents.recv("ready", READY_TIMEOUT_S)
        await wait_for_agents(mesh, args.agents, READY_TIMEOUT_S)
        for mode in MODES:
            client = Child.spawn(
                "api-client",
                coordinator.address,
                mode,
                args.warmup,
                args.duration,
                args.batch,
                args.workers,
                entry=_child,
            )
            profile = cProfile.Profile() if args.profile == mode else None
            try:
                meter = CpuMeter([os.getpid(), agents.pid, client.pid])
                meter.start()
                if profile is not None:
                    profile.enable()
                figures = await client.recv(
                    "result", READY_TIMEOUT_S + args.warmup + args.duration + 30
                )
                if profile is not None:
                    profile.disable()
                    stats = pstats.Stats(profile, stream=sys.stderr)
                    stats.strip_dirs().sort_stats("tottime").print_stats(40)
                cpu, _, _ = meter.stop()
                figures["cpu"] = cpu
                out.append((mode, figures))
                print(
                    f"  {mode:<18} {figures['tasks'] / figures['elapsed']:>9,.0f} tasks/s",
                    file=sys.stderr,
                )
            finally:
                client.close()
        await agents.stop()
    finally:
        if agents is not None:
            agents.close()
        await coordinator.stop(grace=1.0)
    return out


async def main_async(args: argparse.Namespace) -> None:
    bare_n = await run_bare(args.agents, args.warmup, args.duration)
    bare_1 = await run_bare(1, args.warmup, args.duration)
    runs = await run_api(args)
    print()
    print(
        f"{'path':<20} {'tasks/s':>9} {'p50 ms':>7} {'p99 ms':>7}  {'vs bare':>8}  CPU main/agents/client"
    )
    print(
        f"{f'bare {args.agents}':<20} {bare_n.tasks_per_s:>9,.0f} {bare_n.p50_ms:>7.2f} {bare_n.p99_ms:>7.2f}"
    )
    print(
        f"{'bare 1 (lock-step)':<20} {bare_1.tasks_per_s:>9,.0f} {bare_1.p50_ms:>7.2f} {bare_1.p99_ms:>7.2f}"
    )
    for mode, f in runs:
        rate = f["tasks"] / f["elapsed"]
        if mode.startswith("seq"):
            versus = f"{f['p50'] / bare_1.p50_ms:5.1f}x p50"
        else:
            versus = f"{rate / bare_n.tasks_per_s:5.2f} rate"
        cpu = "/".join(f"{c:.0%}" for c in f["cpu"])
        failed = f"  {f['failed']} NOT COMPLETED" if f["failed"] else ""
        print(
            f"{mode:<20} {rate:>9,.0f} {f['p50']:>7.2f} {f['p99']:>7.2f}  {versus:>8}  {cpu}{failed}"
        )
    print(
        "\ntargets: bulk with completions >= 0.7 of bare "
        f"{args.agents} streams; sequential p50 <= 2.5x the bare lock-step p50"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--agents", type=int, default=4, help="agents (and bare streams)")
    p.add_argument("--batch", type=int, default=64, help="tasks per bulk_assign_tasks")
    p.add_argument("--workers", type=int, default=2, help="concurrent bulk client loops")
    p.add_argument("--quick", action="store_true", help="1 s runs, 0.3 s warmup")
    p.add_argument(
        "--profile",
        choices=MODES,
        default="",
        help="cProfile the coordinator's process during this mode (printed by own time)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 1.0, 0.3
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    print(f"machine: {machine()}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
