"""Webhook delivery throughput: events through the durable outbox to a receiver.

A small aiohttp receiver (``POST /hook``: it checks each signature and notes when the
delivery arrived) runs in its own process. In the benchmark process:

- ``direct``: the floor. ``--events`` signed POSTs of bodies like the outbox's from one
  ``aiohttp.ClientSession`` (the outbox's client), ``--concurrency`` in flight (the
  outbox's default, 16).
- ``outbox <store>``: an in-process coordinator with one webhook (``bench.*``, a named
  secret). ``--events`` live events are emitted into its event log at once; each is
  accepted, stored (a ``delivery`` document), POSTed signed and deleted. Memory, then
  SQLite (a file in a temporary directory).

It prints deliveries per second (first emit to last arrival), the ratio to the floor, and
the latency from the event's time to its arrival (percentiles). It never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _common import free_port, percentile_ms

from agent_sdk import Client
from agentmesh import signing
from coordinator.config import load_settings
from coordinator.server import Coordinator

KEY = "bench-webhook-signing-key-0123456789"


def _receive(port: int) -> None:
    from aiohttp import web

    arrivals: list[float] = []
    latencies: list[float] = []
    bad = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal bad
        body = await request.read()
        now = time.time()
        if signing.check(request.headers.get(signing.HEADER), KEY, body, now):
            bad += 1
            return web.Response(status=401)
        sent = datetime.fromisoformat(json.loads(body)["event"]["time"]).timestamp()
        arrivals.append(now)
        latencies.append(now - sent)
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "latencies": latencies, "bad": bad})

    async def reset(request: web.Request) -> web.Response:
        nonlocal bad
        arrivals.clear()
        latencies.clear()
        bad = 0
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _collect(http: httpx.AsyncClient, n: int, timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = (await http.get("/stats")).json()
        if len(got["arrivals"]) >= n or time.monotonic() > end:
            return got
        await asyncio.sleep(0.05)


def _body(i: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    event = {"position": i, "type": "bench.tick", "time": now, "data": {"i": i}}
    return json.dumps({"id": str(i), "webhook": "direct", "event": event}).encode()


async def _direct(base: str, n: int, concurrency: int) -> tuple[float, dict[str, Any]]:
    import aiohttp

    async with httpx.AsyncClient(base_url=base) as http:
        await http.post("/reset")
        queue = iter(range(n))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.time()

            async def worker() -> None:
                for i in queue:
                    body = _body(i)
                    signature = signing.sign(KEY, body, int(time.time()))
                    headers = {"Content-Type": "application/json", signing.HEADER: signature}
                    async with session.post(f"{base}/hook", data=body, headers=headers) as r:
                        r.raise_for_status()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        got = await _collect(http, n, 5)
        return len(got["arrivals"]) / (max(got["arrivals"]) - start), got


async def _outbox(
    base: str, n: int, store: str, directory: str, concurrency: int
) -> tuple[float, dict[str, Any]]:
    overrides: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "http_listen": "",
        "state_persistence": store,
        "webhook_concurrency": concurrency,
    }
    if store == "sqlite":
        overrides["store_path"] = os.path.join(directory, "bench.db")
    os.environ["AGENTMESH_SECRET_BENCH_KEY"] = KEY
    coordinator = Coordinator(load_settings(overrides=overrides, environ={}))
    await coordinator.start()
    try:
        async with httpx.AsyncClient(base_url=base) as http, Client(coordinator.address) as c:
            await http.post("/reset")
            await c.register_webhook("bench.*", f"{base}/hook", secret_ref="bench-key")
            term = coordinator.term
            assert term is not None
            start = time.time()
            for i in range(n):
                term.log.emit("bench.tick", data={"i": i})
            got = await _collect(http, n, 120)
            return len(got["arrivals"]) / (max(got["arrivals"]) - start), got
    finally:
        await coordinator.stop(grace=1.0)


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    receiver = mp.get_context("spawn").Process(target=_receive, args=(port,), daemon=True)
    receiver.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(100):
                try:
                    await http.get("/stats")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        runs: list[tuple[str, float, dict[str, Any]]] = []
        rate, got = await _direct(base, args.events, args.concurrency)
        runs.append(("direct aiohttp", rate, got))
        with tempfile.TemporaryDirectory() as directory:
            for store in ("memory", "sqlite"):
                rate, got = await _outbox(base, args.events, store, directory, args.concurrency)
                runs.append((f"outbox {store}", rate, got))
    finally:
        receiver.terminate()
        receiver.join(5)

    print(f"webhook deliveries: {args.events} events, {args.concurrency} in flight")
    header = f"{'path':<16} {'arrived':>8} {'per s':>8} {'ratio':>6}"
    print(f"{header} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>9} {'bad sig':>8}")
    floor = runs[0][1]
    for name, rate, got in runs:
        lat = got["latencies"] or [0.0]
        print(
            f"{name:<16} {len(got['arrivals']):>8} {rate:>8.0f} {rate / floor:>6.2f} "
            f"{percentile_ms(lat, 50):>8.1f} {percentile_ms(lat, 90):>8.1f} {percentile_ms(lat, 99):>9.1f} {got['bad']:>8}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="--events 500")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.events = 500
    asyncio.run(main(parsed))
