"""External service calls: what the coordinator adds to an HTTP call.

A small aiohttp service (``GET /item/{id}`` answering a short JSON object) runs in its own
process. In the benchmark process, the same closed loop (``--concurrency`` calls in
flight) runs twice against it for ``--duration`` seconds each:

- ``direct``: ``httpx.AsyncClient`` straight to the service (the floor);
- ``via coordinator``: ``Client.call_external_service`` to an in-process coordinator,
  which makes the same call through its ``httpx`` pool and policies (no cache, no rate
  limit, the breaker on);
- ``service step``: a one-step workflow (``type: service``) started and awaited
  (``start_workflow`` + ``wait_execution``): the call plus the engine's durable turns (the
  start, the call's answer, the end), on the in-memory store.

It prints calls per second, latency percentiles, the ratio and the added latency per call.
It never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _common import free_port, percentile_ms

from agent_sdk import Client
from coordinator.config import load_settings
from coordinator.server import Coordinator


def _serve(port: int) -> None:
    from aiohttp import web

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "ok": True})

    app = web.Application()
    app.router.add_get("/item/{id}", item)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, duration: float, warmup: float
) -> tuple[float, list[float]]:
    """Calls per second and the latencies (seconds) of the measured window."""
    latencies: list[float] = []
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration
    counted = 0

    async def worker(w: int) -> None:
        nonlocal counted
        i = w
        while (now := time.monotonic()) < stop_at:
            await call(i)
            done = time.monotonic()
            if now >= measure_from:
                latencies.append(done - now)
                counted += 1
            i += concurrency

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return counted / duration, latencies


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(100):  # wait for the service
                try:
                    await http.get("/item/0")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)

            async def direct(i: int) -> object:
                r = await http.get(f"/item/{i}")
                r.raise_for_status()
                return r.json()

            rate_d, lat_d = await _loop(direct, args.concurrency, args.duration, args.warmup)

        coordinator = Coordinator(
            load_settings(overrides={"listen": "127.0.0.1:0", "http_listen": ""}, environ={})
        )
        await coordinator.start()
        try:
            async with Client(coordinator.address, timeout=30) as client:
                await client.register_external_service(
                    "bench", base, operations={"item": "GET /item/{id}"}, max_attempts=1
                )

                async def via(i: int) -> object:
                    return (await client.call_external_service("bench", "item", {"id": i})).value

                rate_v, lat_v = await _loop(via, args.concurrency, args.duration, args.warmup)
                step: dict[str, Any] = {"id": "get", "type": "service", "service": "bench"}
                step |= {"operation": "item", "input": {"id": "$.input.id"}}
                await client.define_workflow("bench-step", {"steps": [step]})

                async def in_step(i: int) -> object:
                    started = await client.start_workflow("bench-step", {"id": i})
                    done = await client.wait_execution(started.id, timeout=30)
                    if done.status != "completed":
                        raise RuntimeError(f"execution {done.id} {done.status}: {done.error}")
                    return done.output

                rate_s, lat_s = await _loop(in_step, args.concurrency, args.duration, args.warmup)
        finally:
            await coordinator.stop(grace=1.0)
    finally:
        server.terminate()
        server.join(5)

    print(f"external service calls, concurrency {args.concurrency}, {args.duration:g} s each")
    print(f"{'path':<16} {'calls/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    runs = (
        ("direct httpx", rate_d, lat_d),
        ("via coordinator", rate_v, lat_v),
        ("service step", rate_s, lat_s),
    )
    for name, rate, lat in runs:
        print(
            f"{name:<16} {rate:>9.0f} {percentile_ms(lat, 50):>8.2f} {percentile_ms(lat, 90):>8.2f} "
            f"{percentile_ms(lat, 99):>8.2f}"
        )
    floor = statistics.median(lat_d)
    for name, rate, lat in runs[1:]:
        added = (statistics.median(lat) - floor) * 1000
        print(f"{name}/direct throughput {rate / rate_d:.2f}; added latency p50 {added:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="--duration 1 --warmup 0.3")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.duration, parsed.warmup = 1.0, 0.3
    asyncio.run(main(parsed))
