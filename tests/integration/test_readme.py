"""The README's examples run, in order, against a real coordinator and the six reference
agents: its shell blocks (the CLI, grpcurl) under bash, its Python blocks under this venv.

Conventions, so a new example is tested by default:

- every ```sh and ```python block runs, unless the line before its fence is a marker
  ``<!-- readme-test: skip: REASON -->`` (never run: e.g. ``make test``, which runs this),
  ``<!-- readme-test: provided: REASON -->`` (the test does it itself: starting the
  coordinator), ``<!-- readme-test: cluster -->`` (needs a cluster: the cluster tests
  run it) or ``<!-- readme-test: secure -->`` (needs the TLS and token coordinator that
  tests/integration/test_readme_secure.py starts from the README's own serve line);
- a Python block whose first line is ``# NAME.py`` is an agent program: it is saved as
  NAME.py and started; it must join the mesh, and then drain and exit 0 on SIGTERM (before
  the next block runs: its toy handlers must not take the reference agents' tasks). Other
  Python blocks run to completion and must exit 0;
- ``localhost:50051`` and ``127.0.0.1:50051`` stand for the coordinator under test, and
  ``AGENTMESH_COORDINATOR`` points at it; shell blocks run with ``set -e``, in one work
  directory (``workflows/`` and ``protos/`` are there), with this venv's ``agentmesh`` and
  ``grpcurl`` and npm's ``buf`` first on PATH, and must write no error line (``agentmesh: ...``) and no traceback.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_sdk import Client
from agentmesh.agents import WORKFLOWS
from agentmesh.agents.registry import REFERENCE
from tests.conftest import BIN, ROOT, ServerProcess, eventually, free_port, stop_process

README = ROOT / "README.md"
NODE_BIN = ROOT / "node_modules" / ".bin"  # buf
MARKERS = ("skip", "provided", "cluster", "secure")
FENCE = re.compile(
    r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?^```(?P<lang>sh|python)\n(?P<code>.*?)^```$",
    re.M | re.S,
)
BLOCK_TIMEOUT = 180


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    marker: str
    line: int

    @property
    def kind(self) -> str:
        return self.marker.split(":", 1)[0].strip() if self.marker else "run"

    @property
    def program(self) -> str | None:
        """``NAME.py`` for an agent program block, else None."""
        first = self.code.splitlines()[0] if self.code else ""
        m = re.fullmatch(r"# (\w+\.py)", first.strip())
        return m.group(1) if self.lang == "python" and m else None


def readme_blocks(text: str) -> list[Block]:
    return [
        Block(
            m["lang"],
            m["code"],
            (m["marker"] or "").strip(),
            text.count("\n", 0, m.start("code")) + 1,
        )
        for m in FENCE.finditer(text)
    ]


def test_every_marker_is_known_and_gives_its_reason() -> None:
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 8, "the README's examples were not found"
    for b in blocks:
        assert b.kind in ("run", *MARKERS), (b.line, b.marker)
        if b.kind in ("skip", "provided"):
            assert b.marker.split(":", 1)[1].strip(), f"line {b.line}: say why it is not run"
    assert sum(b.kind == "run" for b in blocks) >= 6


#: The secrets the README's webhook examples say the coordinator was started with, and
#: the same values in the variables its blocks read.
SECRETS = {
    "AGENTMESH_SECRET_WEBHOOK_KEY": "readme-webhook-signing-key-0001",
    "WEBHOOK_KEY": "readme-webhook-signing-key-0001",
    "AGENTMESH_SECRET_INBOUND_EVENTS": "readme-inbound-signing-key-0002",
    "INBOUND_KEY": "readme-inbound-signing-key-0002",
}


@pytest.fixture
def mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerProcess, Path]]:
    """A coordinator and the six reference agents sharing one workspace."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    work.mkdir()
    (work / "workflows").symlink_to(WORKFLOWS)
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "protos").symlink_to(ROOT / "protos")  # buf curl --schema protos
    server = ServerProcess(
        "--http-listen", f"127.0.0.1:{free_port()}", log=tmp_path / "coordinator.log"
    )
    agents = []
    for name in REFERENCE:
        with (tmp_path / f"{name}.log").open("w") as log:  # the child keeps its own copy
            agents.append(
                subprocess.Popen(
                    [str(BIN / "agentmesh"), "agent", name, "-c", server.address],
                    cwd=work,
                    env={**os.environ, "AGENTMESH_WORKSPACE": str(tmp_path / "workspace")},
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    text=True,
                )
            )
    try:
        yield server, work
    finally:
        for p in agents:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in agents:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                stop_process(p)
        server.stop()


def localise(code: str, address: str, http: str = "") -> str:
    code = code.replace("localhost:50051", address).replace("127.0.0.1:50051", address)
    return code.replace("127.0.0.1:8080", http) if http else code


def environment(address: str) -> dict[str, str]:
    return {
        **os.environ,
        "AGENTMESH_COORDINATOR": address,
        "PATH": os.pathsep.join((str(BIN), str(NODE_BIN), os.environ.get("PATH", ""))),
        "PYTHONUNBUFFERED": "1",
    }


async def joined(address: str, types: set[str]) -> None:
    async with Client(address) as client:

        async def present() -> bool:
            return types <= {a.type for a in await client.list_agents()}

        await eventually(present, timeout=60)


async def started_program(block: Block, work: Path, address: str) -> subprocess.Popen[str]:
    name = block.program
    assert name is not None
    (work / name).write_text(localise(block.code, address))
    agent_type = name.removesuffix(".py")
    async with Client(address) as client:
        before = {a.id for a in await client.list_agents() if a.type == agent_type}
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            [sys.executable, name],
            cwd=work,
            env=environment(address),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        async def present() -> bool:
            now = {a.id for a in await client.list_agents() if a.type == agent_type}
            return bool(now - before) or proc.poll() is not None

        await eventually(present, timeout=30)
    assert proc.poll() is None, f"{name} (README line {block.line}) exited: {proc.communicate()}"
    return proc


def run_block(
    block: Block, work: Path, address: str, http: str = ""
) -> subprocess.CompletedProcess[str]:
    code = localise(block.code, address, http)
    argv = ["bash", "-e", "-c", code] if block.lang == "sh" else [sys.executable, "-c", code]
    return subprocess.run(
        argv,
        cwd=work,
        env=environment(address),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    lines = result.stderr.splitlines()
    return [ln for ln in lines if ln.startswith("agentmesh: ") or "Traceback" in ln]


@pytest.mark.timeout(900)
async def test_the_readme_examples_run(mesh: tuple[ServerProcess, Path]) -> None:
    server, work = mesh
    await joined(server.address, set(REFERENCE))
    ran, programs = 0, 0
    for block in readme_blocks(README.read_text()):
        if block.kind != "run":
            continue
        if block.program:
            proc = await started_program(block, work, server.address)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(proc.communicate, timeout=30)
            assert proc.returncode == 0, f"{block.program} (README line {block.line}): {err}"
            programs += 1
            continue
        result = await asyncio.to_thread(run_block, block, work, server.address, server.http)
        where = f"README line {block.line}:\n{block.code}\n--- stdout\n{result.stdout}"
        assert result.returncode == 0, f"{where}\n--- stderr\n{result.stderr}"
        assert not problems(result), f"{where}\n--- stderr\n{result.stderr}"
        ran += 1
    assert ran >= 5 and programs >= 1
