"""Fairness benchmark: does one tenant's flood leave another tenant's dispatch latency alone?

    python bench/fairness.py [--duration S] [--warmup S] [--quota N | --no-quota]
                             [--clients K] [--batch N] [--quick]

It prints figures and never asserts timings. Everything runs on 127.0.0.1.

Five processes: a ``Coordinator`` (memory store, port 0) in a spawned process of its own,
so that no load generator shares its event loop; team-b's agent in a second; team-a's
agents in a third; team-a's flood in a fourth; and this process, which runs team-b's
client and keeps time. Namespace team-a has the quota ``queuedTasks`` (``--quota``,
default 200; ``--no-quota``: none).

- team-b (the tenant measured): one agent (``--b-concurrency``, default 1) whose handler
  returns at once, and one client loop here making closed-loop round trips, one at a time:
  ``assign_task(wait_for_agent=True)`` then ``wait_task``. Each round trip's latency is
  the "dispatch latency" reported (p50, p99, max).
- team-a (the flood): ``--a-agents`` agents (2) of ``--a-concurrency`` (2) whose handler
  sleeps ``--a-work-ms`` (5 ms), so they take at most 800 tasks/s and team-a's queue
  fills; and ``--clients`` (8) client loops, one ``Client`` (channel) each, in one process,
  submitting as fast as they can (``assign_task``, or ``bulk_assign_tasks`` of
  ``--batch`` tasks), never waiting for a task. A refusal (``ResourceExhaustedError``)
  is counted and the loop goes on at once.

Two phases in one run, team-b's loop running throughout: ``baseline`` (team-b alone:
warmup, then a window of ``--duration``), then ``flood`` (the flood starts, warmup, then
a window of ``--duration``). A round trip counts in a window when it started and ended in
it; so does a flood call. The windows are ``time.monotonic()`` instants, which every
process on the host reads from the same clock. Printed: team-b's round trips/s and
p50/p99/max in each phase, the ratio p99(flood)/p99(baseline) next to its target
(<= 2.0, never asserted), team-a's accepted, refused and completed tasks per second, each
process's CPU share, and the highest count of team-a tasks queued for an agent, sampled in
the coordinator process every 5 ms (an O(1) read of the count the quota check uses) from
the flood's start to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from dispatch import Child, CpuMeter, _quiet_logs, machine, quantile, rss_kb

from agent_sdk import Agent, Client, ResourceExhaustedError, RpcError, Task, TaskRequest

CAPABILITY = "work"
TEAM_A = "team-a"  # the flood
TEAM_B = "team-b"  # the tenant measured
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0
SAMPLE_INTERVAL_S = 0.005  # how often the coordinator process reads team-a's queued count
WAIT_TASK_TIMEOUT_S = 30.0
ERROR_PAUSE_S = 0.01  # after an error other than a refusal (so a dead peer is no busy loop)


def coordinator_overrides(quota: int, rate: float = 0.0) -> dict[str, Any]:
    """The coordinator's ``load_settings`` overrides: default settings but the store
    (memory: no file left behind) and, unless ``quota`` is 0, team-a's queuedTasks."""
    overrides: dict[str, Any] = {"listen": "127.0.0.1:0", "state_persistence": "memory"}
    if quota > 0:
        entry: dict[str, float] = {"queuedTasks": quota}
        if rate > 0:
            entry["tasksPerSecond"] = rate
        overrides["namespace_quotas"] = {TEAM_A: entry}
    return overrides


# --------------------------------------------------------------------------- child processes
#
# Children are started with the "spawn" method and talk to the parent over a Pipe: they
# send ("ready", info) once serving, then answer the parent's requests until "stop", which
# they answer with ("stopped", info) before shutting down. The flood sends ("result", info)
# at the end of its window instead, and exits.


async def _recv_async(conn: Connection) -> Any:
    return await asyncio.to_thread(conn.recv)


async def _until_closed(conn: Connection) -> None:
    """Return once the parent's end of the pipe is closed (or it sends anything)."""
    with contextlib.suppress(EOFError, OSError):
        await _recv_async(conn)


