"""Dispatch benchmark: how many tiny tasks per second the coordinator moves over agent streams.

    python bench/dispatch.py [--duration S] [--warmup S] [--agents 1,4,16] [--quick]
                             [--no-secure] [--observability on|off|both] [--profile]

It prints figures and never asserts timings. Everything runs on 127.0.0.1.

- ``coordinator``: a ``Coordinator`` in this process; N SDK agents (``max_concurrency=1``,
  capability ``echo``) in one spawned process, one stream each. A closed loop keeps exactly
  N tasks outstanding: it submits with ``Mesh.submit`` and learns of completion from a mesh
  listener, so no gRPC hop is spent on submission. Latency is submit -> listener callback.
- ``bare``: the same traffic over a bare grpc.aio bidi stream. A generic bytes-passthrough
  server in this process writes a pre-serialized, TaskDispatch-sized message down each of N
  streams (one channel each, in one spawned process) and waits for the client to echo it
  back: one in flight per stream, same direction as coordinator -> agent -> coordinator.
- ``ratio``: coordinator tasks/s over bare tasks/s for the same N (target >= 0.5).
- ``e2e-api``: the public API end to end: a spawned client process submitting with
  ``Client.bulk_assign_tasks`` (batches of 64) and collecting with one ``wait_task`` per task,
  against the coordinator in this process and 4 SDK agents in another process.
- ``coord+auth`` and ``e2e+auth`` (``--secure``, the default; ``--no-secure`` skips them):
  the coordinator and e2e-api paths again, with TLS on the coordinator's listener and
  bearer-token auth on (``auth_tokens_file``). A local CA, a server certificate for
  127.0.0.1 and a tokens file with one agent token and one client token (role operator)
  are made in a temporary directory (``_secure.make_secure_setup``), removed at the end.
  Agents and client dial over TLS and send their token: the coordinator's auth layer
  verifies each unary call's bearer token (cached per token) and each agent stream once,
  when it opens. coord+auth runs right after the plain coordinator run of the same N.
- ``secure/plain``: coord+auth over coordinator tasks/s for the same N, and e2e+auth over
  e2e-api (target >= 0.85). Printed, never asserted.
- ``coord-nomon`` and ``coord-nolog`` (``--observability both``, the default, or ``off``):
  the coordinator path again for each N, right after its ``coordinator`` line (which has
  metrics, Prometheus counters and live events on, the defaults), with
  ``monitoring_enabled`` off (live events still go into the event log, with no
  subscriber), and with that and no event sink on the mesh (no live events at all). The
  ``observability`` table prints tasks/s and CPU per task of the three, and the ratios;
  ``observability cost`` is 1 - on/no-log (target <= 10 %). Printed, never asserted.

Per run it also prints, for the measurement window: the CPU each process used (share of one
core, all threads, from /proc/<pid>/stat), the host's busy share of all cores (/proc/stat),
CPU microseconds per task in each process, and each process's VmRSS after the run.
"main" is this process (coordinator or bare server), "peer" the agents or bare clients.
``--profile`` profiles the plain coordinator runs only (no bare, e2e or secure runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import math
import multiprocessing
import os
import platform
import pstats
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import grpc
from _secure import SecureSetup, make_secure_setup

CAPABILITY = "echo"
BARE_SERVICE = "agentmesh.bench.Echo"
BARE_METHOD = f"/{BARE_SERVICE}/Stream"
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------- process figures


def rss_kb(pid: int | str = "self") -> int:
    """VmRSS of a process in kB (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process (all threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the ")" of comm: state is fields[0]; utime and stime are stat fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def host_ticks() -> tuple[int, int, int]:
    """(total, idle + iowait, steal) jiffies over all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return (0, 0, 0)
    values += [0] * (8 - len(values))
    return (sum(values), values[3] + values[4], values[7])


class CpuMeter:
    """CPU used by some processes, and by the whole host, between start() and stop()."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._t0 = 0.0
        self._cpu0: list[float] = []
        self._host0 = (0, 0, 0)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = [cpu_seconds(p) for p in self.pids]
        self._host0 = host_ticks()

    def stop(self) -> tuple[list[float], float, float]:
        """Return (share of one core per pid, host busy share, host steal share)."""
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        shares = [
            (cpu_seconds(p) - c) / elapsed for p, c in zip(self.pids, self._cpu0, strict=True)
        ]
        total, idle, steal = (a - b for a, b in zip(host_ticks(), self._host0, strict=True))
        if total <= 0:
            return shares, float("nan"), float("nan")
        return shares, (total - idle) / total, steal / total


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    import google.protobuf

    return (
        f"{cores} cores ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"protobuf {google.protobuf.__version__}, asyncio default loop"
    )


# Noted in the tables when processes other than the benchmark's took this share of one
# core during a window (the figures are then less comparable).
OTHERS_NOTED = 0.10


def other_load(host_busy: float, shares: Sequence[float]) -> float:
    """CPU (share of one core) the host spent outside the given processes' shares."""
    if math.isnan(host_busy) or any(math.isnan(x) for x in shares):
        return 0.0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(0.0, host_busy * cores - sum(shares))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


# --------------------------------------------------------------------------- child processes
#
# Children are started with the "spawn" method and talk to the parent over a Pipe:
# they send ("ready", info) once serving, then wait for "stop" and answer ("stopped", info)
# with their own RSS before shutting down. The e2e client sends ("result", info) instead.


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")


async def _recv_async(conn: Connection) -> Any:
    return await asyncio.to_thread(conn.recv)


async def _agents_main(address: str, n: int, secure: SecureSetup | None, conn: Connection) -> None:
    from agent_sdk import Agent, Task

    # With a SecureSetup: TLS to the coordinator and the agent token on each stream.
    tls = secure.agent_tls() if secure is not None else None
    token = secure.agent_token if secure is not None else None
    agents = []
    for i in range(n):
        agent = Agent(
            f"bench-{i}", address, max_concurrency=1, drain_timeout=2.0, tls=tls, token=token
        )

        @agent.capability(CAPABILITY)
        async def echo(task: Task) -> dict[str, Any]:
            return {"i": task.input["i"]}

        agents.append(agent)
    serving = [asyncio.create_task(a.serve()) for a in agents]
    try:
        ids = [await a.wait_connected(READY_TIMEOUT_S) for a in agents]
        conn.send(("ready", {"agent_ids": ids, "pid": os.getpid()}))
        await _recv_async(conn)  # "stop"
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
            await asyncio.wait_for(asyncio.gather(*(a.shutdown(grace=1.0) for a in agents)), 5.0)
    finally:
        for t in serving:
            t.cancel()
        await asyncio.gather(*serving, return_exceptions=True)


async def _bare_client_main(address: str, n: int, conn: Connection) -> None:
    from agent_sdk._agent import channel_options

    channels = [grpc.aio.insecure_channel(address, options=channel_options()) for _ in range(n)]
    echoed = [0]

    async def echo_stream(channel: Any) -> None:
        call = channel.stream_stream(BARE_METHOD)()  # no serializers: bytes in, bytes out
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await call.write(b"hello")
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                await call.write(msg)
                echoed[0] += 1

    streams = [asyncio.create_task(echo_stream(ch)) for ch in channels]
    try:
        conn.send(("ready", {"pid": os.getpid()}))
        await _recv_async(conn)  # "stop"
        conn.send(("stopped", {"rss_kb": rss_kb(), "echoed": echoed[0]}))
    finally:
        for t in streams:
            t.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        for ch in channels:
            await ch.close()


async def bulk_round(client: Any, batch: int, first: int, *, streamed: bool) -> list[Any]:
    """One round of the e2e paths: ``batch`` echo tasks (inputs ``first``, ``first+1``
    ...) in one ``bulk_assign_tasks``, then their completions: one ``wait_task`` call
    each, or (``streamed``) one ``as_completed`` stream. Returns the finished tasks."""
    from agent_sdk import TaskRequest

    reqs = [TaskRequest(capability=CAPABILITY, input={"i": first + j}) for j in range(batch)]
    assigned = await client.bulk_assign_tasks(reqs)
    if streamed:
        return [t async for t in client.as_completed([a.id for a in assigned], 60.0)]
    return list(await asyncio.gather(*(client.wait_task(a.id, 60.0) for a in assigned)))


async def _e2e_client_main(
    address: str,
    warmup: float,
    duration: float,
    batch: int,
    workers: int,
    secure: SecureSetup | None,
    conn: Connection,
) -> None:
    from agent_sdk import Client

    # With a SecureSetup: TLS to the coordinator and the client token on every call.
    tls = secure.client_tls() if secure is not None else None
    token = secure.client_token if secure is not None else None
    counted = 0
    failed = 0
    async with Client(address, tls=tls, token=token) as client:
        start = time.perf_counter()
        window_start = start + warmup
        window_end = window_start + duration
        last_done = window_start

        async def worker(w: int) -> None:
            nonlocal counted, failed, last_done
            k = 0
            while time.perf_counter() < window_end:
                began = time.perf_counter()
                done = await bulk_round(client, batch, w * 10_000_000 + k, streamed=False)
                k += batch
                now = time.perf_counter()
                if began >= window_start:
                    counted += len(done)
                    failed += sum(1 for t in done if t.status != "completed")
                    last_done = max(last_done, now)

        await asyncio.gather(*(worker(w) for w in range(workers)))
    elapsed = max(last_done - window_start, 1e-9)
    conn.send(
        (
            "result",
            {
                "tasks": counted,
                "elapsed": elapsed,
                "failed": failed,
                "rss_kb": rss_kb(),
                "pid": os.getpid(),
            },
        )
    )


def _child(role: str, args: tuple[Any, ...], conn: Connection) -> None:
    """Entry point of every spawned process."""
    _quiet_logs()
    mains: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
        "agents": _agents_main,
        "bare-client": _bare_client_main,
        "e2e-client": _e2e_client_main,
    }
    try:
        asyncio.run(mains[role](*args, conn))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # interrupted, or the parent went away
    finally:
        conn.close()


@dataclass
class Child:
    """A spawned helper process and the parent's end of its pipe."""

    role: str
    proc: BaseProcess
    conn: Connection
    finished: bool = False  # it sent its last message

    @classmethod
    def spawn(
        cls,
        role: str,
        *args: Any,
        entry: Callable[[str, tuple[Any, ...], Connection], None] | None = None,
    ) -> Child:
        """Start ``entry(role, args, conn)`` (a module-level function, for spawn: this
        module's ``_child`` by default) in a new process."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        target = entry or _child
        proc = ctx.Process(target=target, args=(role, args, child), name=f"bench-{role}")
        proc.start()
        child.close()  # so a dead child shows up as EOF on our end
        return cls(role, proc, parent)

    @property
    def pid(self) -> int:
        return self.proc.pid or 0

    async def recv(self, expect: str, timeout: float) -> dict[str, Any]:
        ready = await asyncio.to_thread(self.conn.poll, timeout)
        if not ready:
            raise TimeoutError(f"{self.role} process sent nothing within {timeout:.0f}s")
        try:
            kind, info = self.conn.recv()
        except EOFError:
            raise RuntimeError(
                f"{self.role} process exited early (exit code {self.proc.exitcode})"
            ) from None
        if kind != expect:
            raise RuntimeError(f"{self.role} process sent {kind!r}, expected {expect!r}")
        self.finished = kind in ("stopped", "result")
        assert isinstance(info, dict)
        return info

    async def ask(self, request: str, timeout: float = DRAIN_TIMEOUT_S) -> dict[str, Any]:
        """Send ``request`` and return the answer (of the same kind)."""
        self.conn.send(request)
        return await self.recv(request, timeout)

    async def stop(self) -> dict[str, Any]:
        """Ask the child for its figures and to shut down; return the figures."""
        self.conn.send("stop")
        return await self.recv("stopped", DRAIN_TIMEOUT_S)

    def close(self) -> None:
        """Make sure the process is gone (always call, from a finally)."""
        self.conn.close()  # a child still waiting for a request sees EOF and exits
        self.proc.join(5.0 if self.finished else 3.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# --------------------------------------------------------------------------- measurement


@dataclass
class Window:
    """Closed-loop bookkeeping shared by the coordinator and bare runs."""

    start: float = float("inf")
    end: float = float("inf")
    completed: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    stopping: bool = False

    def record(self, t0: float, t1: float, ok: bool = True) -> None:
        if self.start <= t1 <= self.end:
            self.completed += 1
            if not ok:
                self.errors += 1
            if t0 >= self.start:
                self.latencies.append(t1 - t0)


@dataclass
class Result:
    path: str
    agents: int
    tasks_per_s: float
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    main_rss_mb: float = 0.0
    peer_rss_mb: float = 0.0
    main_cpu: float = float("nan")  # share of one core
    peer_cpu: float = float("nan")
    host_busy: float = float("nan")  # share of all cores
    host_steal: float = 0.0
    errors: int = 0
    note: str = ""


async def measure(
    window: Window,
    warmup: float,
    duration: float,
    pids: Sequence[int],
    profile: cProfile.Profile | None = None,
) -> Result:
    """Let the load run through warmup and the window, then stop it; return the figures
    (path and agents are filled in by the caller)."""
    await asyncio.sleep(warmup)
    meter = CpuMeter(pids)
    meter.start()
    window.start = time.perf_counter()
    if profile is not None:
        profile.enable()
    await asyncio.sleep(duration)
    window.end = time.perf_counter()
    if profile is not None:
        profile.disable()
    cpu, busy, steal = meter.stop()
    window.stopping = True
    lat = sorted(window.latencies)
    return Result(
        path="",
        agents=0,
        tasks_per_s=window.completed / (window.end - window.start),
        p50_ms=quantile(lat, 0.50) * 1000,
        p99_ms=quantile(lat, 0.99) * 1000,
        main_cpu=cpu[0],
        peer_cpu=cpu[1],
        host_busy=busy,
        host_steal=steal,
    )


def coordinator_settings(secure: SecureSetup | None = None, *, monitoring: bool = True) -> Any:
    """The benchmark coordinator's settings; with ``secure``, TLS and auth on as well;
    ``monitoring=False``: ``monitoring_enabled`` off (no metrics, no Prometheus counters)."""
    from coordinator.config import load_settings

    # Default settings but the store: dispatch never touches it, and the default
    # (agentmesh.db in the working directory) would leave a file behind and lock it.
    # The HTTP listener (/metrics) stays on, as by default, but on a free port: the
    # default 127.0.0.1:8080 may be taken on a shared machine. Nobody scrapes it here.
    overrides: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "state_persistence": "memory",
        "http_listen": "127.0.0.1:0",
    }
    if not monitoring:
        overrides["monitoring_enabled"] = False
    if secure is not None:
        overrides |= secure.settings_overrides()
    return load_settings(overrides=overrides, environ={})


async def wait_for_agents(mesh: Any, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(mesh.list_agents()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(mesh.list_agents())} of {n} agents joined")
        await asyncio.sleep(0.01)


# The coordinator path's observability variants (--observability): path name -> (is
# monitoring_enabled on, does the mesh report its events to the event log).
OBSERVABILITY = {
    "coordinator": (True, True),  # the defaults: metrics, Prometheus, live events
    "coord-nomon": (False, True),  # monitoring_enabled off; live events still go to the log
    "coord-nolog": (False, False),  # monitoring off and no event sink: "them off"
}


async def run_coordinator(
    n: int,
    warmup: float,
    duration: float,
    profile: cProfile.Profile | None,
    secure: SecureSetup | None = None,
    variant: str = "coordinator",
) -> Result:
    """The coordinator path (``coord+auth`` with ``secure``: TLS and token auth on;
    ``variant`` one of ``OBSERVABILITY``, plain runs only)."""
    from coordinator.domain import TaskSpec, TaskStatus
    from coordinator.server import Coordinator

    monitoring, event_log = OBSERVABILITY[variant]
    coordinator = Coordinator(coordinator_settings(secure, monitoring=monitoring))
    await coordinator.start()
    agents: Child | None = None
    try:
        mesh = coordinator.mesh
        term = coordinator.term
        assert mesh is not None and term is not None
        if not event_log:
            # No event sink: the mesh emits no live events at all, so the log's own cost
            # (building each MeshEvent, the ring) is gone too. Mesh.observe is typed for
            # a sink, not None; None puts the mesh back in the state it is built in,
            # whatever private attributes hold the sink (they have moved before).
            # Acceptable in a benchmark, not elsewhere. The line's "0.0 events/task"
            # note shows it took.
            detach: Any = mesh.observe
            detach(None)
        agents = Child.spawn("agents", coordinator.address, n, secure)
        await agents.recv("ready", READY_TIMEOUT_S)
        await wait_for_agents(mesh, n, READY_TIMEOUT_S)

        window = Window()
        started: dict[str, float] = {}
        drained = asyncio.Event()
        counter = iter(range(1 << 62))
        perf_counter = time.perf_counter
        completed = TaskStatus.COMPLETED

        def submit() -> None:
            t0 = perf_counter()
            task = mesh.submit(TaskSpec(CAPABILITY, {"i": next(counter)}, max_retries=0))
            started[task.id] = t0

        def on_finished(task: Any) -> None:
            t0 = started.pop(task.id, None)
            if t0 is None:
                return
            window.record(t0, perf_counter(), task.status is completed)
            if not window.stopping:
                try:
                    submit()
                except Exception as e:  # e.g. the agents went away: stop the loop
                    window.errors += 1
                    window.stopping = True
                    print(f"submit failed: {e}", file=sys.stderr)
            if window.stopping and not started:
                drained.set()

        mesh.add_listener(on_finished)
        published0, finished0 = term.log.published, mesh.counters.completed
        for _ in range(n):
            submit()
        result = await measure(window, warmup, duration, [os.getpid(), agents.pid], profile)
        result.path, result.agents = (variant if secure is None else "coord+auth"), n
        finished = mesh.counters.completed - finished0
        if finished and secure is None:
            per_task = (term.log.published - published0) / finished
            result.note = f"{per_task:.1f} events/task" + ("" if monitoring else ", no metrics")
        if started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), DRAIN_TIMEOUT_S)
        result.errors = window.errors
        result.main_rss_mb = rss_kb() / 1024
        figures = await agents.stop()
        result.peer_rss_mb = figures["rss_kb"] / 1024
        return result
    finally:
        try:
            if agents is not None:
                agents.close()
        finally:
            await coordinator.stop(grace=1.0)


async def run_bare(n: int, warmup: float, duration: float) -> Result:
    from agentmesh.v1 import agent_pb2
    from coordinator import domain as d
    from coordinator.api import convert
    from coordinator.server import server_options

    # What the coordinator would put on the wire for one tiny task.
    sample = d.Task(
        id="0" * 32,
        name=CAPABILITY,
        capability=CAPABILITY,
        input={"i": 12345},
        timeout_ms=300_000,
        idempotency_key="0" * 32,
        max_retries=0,
        priority=0,
        labels={},
        execution_id="",
        step_id="",
        pinned_agent="",
        created_at=d.utcnow(),
        seq=0,
        attempt=1,
        deadline=d.utcnow(),
    )
    payload: bytes = agent_pb2.CoordinatorMessage(
        tasks=agent_pb2.TaskBatch(tasks=[convert.dispatch(sample)])
    ).SerializeToString()

    window = Window()
    connected = 0
    all_connected = asyncio.Event()
    handlers_done = 0
    all_done = asyncio.Event()
    perf_counter = time.perf_counter

    async def stream(request_iterator: Any, context: Any) -> None:
        nonlocal connected, handlers_done
        try:
            if await context.read() is grpc.aio.EOF:
                return
            connected += 1
            if connected == n:
                all_connected.set()
            await all_connected.wait()
            while not window.stopping:
                t0 = perf_counter()
                await context.write(payload)
                echo = await context.read()
                if echo is grpc.aio.EOF:
                    break
                window.record(t0, perf_counter())
        finally:
            handlers_done += 1
            if handlers_done == n:
                all_done.set()

    server = grpc.aio.server(options=server_options(coordinator_settings()))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                BARE_SERVICE, {"Stream": grpc.stream_stream_rpc_method_handler(stream)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client: Child | None = None
    try:
        client = Child.spawn("bare-client", f"127.0.0.1:{port}", n)
        await client.recv("ready", READY_TIMEOUT_S)
        await asyncio.wait_for(all_connected.wait(), READY_TIMEOUT_S)
        result = await measure(window, warmup, duration, [os.getpid(), client.pid])
        result.path, result.agents = "bare", n
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done.wait(), DRAIN_TIMEOUT_S)
        result.main_rss_mb = rss_kb() / 1024
        figures = await client.stop()
        result.peer_rss_mb = figures["rss_kb"] / 1024
        result.note = f"{len(payload)} B message"
        return result
    finally:
        try:
            if client is not None:
                client.close()
        finally:
            await server.stop(0.5)


async def run_e2e(
    n: int,
    warmup: float,
    duration: float,
    batch: int,
    workers: int,
    secure: SecureSetup | None = None,
) -> Result:
    """The e2e-api path (``e2e+auth`` with ``secure``: TLS and token auth on)."""
    from coordinator.server import Coordinator

    coordinator = Coordinator(coordinator_settings(secure))
    await coordinator.start()
    agents: Child | None = None
    client: Child | None = None
    try:
        mesh = coordinator.mesh
        assert mesh is not None
        agents = Child.spawn("agents", coordinator.address, n, secure)
        await agents.recv("ready", READY_TIMEOUT_S)
        await wait_for_agents(mesh, n, READY_TIMEOUT_S)
        client = Child.spawn(
            "e2e-client", coordinator.address, warmup, duration, batch, workers, secure
        )
        meter = CpuMeter([os.getpid(), agents.pid, client.pid])
        meter.start()
        figures = await client.recv("result", READY_TIMEOUT_S + warmup + duration + 30)
        cpu, busy, steal = meter.stop()
        agent_figures = await agents.stop()
        return Result(
            path="e2e-api" if secure is None else "e2e+auth",
            agents=n,
            tasks_per_s=figures["tasks"] / figures["elapsed"],
            main_rss_mb=rss_kb() / 1024,
            peer_rss_mb=agent_figures["rss_kb"] / 1024,
            main_cpu=cpu[0],
            peer_cpu=cpu[1],
            host_busy=busy,
            host_steal=steal,
            errors=figures["failed"],
            note=(
                f"bulk {batch} + wait_task each, {workers} client loop(s); "
                f"client {figures['rss_kb'] / 1024:.0f} MB, {cpu[2]:.0%} CPU; CPU figures include warmup"
            ),
        )
    finally:
        try:
            for child in (client, agents):
                if child is not None:
                    child.close()
        finally:
            await coordinator.stop(grace=1.0)


# --------------------------------------------------------------------------- report


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def _num(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def table(results: Sequence[Result]) -> str:
    bare = {r.agents: r.tasks_per_s for r in results if r.path == "bare"}
    head = (
        f"{'path':<11} {'N':>3} {'tasks/s':>8} {'p50 ms':>6} {'p99 ms':>6} {'ratio':>5}"
        f" | {'main':>4} {'peer':>4} {'host':>4} {'main':>5} {'peer':>5}"
        f" | {'main':>4} {'peer':>4}"
    )
    head2 = (
        f"{'':<11} {'':>3} {'':>8} {'':>6} {'':>6} {'':>5}"
        f" | {'CPU share':^14} {'CPU us/task':^11} | {'RSS MB':^9}"
    )
    lines = [head2.rstrip(), head, "-" * (len(head) + 8)]
    for r in results:
        ratio = (
            f"{r.tasks_per_s / bare[r.agents]:.2f}"
            if r.path == "coordinator" and bare.get(r.agents)
            else ""
        )
        per_task = [
            c / r.tasks_per_s * 1e6 if r.tasks_per_s else float("nan")
            for c in (r.main_cpu, r.peer_cpu)
        ]
        notes = [r.note] if r.note else []
        if r.errors:
            notes.insert(0, f"{r.errors} NOT COMPLETED")
        if r.host_steal >= 0.01:
            notes.append(f"steal {r.host_steal:.0%}")
        others = other_load(r.host_busy, (r.main_cpu, r.peer_cpu))
        if others >= OTHERS_NOTED and not r.path.startswith("e2e"):  # e2e: a third process
            notes.append(f"other processes {others:.0%}")
        lines.append(
            f"{r.path:<11} {r.agents:>3} {r.tasks_per_s:>8,.0f} {_num(r.p50_ms, '.2f'):>6} "
            f"{_num(r.p99_ms, '.2f'):>6} {ratio:>5}"
            f" | {_pct(r.main_cpu):>4} {_pct(r.peer_cpu):>4} {_pct(r.host_busy):>4}"
            f" {_num(per_task[0], '.0f'):>5} {_num(per_task[1], '.0f'):>5}"
            f" | {r.main_rss_mb:>4.0f} {r.peer_rss_mb:>4.0f}  {'; '.join(notes)}".rstrip()
        )
    return "\n".join(lines)


def ratio_line(results: Sequence[Result]) -> str:
    bare = {r.agents: r.tasks_per_s for r in results if r.path == "bare"}
    parts = [
        f"N={r.agents}: {r.tasks_per_s / bare[r.agents]:.2f}"
        for r in results
        if r.path == "coordinator" and bare.get(r.agents)
    ]
    return "ratio coordinator/bare (target >= 0.5): " + ("  ".join(parts) or "-")


# Each secure path and the plain path it is compared with.
SECURE_PATHS = {"coord+auth": "coordinator", "e2e+auth": "e2e-api"}
# The table's order of paths (then by N).
PATH_ORDER = {
    "coordinator": 0,
    "coord-nomon": 1,
    "coord-nolog": 2,
    "coord+auth": 3,
    "bare": 4,
    "e2e-api": 5,
    "e2e+auth": 6,
}
# The observability target: tasks/s with it on within this share of tasks/s with it off.
OBSERVABILITY_TARGET = 0.10


def observability_table(results: Sequence[Result]) -> str:
    """Per N: tasks/s and main-process CPU us/task with observability on (the
    ``coordinator`` line), with monitoring off, and with monitoring and the event log
    off; the ratios on/off."""
    by = {(r.path, r.agents): r for r in results}
    counts = sorted({r.agents for r in results if r.path in OBSERVABILITY})
    head2 = f"{'':<13} {'':>3} | {'tasks/s':^23} | {'on / off':^13} | {'main CPU us/task':^18}"
    head = (
        f"{'observability':<13} {'N':>3} | {'on':>7} {'no-mon':>7} {'no-log':>7}"
        f" | {'no-mon':>6} {'no-log':>6} | {'on':>4} {'no-mon':>6} {'no-log':>6}"
    )
    lines = [head2.rstrip(), head, "-" * len(head)]

    def rate(r: Result | None) -> str:
        return f"{r.tasks_per_s:,.0f}" if r is not None else "-"

    def us(r: Result | None) -> str:
        if r is None or not r.tasks_per_s or math.isnan(r.main_cpu):
            return "-"
        return f"{r.main_cpu / r.tasks_per_s * 1e6:.0f}"

    def ratio(a: Result | None, b: Result | None) -> str:
        return f"{a.tasks_per_s / b.tasks_per_s:.2f}" if a and b and b.tasks_per_s else "-"

    for n in counts:
        on, nomon, nolog = (by.get((p, n)) for p in OBSERVABILITY)
        lines.append(
            f"{'':<13} {n:>3} | {rate(on):>7} {rate(nomon):>7} {rate(nolog):>7}"
            f" | {ratio(on, nomon):>6} {ratio(on, nolog):>6}"
            f" | {us(on):>4} {us(nomon):>6} {us(nolog):>6}"
        )
    return "\n".join(lines)


def observability_line(results: Sequence[Result]) -> str:
    """``observability cost: X %``: 1 - the geometric mean over N of tasks/s on ÷ tasks/s
    with monitoring and the event log off (and the worst N)."""
    by = {(r.path, r.agents): r.tasks_per_s for r in results}
    ratios = {
        n: by[("coordinator", n)] / by[("coord-nolog", n)]
        for (path, n) in by
        if path == "coord-nolog" and by[(path, n)] and by.get(("coordinator", n))
    }
    target = f"(target <= {OBSERVABILITY_TARGET:.0%})".replace("%", " %")
    if not ratios:
        return f"observability cost: - {target}"
    mean = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
    worst = min(ratios, key=lambda n: ratios[n])
    return (
        f"observability cost: {(1 - mean) * 100:.1f} % {target}; tasks/s on ÷ off "
        f"(monitoring and event log off), geometric mean over N="
        f"{','.join(str(n) for n in sorted(ratios))}; worst N={worst}: "
        f"{(1 - ratios[worst]) * 100:.1f} %"
    )


def secure_line(results: Sequence[Result]) -> str:
    """Tasks/s of each secure row over the plain row of the same path and N."""
    plain = {(r.path, r.agents): r.tasks_per_s for r in results}
    coordinator: list[str] = []
    e2e: list[str] = []
    for r in results:
        base = plain.get((SECURE_PATHS.get(r.path, ""), r.agents))
        if not base:
            continue
        if r.path == "coord+auth":
            coordinator.append(f"N={r.agents}: {r.tasks_per_s / base:.2f}")
        else:
            e2e.append(f"{r.tasks_per_s / base:.2f}")
    parts = []
    if coordinator:
        parts.append("coordinator " + "  ".join(coordinator))
    if e2e:
        parts.append("e2e-api: " + "  ".join(e2e))
    return "secure/plain (target >= 0.85): " + ("  ".join(parts) or "-")


def print_profile(profile: cProfile.Profile, limit: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    print("\n--- cProfile of the main process during the coordinator windows (by tottime)")
    print(out.getvalue())


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM cancels like Ctrl-C does, so every finally block stops its processes.
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    counts = [int(x) for x in args.agents.split(",") if x.strip()]
    profile = cProfile.Profile() if args.profile else None
    results: list[Result] = []

    def progress(r: Result) -> None:
        results.append(r)
        print(
            f"  {r.path:<12} N={r.agents:<3} {r.tasks_per_s:>9,.0f} tasks/s",
            file=sys.stderr,
            flush=True,
        )

    with contextlib.ExitStack() as files:
        secure: SecureSetup | None = None
        if args.secure and not args.profile:
            # Certificates and tokens for the secure runs; the directory goes at the end.
            tmp = files.enter_context(tempfile.TemporaryDirectory(prefix="agentmesh-bench-"))
            secure = make_secure_setup(Path(tmp), CAPABILITY)
        variants = {
            "on": ["coordinator"],
            "off": ["coord-nomon", "coord-nolog"],
            "both": list(OBSERVABILITY),
        }[args.observability]
        for n in counts:
            # The variants of one N back to back: the closest A/B on a noisy machine.
            for variant in variants:
                progress(
                    await run_coordinator(n, args.warmup, args.duration, profile, None, variant)
                )
            if secure is not None:  # right after the plain run: the closest A/B
                progress(await run_coordinator(n, args.warmup, args.duration, None, secure))
        if not args.profile:
            for n in counts:
                progress(await run_bare(n, args.warmup, args.duration))
            if args.e2e_agents > 0:
                setups: list[SecureSetup | None] = [None] if secure is None else [None, secure]
                for setup in setups:  # plain, then with TLS + auth
                    result = await run_e2e(
                        args.e2e_agents,
                        args.warmup,
                        args.duration,
                        args.e2e_batch,
                        args.e2e_workers,
                        setup,
                    )
                    progress(result)
    results.sort(key=lambda r: (PATH_ORDER.get(r.path, len(PATH_ORDER)), r.agents))
    print()
    print(table(results))
    print()
    if any(r.path == "bare" for r in results):
        print(ratio_line(results))
    if any(r.path in SECURE_PATHS for r in results):
        print(secure_line(results))
    if any(r.path in ("coord-nomon", "coord-nolog") for r in results):
        print()
        print(observability_table(results))
        print()
        print(observability_line(results))
    if profile is not None:
        print_profile(profile, args.profile_lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--agents", default="1,4,16", help="agent counts, comma-separated")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s runs, 0.3 s warmup")
    p.add_argument("--e2e-agents", type=int, default=4, help="agents for e2e-api (0 skips)")
    p.add_argument("--e2e-batch", type=int, default=64, help="tasks per bulk_assign_tasks")
    p.add_argument("--e2e-workers", type=int, default=2, help="concurrent client loops")
    p.add_argument(
        "--secure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the coordinator and e2e-api paths with TLS + token auth "
        "(coord+auth, e2e+auth)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the main process during the coordinator runs (skips bare, e2e and "
        "the secure runs)",
    )
    p.add_argument(
        "--observability",
        choices=("on", "off", "both"),
        default=None,
        help="the coordinator path with metrics and live events on (the coordinator line), "
        "off (coord-nomon: monitoring_enabled off; coord-nolog: that and no event sink), "
        "or both, with the ratios and the 'observability cost' line (default: both; "
        "on with --profile)",
    )
    p.add_argument("--profile-lines", type=int, default=30)
    args = p.parse_args(argv)
    if args.observability is None:
        args.observability = "on" if args.profile else "both"
    if args.quick:
        args.duration, args.warmup = 1.0, 0.3
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    began = time.perf_counter()
    print(f"AgentMesh dispatch benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(
        f"runs: {args.duration:g} s measured after {args.warmup:g} s warmup; "
        f"agents {args.agents}; observability {args.observability}; 127.0.0.1 loopback"
        + ("; secure runs: server TLS + bearer tokens" if args.secure and not args.profile else ""),
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
