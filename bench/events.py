"""Event-stream benchmark: how many subscribers of every event one coordinator sustains.

    python bench/events.py [--subscribers 0,1,10,50,100,200] [--rate 1000] [--duration 10]
                           [--warmup 2] [--source tasks|emit] [--procs 2] [--channels 4]
                           [--batch-delay MS] [--quick] [--profile]

It prints figures and never asserts them. Everything runs on 127.0.0.1.

For each subscriber count S, a fresh ``Coordinator`` (memory store, no HTTP listener,
otherwise default settings: ``monitoring_enabled`` on, ``subscriber_buffer`` 2000) runs
in this process, and an event source makes about ``--rate`` live events per second:

- ``--source tasks`` (the default): real work. Two SDK agents (capability ``echo``) run in
  one spawned process, and a load process calls ``Client.bulk_assign_tasks`` every 10 ms
  with the tasks owed by then, at ``rate / 4`` tasks per second: each task makes four
  live events (``task.submitted``, ``task.assigned``, ``task.acked``, ``task.finished``).
- ``--source emit``: no tasks; a loop in the coordinator's event loop calls
  ``coordinator.term.log.emit("bench.tick", ...)`` every 10 ms with the events owed by then.
  This isolates the event stream from the task path.

S subscribers run in up to ``--procs`` spawned processes (never the coordinator's), each
holding its share of the S event streams (empty filter: every event, from now;
``EventService.SubscribeBatches`` with ``max_delay_ms`` 5 as the SDK asks, or
``Subscribe``, one message per event, with ``--batch-delay -1``) spread over up to
``--channels`` channels (one TCP connection each). A subscriber's delivery lag for an
event is its receive wall time minus the event's ``time`` (set by the coordinator when
the event happened; same machine clock). A stream
that ends ``RESOURCE_EXHAUSTED`` (the subscriber fell ``subscriber_buffer`` events
behind) is counted as cut and not resumed.

Only the window after the warmup counts: events received in it, and the CPU each
process used in it.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import cProfile
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import grpc

# Helpers shared with the dispatch benchmark (that module has no import-time side effects).
from dispatch import (
    DRAIN_TIMEOUT_S,
    OTHERS_NOTED,
    READY_TIMEOUT_S,
    Child,
    _num,
    _pct,
    _quiet_logs,
    cpu_seconds,
    host_ticks,
    machine,
    other_load,
    print_profile,
    quantile,
    rss_kb,
    wait_for_agents,
)

CAPABILITY = "echo"  # what dispatch's agents process serves
EVENTS_PER_TASK = 4  # submitted, assigned, acked, finished
TICK_S = 0.01  # the sources' pacing
AGENTS = 2
TARGET_SUBSCRIBERS = 100
TARGET_P99_MS = 50.0


# --------------------------------------------------------------------------- child processes


async def _recv_async(conn: Connection) -> Any:
    return await asyncio.to_thread(conn.recv)


async def _load_main(address: str, tasks_per_s: float, conn: Connection) -> None:
    """Submit ``tasks_per_s`` tiny tasks per second (bulk calls every TICK_S) until "stop"."""
    from agent_sdk import Client, TaskRequest

    sent = 0
    failed_calls = 0
    stop = asyncio.Event()

    async def pace(client: Client) -> None:
        nonlocal sent, failed_calls
        start = time.perf_counter()
        k = 0
        while not stop.is_set():
            owed = int((time.perf_counter() - start) * tasks_per_s) - sent
            if owed > 0:
                batch = min(owed, 500)
                reqs = [
                    TaskRequest(capability=CAPABILITY, input={"i": i}, max_retries=0)
                    for i in range(k, k + batch)
                ]
                k += batch
                try:
                    await client.bulk_assign_tasks(reqs)
                    sent += batch
                except Exception:  # overloaded or going away: count it, keep pacing
                    failed_calls += 1
                    sent += batch  # do not try to catch up on what failed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)

    async with Client(address) as client:
        conn.send(("ready", {"pid": os.getpid()}))
        pacing = asyncio.create_task(pace(client))
        try:
            await _recv_async(conn)  # "stop"
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pacing, DRAIN_TIMEOUT_S)
    conn.send(("stopped", {"sent": sent, "failed_calls": failed_calls, "rss_kb": rss_kb()}))


@dataclass
class _Stream:
    received: int = 0  # inside the window
    cut: bool = False  # ended RESOURCE_EXHAUSTED
    cut_at: float = 0.0  # when (wall time)
    ended: str = ""  # another status it ended with before the stop


async def _subscribers_main(
    address: str, streams: int, channels: int, delay_ms: int, conn: Connection
) -> None:
    """Hold ``streams`` event streams over ``channels`` channels (``SubscribeBatches``
    with ``max_delay_ms=delay_ms``, or ``Subscribe`` when ``delay_ms`` < 0); count
    deliveries and lags inside the window the parent sends (("window", start, end) in
    wall time)."""
    from agentmesh.v1 import monitoring_pb2, monitoring_pb2_grpc

    # A local subchannel pool: each channel gets its own TCP connection.
    chans = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, min(channels, streams)))
    ]
    stubs = [monitoring_pb2_grpc.EventServiceStub(ch) for ch in chans]
    state = [_Stream() for _ in range(streams)]
    lags = array.array("d")
    window = [float("inf"), float("inf")]
    registered = 0
    all_registered = asyncio.Event()
    stopping = False
    wall = time.time

    async def follow(i: int) -> None:
        nonlocal registered
        s = state[i]
        request = monitoring_pb2.SubscribeRequest(filter=monitoring_pb2.EventFilter())
        stub = stubs[i % len(stubs)]
        call: Any
        if delay_ms < 0:
            call = stub.Subscribe(request)
        else:
            call = stub.SubscribeBatches(
                monitoring_pb2.SubscribeBatchesRequest(subscription=request, max_delay_ms=delay_ms)
            )
        try:
            await call.initial_metadata()  # sent once the subscription is registered
            registered += 1
            if registered == streams:
                all_registered.set()
            async for message in call:
                now = wall()
                if window[0] <= now <= window[1]:
                    for event in message.events if delay_ms >= 0 else (message,):
                        s.received += 1
                        t = event.time
                        lags.append(now - (t.seconds + t.nanos * 1e-9))
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                s.cut = True
                s.cut_at = wall()
            elif not stopping:
                s.ended = e.code().name

    tasks = [asyncio.create_task(follow(i)) for i in range(streams)]
    try:
        await asyncio.wait_for(all_registered.wait(), READY_TIMEOUT_S)
        conn.send(("ready", {"pid": os.getpid()}))
        _, start, end = await _recv_async(conn)  # ("window", start, end)
        window[:] = [start, end]
        await _recv_async(conn)  # "stop"
        stopping = True
        ended: dict[str, int] = {}
        for s in state:
            if s.ended:
                ended[s.ended] = ended.get(s.ended, 0) + 1
        conn.send(
            (
                "stopped",
                {
                    "received": [s.received for s in state],
                    "cut": sum(s.cut for s in state),
                    "cut_at": [s.cut_at for s in state if s.cut],
                    "ended": ended,
                    "lags": lags.tobytes(),
                    "rss_kb": rss_kb(),
                },
            )
        )
    finally:
        stopping = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in chans:
            await ch.close()


def _child(role: str, args: tuple[Any, ...], conn: Connection) -> None:
    """Entry point of this benchmark's spawned processes."""
    _quiet_logs()
    mains: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
        "load": _load_main,
        "subscribers": _subscribers_main,
    }
    try:
        asyncio.run(mains[role](*args, conn))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # interrupted, or the parent went away
    finally:
        conn.close()