async def _coordinator_main(overrides: dict[str, Any], conn: Connection) -> None:
    from coordinator.config import load_settings
    from coordinator.server import Coordinator

    coordinator = Coordinator(load_settings(overrides=overrides, environ={}))
    await coordinator.start()
    sampler: asyncio.Task[None] | None = None
    try:
        mesh = coordinator.mesh
        assert mesh is not None
        # The per-namespace count the queuedTasks check reads: O(1), unlike Mesh.counts
        # (a pass over every retained task, up to 100 000 of them in --no-quota runs).
        dispatch = mesh._dispatch
        peak = 0

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, dispatch.queued_in(TEAM_A))
                await asyncio.sleep(SAMPLE_INTERVAL_S)

        sampler = asyncio.create_task(sample(), name="queued-sampler")
        conn.send(("ready", {"address": coordinator.address, "pid": os.getpid()}))
        while True:
            msg = await _recv_async(conn)
            if msg == "reset":
                peak = dispatch.queued_in(TEAM_A)
                conn.send(("reset", {}))
            elif msg == "sample":
                queued = dispatch.queued_in(TEAM_A)
                conn.send(("sample", {"max_queued": max(peak, queued), "queued": queued}))
            else:
                break  # "stop"
        figures = {"rss_kb": rss_kb(), "retained": len(mesh.tasks)}
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        await coordinator.stop(grace=1.0)
        conn.send(("stopped", figures))
    finally:
        if sampler is not None:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        await coordinator.stop(grace=1.0)  # safe to call twice


async def _agents_main(
    address: str, namespace: str, n: int, concurrency: int, work_ms: float, conn: Connection
) -> None:
    delay = work_ms / 1000

    async def work(task: Task) -> dict[str, Any]:
        if delay > 0:
            await asyncio.sleep(delay)
        return {"i": task.input.get("i", 0)}

    agents = []
    for i in range(n):
        agent = Agent(
            f"{namespace}-{i}",
            address,
            max_concurrency=concurrency,
            drain_timeout=1.0,
            namespace=namespace,
        )
        agent.add_capability(CAPABILITY, work)
        agents.append(agent)
    serving = [asyncio.create_task(a.serve()) for a in agents]
    try:
        for a in agents:
            await a.wait_connected(READY_TIMEOUT_S)
        conn.send(("ready", {"pid": os.getpid()}))
        while await _recv_async(conn) == "count":
            conn.send(("count", {"completed": sum(a.stats.completed for a in agents)}))
        # anything else: "stop"
        conn.send(
            (
                "stopped",
                {
                    "rss_kb": rss_kb(),
                    "received": sum(a.stats.received for a in agents),
                    "completed": sum(a.stats.completed for a in agents),
                },
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(a.shutdown(grace=0.5) for a in agents)), 5.0)
    finally:
        for t in serving:
            t.cancel()
        await asyncio.gather(*serving, return_exceptions=True)


@dataclass
class FloodCounts:
    """What the flood's loops did inside the window."""

    accepted: int = 0  # tasks
    refused: int = 0  # tasks (a refused bulk call refuses all of its tasks)
    errors: dict[str, int] = field(default_factory=dict)  # other RpcErrors, by class
    accepted_calls: list[float] = field(default_factory=list)  # call latencies, s
    refused_calls: list[float] = field(default_factory=list)


