"""The README's cluster example (the block marked ``<!-- readme-test: cluster -->``) runs as
written, on free ports: a real etcd, three replicas, ``cluster status --wait``, the CLI
through ``etcd://``, and the tour's planner joining through a seed list of replicas.

Its lines run under bash from the repository root (the example uses ``.venv/bin/...``);
ports are moved off the defaults (2379, 2380, 5005x) so runs do not collide; the
``VAR=... python NAME.py`` line starts the tour's ``# NAME.py`` program (it runs until
stopped), which must join the leader and exit 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent_sdk import Client
from tests.conftest import BIN, ROOT, eventually, free_port
from tests.integration.test_readme import README, readme_blocks

PROGRAM_LINE = re.compile(r"^((?:\w+=\S+ )+)python (\w+\.py)$", re.M)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.timeout(300)
async def test_the_readme_cluster_example_runs(tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text())
    [cluster] = [b for b in blocks if b.kind == "cluster"]
    programs = {b.program: b for b in blocks if b.program}
    client_port, peer_port = free_port(), free_port()
    replicas = [free_port() for _ in range(3)]
    etcd = f"127.0.0.1:{client_port}"
    seeds = ",".join(f"127.0.0.1:{p}" for p in replicas)
    script = (
        cluster.code.replace(
            "--data-dir /tmp/am-etcd",
            f"--data-dir {tmp_path / 'etcd'} --listen-peer-urls http://127.0.0.1:{peer_port} "
            f"--initial-advertise-peer-urls http://127.0.0.1:{peer_port} "
            f"--initial-cluster default=http://127.0.0.1:{peer_port}",
        )
        .replace("127.0.0.1:2379", etcd)
        .replace("127.0.0.1:5005$i", "127.0.0.1:${PORTS[$i]}")
        .replace("127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053", seeds)
    )
    assert script != cluster.code and "2379" not in script.replace(etcd, "")
    launch = PROGRAM_LINE.search(script)
    assert launch is not None, "the cluster example starts the tour's agent program"
    script = script.replace(launch.group(0), "")
    ports = " ".join(str(p) for p in replicas)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with (tmp_path / "cluster.log").open("w") as log:  # the shell keeps its own copy
        shell = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            ["bash", "-e", "-c", f"PORTS=(0 {ports})\n{script}\nwait"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # its background etcd and replicas: one group to stop
        )
    agent: subprocess.Popen[str] | None = None
    try:
        assert shell.stdout is not None
        seen: list[str] = []
        # The foreground commands print, then the script waits on its background jobs.
        while not any(ln.startswith(("ID ", "no agents")) for ln in seen):
            line = await asyncio.to_thread(shell.stdout.readline)
            assert line, f"the example ended early: {seen} {(tmp_path / 'cluster.log').read_text()}"
            seen.append(line)
        assert any(ln.startswith("etcd      healthy") for ln in seen), seen
        assert any(ln.startswith("leader    coord-") for ln in seen), seen
        name = launch.group(2)
        program = programs[name]
        (tmp_path / name).write_text(program.code)
        assignments = dict(a.split("=", 1) for a in shlex.split(launch.group(1)))
        agent = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            [sys.executable, name],
            cwd=tmp_path,
            env={**env, **assignments},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        async with Client(seeds) as client:

            async def joined() -> bool:
                agents = await client.list_agents()
                return any(a.type == name.removesuffix(".py") for a in agents)

            await eventually(joined, timeout=60)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, err
        assert "connected to 127.0.0.1:" in err  # the SDK says where it went (stderr fallback)
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.communicate()
        _kill_group(shell)
        if shell.stdout is not None:
            shell.stdout.close()