# --------------------------------------------------------------------------- measurement


@dataclass
class Result:
    subscribers: int
    procs: int
    emitted_per_s: float  # events the log published in the window, per second
    per_sub_mean: float = float("nan")  # events/s received by a subscriber, mean
    per_sub_min: float = float("nan")  # ... and by the slowest one
    deliveries_per_s: float = 0.0
    lag_ms: dict[str, float] = field(default_factory=dict)
    cut: int = 0
    first_cut_s: float = float("nan")  # the first cut, seconds after the window started
    ended: dict[str, int] = field(default_factory=dict)
    coord_cpu: float = float("nan")  # the coordinator's process, share of one core
    loop_cpu: float = float("nan")  # its main (event-loop) thread
    subs_cpu: float = float("nan")  # all subscriber processes together
    source_cpu: float = float("nan")  # agents + load processes together
    host_busy: float = float("nan")
    host_steal: float = 0.0
    coord_rss_mb: float = 0.0
    source_note: str = ""


def coordinator_settings(subscribers: int) -> Any:
    from coordinator.config import load_settings

    return load_settings(
        overrides={
            "listen": "127.0.0.1:0",
            "state_persistence": "memory",
            "http_listen": "",
            "max_subscribers": max(1000, subscribers + 10),
        },
        environ={},
    )