async def _flood_main(
    address: str, namespace: str, loops: int, batch: int, conn: Connection
) -> None:
    clients = [Client(address, namespace=namespace) for _ in range(loops)]
    try:
        for c in clients:  # connect every channel before the flood starts
            await c.get_coordinator_info()
        conn.send(("ready", {"pid": os.getpid()}))
        msg = await _recv_async(conn)
        if not (isinstance(msg, tuple) and msg[0] == "go"):
            return  # "stop" before any flood
        _, start, end = msg
        counts = FloodCounts()
        monotonic = time.monotonic
        # The parent sends nothing more: its end closing (it was interrupted) stops the flood.
        parent_gone = asyncio.create_task(_until_closed(conn))

        async def flood(client: Client) -> None:
            k = 0
            while (t0 := monotonic()) < end and not parent_gone.done():
                k += 1
                try:
                    if batch == 1:
                        await client.assign_task(CAPABILITY, {"i": k})
                    else:
                        await client.bulk_assign_tasks(
                            [
                                TaskRequest(capability=CAPABILITY, input={"i": k * batch + j})
                                for j in range(batch)
                            ]
                        )
                    accepted = True
                except ResourceExhaustedError:
                    accepted = False
                except RpcError as e:
                    t1 = monotonic()
                    if start <= t0 and t1 <= end:
                        name = type(e).__name__
                        counts.errors[name] = counts.errors.get(name, 0) + 1
                    await asyncio.sleep(ERROR_PAUSE_S)
                    continue
                t1 = monotonic()
                if start <= t0 and t1 <= end:
                    if accepted:
                        counts.accepted += batch
                        counts.accepted_calls.append(t1 - t0)
                    else:
                        counts.refused += batch
                        counts.refused_calls.append(t1 - t0)

        await asyncio.gather(*(flood(c) for c in clients))
        if parent_gone.done():
            return
        acc = sorted(counts.accepted_calls)
        ref = sorted(counts.refused_calls)
        conn.send(
            (
                "result",
                {
                    "accepted": counts.accepted,
                    "refused": counts.refused,
                    "errors": counts.errors,
                    "accepted_p50": quantile(acc, 0.50),
                    "accepted_p99": quantile(acc, 0.99),
                    "refused_p50": quantile(ref, 0.50),
                    "refused_p99": quantile(ref, 0.99),
                    "rss_kb": rss_kb(),
                },
            )
        )
    finally:
        for c in clients:
            await c.close()


def _child(role: str, args: tuple[Any, ...], conn: Connection) -> None:
    """Entry point of every spawned process."""
    _quiet_logs()
    mains: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
        "coordinator": _coordinator_main,
        "agents": _agents_main,
        "flood": _flood_main,
    }
    try:
        asyncio.run(mains[role](*args, conn))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # interrupted, or the parent went away
    finally:
        conn.close()


def spawn(role: str, *args: Any) -> Child:
    """One of this benchmark's processes (``_child`` runs its role)."""
    return Child.spawn(role, *args, entry=_child)


# --------------------------------------------------------------------------- measurement

# The processes whose CPU is shown, in column order.
PROCESSES = ("coord", "b-agent", "a-agents", "flood", "b-client")


@dataclass
class Phase:
    """One window's figures."""

    name: str
    duration: float
    trips: int = 0
    failed: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    cpu: list[float] = field(default_factory=list)  # share of one core, PROCESSES order
    host_busy: float = float("nan")
    host_steal: float = 0.0
    flood: dict[str, Any] | None = None  # the flood process's figures (flood phase)
    a_completed: int | None = None  # tasks team-a's agents completed in the window

    def summarize(self, trips: Sequence[tuple[float, float, bool]], start: float) -> None:
        end = start + self.duration
        inside = [(t0, t1, ok) for t0, t1, ok in trips if start <= t0 and t1 <= end]
        self.trips = len(inside)
        self.failed = sum(1 for *_, ok in inside if not ok)
        lat = sorted(t1 - t0 for t0, t1, _ in inside)
        self.p50_ms = quantile(lat, 0.50) * 1000
        self.p99_ms = quantile(lat, 0.99) * 1000
        self.max_ms = lat[-1] * 1000 if lat else float("nan")


@dataclass
class Report:
    phases: list[Phase]
    quota: int
    max_queued: int
    queued_at_end: int
    b_errors: dict[str, int]


async def b_loop(
    client: Client,
    stop: asyncio.Event,
    trips: list[tuple[float, float, bool]],
    errors: dict[str, int],
) -> None:
    """Team-b's closed loop: one round trip (assign_task + wait_task) at a time."""
    monotonic = time.monotonic
    k = 0
    while not stop.is_set():
        k += 1
        t0 = monotonic()
        try:
            assigned = await client.assign_task(CAPABILITY, {"i": k}, wait_for_agent=True)
            done = await client.wait_task(assigned.id, WAIT_TASK_TIMEOUT_S)
            ok = done.status == "completed"
        except RpcError as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            trips.append((t0, monotonic(), False))
            await asyncio.sleep(ERROR_PAUSE_S)
            continue
        trips.append((t0, monotonic(), ok))


async def sleep_until(instant: float) -> None:
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


