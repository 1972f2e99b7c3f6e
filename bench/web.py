"""The web face under a dashboard's load: list pages over the HTTP API with many
executions and agents, and the SSE stream with many subscribers.

    python bench/web.py [--executions N] [--agents N] [--subscribers N] [--quick]

It prints figures and never asserts timings. Everything runs on 127.0.0.1.

A ``Coordinator`` (SQLite store in a temporary directory) runs in this process; N agents
(default 200) run in one spawned process; the HTTP clients run in another spawned
process, so the figures are what a browser would wait for, the client's own work aside.

1. **Pages.** With the store holding ``--executions`` finished executions (default 10 000,
   started through the runtime: one ``wait`` step each) and the agents connected, each
   page is fetched ``--requests`` times in a row over one keep-alive connection, as the
   dashboard does: ``ListAgents``, ``ListExecutions`` (50, 200, 1000), ``ListActiveExecutions``,
   ``GetExecutionHistory``, ``GetWorkflow``, ``GetSystemMetrics``, ``GetCaller``. The floor,
   in the same run: ``GET /healthz`` on the same listener (aiohttp alone), and the same
   calls over gRPC (the SDK's channel) for the gateway's cost.
2. **SSE.** ``--subscribers`` (default 200) browser-like subscribers follow
   ``GET /v1/events`` (everything, from now) while executions are started at
   ``--rate`` per second for ``--duration`` seconds. Lag: an event's ``time`` (stamped
   by the coordinator when it was published) -> the moment a subscriber parsed it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import percentile_ms  # noqa: E402
from dispatch import _quiet_logs, machine, rss_kb  # noqa: E402

from workflows import spawn_agents  # noqa: E402

QUICK = {"name": "quick", "steps": [{"id": "w", "type": "wait", "wait": {"durationMs": 1}}]}
PAGES: list[tuple[str, str, dict[str, Any]]] = [
    ("ListAgents", "RegistryService/ListAgents", {}),
    ("ListExecutions 50", "ExecutionService/ListExecutions", {"limit": 50}),
    ("ListExecutions 200", "ExecutionService/ListExecutions", {"limit": 200}),
    ("ListExecutions 1000", "ExecutionService/ListExecutions", {"limit": 1000}),
    # A text search that matches nothing: every id and input of the store is read.
    ("ListExecutions search", "ExecutionService/ListExecutions", {"query": "no such text"}),
    ("ListActiveExecutions", "ExecutionService/ListActiveExecutions", {}),
    ("GetWorkflow", "WorkflowService/GetWorkflow", {"name": "quick"}),
    ("GetSystemMetrics", "MetricsService/GetSystemMetrics", {}),
    ("GetCaller", "RegistryService/GetCaller", {}),
]


# --------------------------------------------------------------------------- the clients


async def _pages(base: str, history_of: str, requests: int) -> dict[str, list[float]]:
    import httpx

    pages = [*PAGES, ("GetExecutionHistory", "ExecutionService/GetExecutionHistory",
                      {"executionId": history_of})]  # fmt: skip
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(5):
            await http.get("/healthz")
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            (await http.get("/healthz")).raise_for_status()
            times.append(time.perf_counter() - t0)
        out["GET /healthz (floor)"] = times
        for name, path, body in pages:
            await http.post(f"/agentmesh.v1.{path}", json=body)  # warm
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await http.post(f"/agentmesh.v1.{path}", json=body)
                r.raise_for_status()
                r.json()
                times.append(time.perf_counter() - t0)
            out[name] = times
    return out


async def _subscribers(base: str, n: int, conn: Connection) -> dict[str, Any]:
    import aiohttp

    lags: list[float] = []
    received = [0] * n
    ready = asyncio.Event()
    connected = [0]

    async def follow(i: int, session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/v1/events") as r:
            connected[0] += 1
            if connected[0] == n:
                ready.set()
            buffer = b""
            async for chunk in r.content.iter_any():
                now = time.time()
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    # What a browser's onmessage does first (find the data), without a
                    # full JSON parse: the client shares the cores with the coordinator.
                    if not block.startswith(b"id: "):
                        continue
                    at = block.find(b'"time":"')
                    if at >= 0:
                        stamp = block[at + 8 : block.index(b'"', at + 8)].decode()
                        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                        lags.append(now - when.timestamp())
                        received[i] += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(follow(i, session)) for i in range(n)]
        await asyncio.wait_for(ready.wait(), 60)
        conn.send(("ready", {}))
        await asyncio.to_thread(conn.recv)  # "stop"
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"lags": lags, "received": received, "rss_kb": rss_kb()}


def _client(kind: str, args: tuple[Any, ...], conn: Connection) -> None:
    """Entry point of the spawned client process."""
    try:
        if kind == "pages":
            conn.send(("done", asyncio.run(_pages(*args))))
        else:
            base, n = args
            conn.send(("done", asyncio.run(_subscribers(base, n, conn))))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        conn.close()


def spawn_client(kind: str, *args: Any) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_client, args=(kind, args, child), name=f"bench-web-{kind}")
    proc.start()
    child.close()
    return proc, parent


async def receive(conn: Connection, timeout: float) -> tuple[str, Any]:
    if not await asyncio.to_thread(conn.poll, timeout):
        raise TimeoutError("the client process sent nothing in time")
    kind, info = conn.recv()
    return str(kind), info


# --------------------------------------------------------------------------- the run


async def grpc_floor(address: str, history_of: str, requests: int) -> dict[str, list[float]]:
    from agent_sdk import Client

    out: dict[str, list[float]] = {}
    async with Client(address, timeout=30) as client:
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "ListAgents": client.list_agents,
            "ListExecutions 50": lambda: client.list_executions(limit=50),
            "ListExecutions 1000": lambda: client.list_executions(limit=1000),
            "GetExecutionHistory": lambda: client.get_execution_history(history_of),
        }
        for name, fn in calls.items():
            await fn()
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                await fn()
                times.append(time.perf_counter() - t0)
            out[name] = times
    return out


def row(name: str, times: list[float], floor: float | None = None) -> str:
    mean = sum(times) / len(times) * 1000
    ratio = f"{mean / floor:8.1f}x" if floor else " " * 9
    return (
        f"{name:<24} {percentile_ms(times, 50):8.2f} {percentile_ms(times, 99):8.2f}"
        f" {mean:8.2f} {ratio}"
    )


async def sse_part(
    c: Any, runtime: Any, admin: Any, drained: Callable[[], Awaitable[None]], args: Any
) -> None:
    """Part 2 (module docstring): the subscribers follow while executions start."""
    proc, conn = spawn_client("sse", c.http.url, args.subscribers)
    await receive(conn, 120)
    started = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.duration:
        await runtime.start_workflow("quick", {"live": started})
        started += 1
        await asyncio.sleep(max(0.0, started / args.rate - (time.perf_counter() - t0)))
    await drained()
    await admin.close()
    await asyncio.sleep(1.0)  # the last events reach every subscriber
    conn.send("stop")
    _, sse = await receive(conn, 60)
    proc.join(10)
    lags = sse["lags"]
    per = sse["received"]
    print(
        f"\nSSE: {args.subscribers} subscribers, {started} executions at "
        f"{args.rate}/s for {args.duration:.0f} s; {len(lags)} events delivered "
        f"({min(per)}..{max(per)} per subscriber, {len(lags) / args.duration:.0f}/s in all)"
    )
    if lags:
        print(
            f"lag ms: p50 {percentile_ms(lags, 50):.1f}  p90 {percentile_ms(lags, 90):.1f}"
            f"  p99 {percentile_ms(lags, 99):.1f}  max {max(lags) * 1000:.1f}"
        )
    print(f"RSS: coordinator {rss_kb() / 1024:.0f} MiB, subscribers' process "
          f"{sse['rss_kb'] / 1024:.0f} MiB")  # fmt: skip


async def main_async(args: argparse.Namespace) -> None:
    from coordinator.server import Coordinator
    from tests.conftest import fast_settings

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = fast_settings(
            state_persistence="sqlite",
            store_path=str(Path(tmp) / "web.db"),
            max_subscribers=max(1000, args.subscribers + 10),
            concurrency_limit=100_000,
        )
        c = Coordinator(settings)
        await c.start()
        agents = spawn_agents(c.address, args.agents, 1)
        try:
            runtime = c.runtime
            assert runtime is not None and c.http is not None
            from agent_sdk import Client

            admin = Client(c.address, timeout=30)
            await admin.define_workflow("quick", QUICK)

            async def drained() -> None:
                for _ in range(3000):  # at most 10 minutes
                    if not await admin.list_active_executions():
                        return
                    await asyncio.sleep(0.2)
                raise TimeoutError("executions still running after 10 minutes")

            if args.sse_only:
                await agents.recv("ready", 120)
                profile = cProfile.Profile() if args.profile else None
                if profile is not None:
                    profile.enable()
                await sse_part(c, runtime, admin, drained, args)
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                    print(f"profile of the coordinator's process: {args.profile}")
                return
            t0 = time.perf_counter()
            ids = [
                (await runtime.start_workflow("quick", {"n": i})).record.id
                for i in range(args.executions)
            ]
            await drained()
            print(
                f"store: {args.executions} executions started and finished in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            await agents.recv("ready", 120)
            print(f"agents: {args.agents} connected (one process)")

            proc, conn = spawn_client("pages", c.http.url, ids[-1], args.requests)
            _, pages = await receive(conn, 600)
            proc.join(10)
            floors = await grpc_floor(c.address, ids[-1], args.requests)
            floor = sum(pages["GET /healthz (floor)"]) / args.requests * 1000
            print(f"\npages over HTTP ({args.requests} requests each, one connection), ms:")
            print(f"{'page':<24} {'p50':>8} {'p99':>8} {'mean':>8} {'/healthz':>9}")
            for name, times in pages.items():
                print(row(name, times, floor))
            print("\nthe same over gRPC (SDK Client), ms; HTTP/gRPC is the gateway's cost:")
            for name, times in floors.items():
                http_mean = sum(pages[name]) / len(pages[name])
                grpc_mean = sum(times) / len(times)
                print(f"{row(name, times)}  HTTP/gRPC {http_mean / grpc_mean:5.2f}")

            await sse_part(c, runtime, admin, drained, args)
        finally:
            await agents.stop()
            agents.close()
            await c.stop(grace=1.0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--executions", type=int, default=10_000)
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--subscribers", type=int, default=200)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--rate", type=float, default=10.0, help="executions started per second")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="1000 executions, 20 agents, 20 subs")
    p.add_argument("--sse-only", action="store_true", help="part 2 only (no store, no pages)")
    p.add_argument(
        "--profile", default="", metavar="FILE", help="with --sse-only: cProfile to FILE"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.executions, args.agents, args.subscribers = 1000, 20, 20
        args.requests, args.duration = 10, 3.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    _quiet_logs()
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()