async def _emit_forever(log: Any, rate: float) -> None:
    """``--source emit``: ``rate`` live events per second, paced every TICK_S."""
    start = time.perf_counter()
    emitted = 0
    while True:
        owed = int((time.perf_counter() - start) * rate) - emitted
        for i in range(emitted, emitted + max(0, owed)):
            log.emit("bench.tick", data={"i": i})
        emitted += max(0, owed)
        await asyncio.sleep(TICK_S)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def run(
    subscribers: int, args: argparse.Namespace, profile: cProfile.Profile | None
) -> Result:
    from coordinator.server import Coordinator

    coordinator = Coordinator(coordinator_settings(subscribers))
    await coordinator.start()
    children: list[Child] = []
    emitter: asyncio.Task[None] | None = None
    try:
        term, mesh = coordinator.term, coordinator.mesh
        assert term is not None and mesh is not None
        address = coordinator.address
        # Subscribers first, so the source's first events already reach them.
        procs = max(1, min(args.procs, subscribers))
        subs = [
            Child.spawn("subscribers", address, k, args.channels, args.batch_delay, entry=_child)
            for k in _split(subscribers, procs)
            if k
        ]
        children += subs
        agents = load = None
        if args.source == "tasks":
            agents = Child.spawn("agents", address, AGENTS, None)  # dispatch's agents process
            children.append(agents)
        for child in subs:
            await child.recv("ready", READY_TIMEOUT_S)
        if agents is not None:
            await agents.recv("ready", READY_TIMEOUT_S)
            await wait_for_agents(mesh, AGENTS, READY_TIMEOUT_S)
            load = Child.spawn("load", address, args.rate / EVENTS_PER_TASK, entry=_child)
            children.append(load)
            await load.recv("ready", READY_TIMEOUT_S)
        else:
            emitter = asyncio.create_task(_emit_forever(term.log, args.rate))
        source_pids = [c.pid for c in (agents, load) if c is not None]

        start = time.time() + args.warmup
        end = start + args.duration
        for child in subs:
            child.conn.send(("window", start, end))
        await asyncio.sleep(max(0.0, start - time.time()))
        me = os.getpid()
        loop_thread = f"{me}/task/{me}"

        def cpu() -> list[float]:
            return [
                cpu_seconds(me),
                cpu_seconds(loop_thread),
                sum(cpu_seconds(c.pid) for c in subs),
                sum(cpu_seconds(p) for p in source_pids),
            ]

        cpu0, host0, t0, published0 = cpu(), host_ticks(), time.perf_counter(), term.log.published
        if profile is not None:
            profile.enable()
        await asyncio.sleep(max(0.0, end - time.time()))
        if profile is not None:
            profile.disable()
        elapsed = time.perf_counter() - t0
        cpu1, host1, published1 = cpu(), host_ticks(), term.log.published
        shares = [(b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)]
        total, idle, steal = (b - a for a, b in zip(host0, host1, strict=True))
        await asyncio.sleep(0.2)  # events of the window's last instant still in flight

        result = Result(
            subscribers=subscribers,
            procs=len(subs),
            emitted_per_s=(published1 - published0) / elapsed,
            coord_cpu=shares[0],
            loop_cpu=shares[1],
            subs_cpu=shares[2] if subs else float("nan"),
            source_cpu=shares[3] if source_pids else float("nan"),
            host_busy=(total - idle) / total if total > 0 else float("nan"),
            host_steal=steal / total if total > 0 else 0.0,
            coord_rss_mb=rss_kb() / 1024,
        )
        received: list[int] = []
        lags = array.array("d")
        for child in subs:
            figures = await child.stop()
            received += figures["received"]
            lags.frombytes(figures["lags"])
            result.cut += figures["cut"]
            for at in figures["cut_at"]:
                if math.isnan(result.first_cut_s) or at - start < result.first_cut_s:
                    result.first_cut_s = at - start
            for status, k in figures["ended"].items():
                result.ended[status] = result.ended.get(status, 0) + k
        if received:
            result.per_sub_mean = sum(received) / len(received) / args.duration
            result.per_sub_min = min(received) / args.duration
            result.deliveries_per_s = sum(received) / args.duration
        ordered = sorted(lags)
        result.lag_ms = {
            q: quantile(ordered, v) * 1000
            for q, v in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        }
        if emitter is not None:
            emitter.cancel()
            result.source_note = "log.emit in the coordinator's loop"
        if load is not None:
            figures = await load.stop()
            failed = figures["failed_calls"]
            result.source_note = f"{args.rate / EVENTS_PER_TASK:,.0f} tasks/s" + (
                f", {failed} bulk calls FAILED" if failed else ""
            )
        if agents is not None:
            await agents.stop()
        return result
    finally:
        if emitter is not None:
            emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await emitter
        try:
            for child in children:
                child.close()
        finally:
            await coordinator.stop(grace=1.0)