async def measure_window(phase: Phase, start: float, pids: Sequence[int]) -> None:
    """Wait for ``start``, then meter the CPU of ``pids`` over the phase's window."""
    await sleep_until(start)
    meter = CpuMeter(pids)
    meter.start()
    await sleep_until(start + phase.duration)
    phase.cpu, phase.host_busy, phase.host_steal = meter.stop()


async def run(args: argparse.Namespace) -> Report:
    quota = 0 if args.no_quota else args.quota
    children: list[Child] = []
    try:
        coordinator = spawn("coordinator", coordinator_overrides(quota, args.rate))
        children.append(coordinator)
        address = (await coordinator.recv("ready", READY_TIMEOUT_S))["address"]
        b_agent = spawn("agents", address, TEAM_B, 1, args.b_concurrency, 0.0)
        a_agents = spawn(
            "agents", address, TEAM_A, args.a_agents, args.a_concurrency, args.a_work_ms
        )
        flood = spawn("flood", address, TEAM_A, args.clients, args.batch)
        children += [b_agent, a_agents, flood]
        for child in (b_agent, a_agents, flood):
            await child.recv("ready", READY_TIMEOUT_S)
        pids = [coordinator.pid, b_agent.pid, a_agents.pid, flood.pid, os.getpid()]

        trips: list[tuple[float, float, bool]] = []
        b_errors: dict[str, int] = {}
        stop = asyncio.Event()
        async with Client(address, namespace=TEAM_B) as client:
            await client.get_coordinator_info()  # connect before the clock starts
            loop = asyncio.create_task(b_loop(client, stop, trips, b_errors), name="team-b")
            try:
                # Baseline: team-b alone.
                baseline = Phase("baseline", args.duration)
                base_start = time.monotonic() + args.warmup
                await measure_window(baseline, base_start, pids)
                # Flood: it starts now; its window (and team-b's) after the warmup.
                await coordinator.ask("reset")
                flooded = Phase("flood", args.duration)
                flood_start = time.monotonic() + args.warmup
                flood.conn.send(("go", flood_start, flood_start + args.duration))
                await sleep_until(flood_start)
                a_before = (await a_agents.ask("count"))["completed"]
                await measure_window(flooded, flood_start, pids)
                a_after = (await a_agents.ask("count"))["completed"]
                flooded.a_completed = a_after - a_before
                stop.set()
                await asyncio.wait_for(asyncio.shield(loop), WAIT_TASK_TIMEOUT_S + 5)
            finally:
                stop.set()
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
        flooded.flood = await flood.recv("result", DRAIN_TIMEOUT_S + 30)
        sample = await coordinator.ask("sample")
        baseline.summarize(trips, base_start)
        flooded.summarize(trips, flood_start)
        for child in (b_agent, a_agents):
            await child.stop()
        await coordinator.stop()
        return Report(
            phases=[baseline, flooded],
            quota=quota,
            max_queued=sample["max_queued"],
            queued_at_end=sample["queued"],
            b_errors=b_errors,
        )
    finally:
        for child in reversed(children):  # the coordinator last
            child.close()


