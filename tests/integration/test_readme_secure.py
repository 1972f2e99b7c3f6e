"""The README's security walk-through runs as written: the plain block that makes the
certificates and tokens, then a coordinator started from the README's own ``agentmesh
serve`` line (TLS and auth), then the ``secure`` blocks against it."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from tests.conftest import ServerProcess
from tests.integration.test_readme import (
    README,
    Block,
    environment,
    localise,
    problems,
    readme_blocks,
    run_block,
)

SECTION = "### Security: TLS, tokens, roles"


def section_blocks() -> list[Block]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n#", start + len(SECTION))
    first_line = text.count("\n", 0, start) + 1
    last_line = text.count("\n", 0, end) + 1
    return [b for b in readme_blocks(text) if first_line <= b.line <= last_line]


def serve_args(block: Block, work: Path) -> list[str]:
    words = shlex.split(block.code.strip())
    assert words[:2] == ["agentmesh", "serve"], block.code
    # Files the walk-through made are relative to its directory; the server runs elsewhere.
    return [str(work / w) if (work / w).exists() or w.endswith(".jsonl") else w for w in words[2:]]


def ran_clean(result: subprocess.CompletedProcess[str], block: Block) -> None:
    where = f"README line {block.line}:\n{block.code}\n--- stdout\n{result.stdout}"
    assert result.returncode == 0, f"{where}\n--- stderr\n{result.stderr}"
    assert not problems(result), f"{where}\n--- stderr\n{result.stderr}"


def test_the_security_walk_through_runs(tmp_path: Path) -> None:
    blocks = section_blocks()
    assert [b.kind for b in blocks] == ["run", "provided", "secure"], blocks
    make, serve, use = blocks
    work = tmp_path / "work"
    work.mkdir()
    # The first block needs no coordinator (test_readme.py runs it too).
    made = run_block(make, work, "unused:0")
    ran_clean(made, make)
    assert "allowed: ops (roles: admin) has workflows.define" in made.stdout
    assert "denied: /agentmesh.v1.RegistryService/ListAgents needs the permission" in made.stdout
    server = ServerProcess(*serve_args(serve, work), log=tmp_path / "coordinator.log")
    try:
        result = subprocess.run(
            ["bash", "-e", "-c", localise(use.code, server.address)],
            cwd=work,
            env=environment(server.address),
            capture_output=True,
            text=True,
            timeout=120,
        )
        ran_clean(result, use)
        assert '"status": "SERVING"' in result.stdout
    finally:
        server.stop()
    records = [json.loads(line) for line in (work / "audit.jsonl").read_text().splitlines()]
    refused = [r for r in records if r["outcome"] == "UNAUTHENTICATED"]
    assert [r["method"] for r in refused] == ["/agentmesh.v1.RegistryService/ListAgents"]
    token = (work / "ops.token").read_text().strip()
    assert token not in (work / "tokens.yaml").read_text()
    assert token not in (work / "audit.jsonl").read_text()