# --------------------------------------------------------------------------- report


def per_delivery_us(r: Result, base: Result | None) -> tuple[float, float]:
    """CPU microseconds per delivery: the coordinator's above the run without
    subscribers (``base``), and the subscriber processes'. nan when not meaningful (no
    deliveries, no baseline, or streams were cut: the CPU then averages over a window
    whose end had fewer streams)."""
    nan = float("nan")
    if not r.deliveries_per_s or r.cut:
        return nan, nan
    coord = (r.coord_cpu - base.coord_cpu) / r.deliveries_per_s * 1e6 if base else nan
    return coord, r.subs_cpu / r.deliveries_per_s * 1e6


def table(results: Sequence[Result]) -> str:
    base = next((r for r in results if r.subscribers == 0), None)
    head2 = (
        f"{'':>4} {'':>5} {'':>7} | {'ev/s per sub':^13} {'':>9} | {'delivery lag ms':^27}"
        f" | {'':>3} | {'CPU share':^24} | {'us/delivery':^11} | {'RSS':>4}"
    )
    head = (
        f"{'subs':>4} {'procs':>5} {'emitted':>7} | {'mean':>6} {'min':>6} {'total/s':>9}"
        f" | {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} | {'cut':>3}"
        f" | {'coord':>5} {'loop':>4} {'subs':>4} {'src':>4} {'host':>4}"
        f" | {'coord':>5} {'subs':>5} | {'MB':>4}"
    )
    lines = [head2, head, "-" * (len(head) + 8)]
    for r in results:
        lag = [_num(r.lag_ms.get(q, float("nan")), ".1f") for q in ("p50", "p95", "p99", "max")]
        coord_us, subs_us = per_delivery_us(r, base)
        notes = [r.source_note] if r.source_note else []
        if r.cut:
            notes.append(f"first cut {r.first_cut_s:+.1f} s into the window")
        if r.ended:
            notes.append("ended " + ", ".join(f"{k} {v}" for k, v in sorted(r.ended.items())))
        if r.host_steal >= 0.01:
            notes.append(f"steal {r.host_steal:.0%}")
        others = other_load(
            r.host_busy,
            [x for x in (r.coord_cpu, r.subs_cpu, r.source_cpu) if not math.isnan(x)],
        )
        if others >= OTHERS_NOTED:
            notes.append(f"other processes {others:.0%}")
        lines.append(
            f"{r.subscribers:>4} {r.procs:>5} {r.emitted_per_s:>7,.0f}"
            f" | {_num(r.per_sub_mean, ',.0f'):>6} {_num(r.per_sub_min, ',.0f'):>6}"
            f" {r.deliveries_per_s:>9,.0f}"
            f" | {lag[0]:>6} {lag[1]:>6} {lag[2]:>6} {lag[3]:>6} | {r.cut:>3}"
            f" | {_pct(r.coord_cpu):>5} {_pct(r.loop_cpu):>4} {_pct(r.subs_cpu):>4}"
            f" {_pct(r.source_cpu):>4} {_pct(r.host_busy):>4}"
            f" | {_num(coord_us, '.0f'):>5} {_num(subs_us, '.0f'):>5} | {r.coord_rss_mb:>4.0f}"
            f"  {'; '.join(notes)}".rstrip()
        )
    return "\n".join(lines)