# --------------------------------------------------------------------------- report


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def _num(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def table(phases: Sequence[Phase]) -> str:
    cpu_width = 9 * len(PROCESSES) + 4
    head2 = (
        f"{'':<8} {'team-b round trips':^32} | {'team-a tasks/s':^26}"
        f" | {'CPU share (100% = one core; host: all cores)':^{cpu_width}}"
    )
    head = (
        f"{'phase':<8} {'trips/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        f" | {'accepted':>8} {'refused':>8} {'done':>8}"
        f" | {' '.join(f'{p:>8}' for p in PROCESSES)} {'host':>4}"
    )
    lines = [head2.rstrip(), head, "-" * len(head)]
    for p in phases:
        if p.flood is None:
            acc = ref = done = "-"
        else:
            acc = f"{p.flood['accepted'] / p.duration:,.0f}"
            ref = f"{p.flood['refused'] / p.duration:,.0f}"
            done = "-" if p.a_completed is None else f"{p.a_completed / p.duration:,.0f}"
        notes = []
        if p.failed:
            notes.append(f"{p.failed} round trips FAILED")
        if p.host_steal >= 0.01:
            notes.append(f"steal {p.host_steal:.0%}")
        lines.append(
            f"{p.name:<8} {p.trips / p.duration:>8,.0f} {_num(p.p50_ms, '.2f'):>7}"
            f" {_num(p.p99_ms, '.2f'):>7} {_num(p.max_ms, '.2f'):>7}"
            f" | {acc:>8} {ref:>8} {done:>8}"
            f" | {' '.join(f'{_pct(c):>8}' for c in p.cpu)} {_pct(p.host_busy):>4}"
            f"  {'; '.join(notes)}".rstrip()
        )
    return "\n".join(lines)


def _ms(x: float) -> str:
    return _num(x * 1000, ".2f")


def summary(report: Report, args: argparse.Namespace) -> list[str]:
    baseline, flooded = report.phases
    ratio = flooded.p99_ms / baseline.p99_ms if baseline.p99_ms > 0 else float("nan")
    lines = [f"team-b p99 flood/baseline (target <= 2.0): {_num(ratio, '.2f')}"]
    quota = str(report.quota) if report.quota else "none"
    verdict = ""
    if report.quota:
        verdict = ": within it" if report.max_queued <= report.quota else ": OVER THE QUOTA"
    lines.append(
        f"team-a queued for an agent (sampled every {SAMPLE_INTERVAL_S * 1000:g} ms, flood start "
        f"to end): max {report.max_queued:,}, quota {quota}{verdict}; "
        f"{report.queued_at_end:,} at the end"
    )
    f = flooded.flood or {}
    call = "assign_task" if args.batch == 1 else f"bulk_assign_tasks of {args.batch}"
    errors = f.get("errors") or {}
    other = ", ".join(f"{n} {k}" for k, n in sorted(errors.items())) or "no other errors"
    lines.append(
        f"team-a flood: {args.clients} client loops, {call}; call latency p50/p99: accepted "
        f"{_ms(f.get('accepted_p50', math.nan))}/{_ms(f.get('accepted_p99', math.nan))} ms, "
        f"refused {_ms(f.get('refused_p50', math.nan))}/{_ms(f.get('refused_p99', math.nan))} ms; "
        f"{other}"
    )
    if report.b_errors:
        failed = ", ".join(f"{n} {k}" for k, n in sorted(report.b_errors.items()))
        lines.append(f"team-b errors: {failed}")
    return lines


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM cancels like Ctrl-C does, so every finally block stops its processes.
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    report = await run(args)
    print()
    print(table(report.phases))
    print()
    for line in summary(report, args):
        print(line)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s phases, 0.3 s warmup")
    p.add_argument("--quota", type=int, default=200, help="team-a's queuedTasks quota")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="team-a's tasksPerSecond quota too (0: none; needs --quota)",
    )
    p.add_argument("--no-quota", action="store_true", help="flood without any quota")
    p.add_argument("--clients", type=int, default=8, help="team-a's concurrent client loops")
    p.add_argument(
        "--batch", type=int, default=1, help="tasks per flood call (1: assign_task, else bulk)"
    )
    p.add_argument("--a-agents", type=int, default=2, help="team-a's agents")
    p.add_argument("--a-concurrency", type=int, default=2, help="max_concurrency of each")
    p.add_argument("--a-work-ms", type=float, default=5.0, help="team-a's handler sleep, ms")
    p.add_argument("--b-concurrency", type=int, default=1, help="team-b agent's max_concurrency")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 1.0, 0.3
    for name in ("clients", "batch", "a_agents", "a_concurrency", "b_concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.quota < 1 and not args.no_quota:
        p.error("--quota must be at least 1 (or use --no-quota)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    began = time.perf_counter()
    quota = "none" if args.no_quota else f"queuedTasks {args.quota}"
    if args.rate and not args.no_quota:
        quota += f", tasksPerSecond {args.rate:g}"
    call = "assign_task" if args.batch == 1 else f"bulk_assign_tasks of {args.batch}"
    print(f"AgentMesh fairness benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(
        f"phases: {args.duration:g} s measured after {args.warmup:g} s warmup each; "
        f"team-a quota: {quota}; flood: {args.clients} client loops, {call}; team-a agents: "
        f"{args.a_agents} x max_concurrency {args.a_concurrency}, {args.a_work_ms:g} ms "
        f"handler; team-b: 1 agent (max_concurrency {args.b_concurrency}), 1 closed loop of "
        "assign_task + wait_task; 127.0.0.1 loopback",
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
