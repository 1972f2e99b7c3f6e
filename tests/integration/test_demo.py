"""`make demo` / `agentmesh demo`: the same code path, all processes real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def test_demo_runs_end_to_end() -> None:
    r = subprocess.run(
        [str(BIN / "agentmesh"), "demo", "--tasks", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert '-> {"limit": 40000000, "primes": 2433654}' in out, out
    assert "30/30 completed" in out
    # the batch was spread: word_count went to text, primes over both math agents
    per_agent = dict(re.findall(r"^\s{4}(\S+)\s+(\d+)$", out, re.M))
    assert sum(map(int, per_agent.values())) == 30
    assert {a.split("-")[0] for a in per_agent} >= {"text", "math"}
    # the killed agent's task finished elsewhere on a second attempt
    m = re.search(r"killed (math-\d) .*\n(?:.*\n)*?\s+-> completed on (\S+), attempt 2", out)
    assert m is not None, out
    assert not m.group(2).startswith(m.group(1))
    assert re.search(r"math-\S+\s+math\s+offline", out)
    # everything it started is gone
    leftovers = subprocess.run(["pgrep", "-f", "python -m agents"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