def cost_line(results: Sequence[Result], rate: float) -> str | None:
    """What the target would take at the CPU per delivery measured without cuts."""
    base = next((r for r in results if r.subscribers == 0), None)
    clean = [(r, *per_delivery_us(r, base)) for r in results if r.subscribers and not r.cut]
    clean = [c for c in clean if not math.isnan(c[1])]
    if not clean:
        return None
    r, coord_us, subs_us = max(clean, key=lambda c: c[0].subscribers)
    need = TARGET_SUBSCRIBERS * rate
    return (
        f"CPU per delivery at {r.subscribers} subscribers (the largest run without cuts): "
        f"coordinator {coord_us:.0f} us above the source alone, subscribers {subs_us:.0f} us; "
        f"{TARGET_SUBSCRIBERS} subscribers x {rate:,.0f} ev/s = {need:,.0f} deliveries/s "
        f"would take ~{coord_us * need / 1e6:.1f} cores of coordinator CPU (one event loop) "
        f"and ~{subs_us * need / 1e6:.1f} of subscriber CPU"
    )


def target_line(results: Sequence[Result], rate: float) -> str:
    with_subs = [r for r in results if r.subscribers]
    if not with_subs:
        return f"no subscriber run; target: {TARGET_SUBSCRIBERS} subscribers @ {rate:.0f} ev/s"
    r = next(
        (r for r in with_subs if r.subscribers == TARGET_SUBSCRIBERS),
        max(with_subs, key=lambda r: r.subscribers),
    )
    extra = []
    if r.cut:
        extra.append(f"{r.cut} of {r.subscribers} streams cut RESOURCE_EXHAUSTED")
    if r.per_sub_mean < 0.95 * r.emitted_per_s:
        extra.append(f"a subscriber received {r.per_sub_mean:,.0f} of {r.emitted_per_s:,.0f} ev/s")
    return (
        f"{r.subscribers} subscribers @ {rate:.0f} ev/s: p99 lag "
        f"{_num(r.lag_ms.get('p99', float('nan')), '.1f')} ms (target < {TARGET_P99_MS:.0f} ms)"
        + (f"; {'; '.join(extra)}" if extra else "")
    )


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM cancels like Ctrl-C does, so every finally block stops its processes.
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    counts = [int(x) for x in args.subscribers.split(",") if x.strip()]
    profile = cProfile.Profile() if args.profile else None
    results: list[Result] = []
    for n in counts:
        r = await run(n, args, profile)
        results.append(r)
        print(
            f"  subscribers={n:<4} emitted {r.emitted_per_s:>6,.0f} ev/s, "
            f"p99 lag {_num(r.lag_ms.get('p99', float('nan')), '.1f')} ms, cut {r.cut}",
            file=sys.stderr,
            flush=True,
        )
    print()
    print(table(results))
    print()
    cost = cost_line(results, args.rate)
    if cost is not None:
        print(cost)
    print(target_line(results, args.rate))
    if profile is not None:
        print_profile(profile, args.profile_lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--subscribers",
        default="0,1,10,50,100,200",
        help="subscriber counts, comma-separated (0: the source alone, a baseline)",
    )
    p.add_argument("--rate", type=float, default=1000.0, help="events per second to make")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s runs, 1 s warmup")
    p.add_argument(
        "--source",
        choices=("tasks", "emit"),
        default="tasks",
        help="tasks: real tiny tasks (agents + a paced bulk_assign_tasks client); "
        "emit: log.emit from a loop inside the coordinator",
    )
    p.add_argument(
        "--batch-delay",
        type=int,
        default=5,
        help="SubscribeBatches' max_delay_ms, as the SDK sends it (5); -1: Subscribe, "
        "one message per event",
    )
    p.add_argument("--procs", type=int, default=2, help="subscriber processes (at most)")
    p.add_argument("--channels", type=int, default=4, help="channels per subscriber process")
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the coordinator's process during the windows and print the top "
        "functions by own time (slows it down: for where time goes, not for figures)",
    )
    p.add_argument("--profile-lines", type=int, default=30)
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    began = time.perf_counter()
    print(f"AgentMesh event-stream benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(
        f"runs: {args.duration:g} s measured after {args.warmup:g} s warmup; "
        f"{args.rate:g} ev/s from {args.source}; subscribers {args.subscribers} in up to "
        f"{args.procs} process(es), {args.channels} channel(s) each; "
        + (
            f"SubscribeBatches max_delay_ms={args.batch_delay}"
            if args.batch_delay >= 0
            else "Subscribe"
        )
        + "; 127.0.0.1 loopback",
        flush=True,
    )
    try:
        asyncio.run(main_async(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    print(f"total runtime {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
