"""`make demo` / `agentmesh demo`: the same code path, every process real."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent

ALWAYS = {
    "analyze_requirements",
    "create_plan",
    "document_plan",
    "setup_decisions",
    "setup_repository",
    "generate_core",
    "generate_utils",
    "generate_components",
    "review_code",
    "handle_review_results",
    "run_tests",
    "check_test_results",
    "optimize_performance",
    "document_project",
    "deploy_project",
}


def run_demo(workspace: Path, *args: str) -> str:
    r = subprocess.run(
        [str(BIN / "agentmesh"), "demo", "--workspace", str(workspace), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--workspace {workspace}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "the demo must stop everything it started"
    return r.stdout


def file_of(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(unquote(urlparse(url).path))


def test_demo_runs_project_setup_end_to_end(tmp_path: Path) -> None:
    out = run_demo(tmp_path)
    assert "COMPLETED" in out, out
    assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/", out), out
    done = set(re.findall(r"\[ok\] (\S+)", out))
    # the plan for a new React dashboard requires scaffolding: that branch is taken
    assert "true -> scaffold_project" in out
    assert ALWAYS | {"scaffold_project"} <= done, out
    # the review and test decisions took the branch their results imply
    issues = re.search(r"Lint issues\s+(\d+) found", out)
    assert issues is not None, out
    assert ("fix_issues" in done) == (int(issues.group(1)) > 0)
    tests = re.search(r"Test results\s+(passed|FAILED)", out)
    assert tests is not None, out
    assert ("fix_test_failures" in done) == (tests.group(1) == "FAILED")
    # the artefacts exist
    project = Path(re.search(r"Generated project\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    assert (project / "package.json").is_file() and (project / ".git").is_dir()
    assert list((project / "src" / "components").glob("*.tsx"))
    page = file_of(re.search(r"Plan page\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    assert page.is_file() and "dashboard" in page.read_text().lower()
    deployed = file_of(re.search(r"Deployment\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    assert (deployed / "package.json").is_file()


def test_killing_an_agent_mid_demo_does_not_fail_the_workflow(tmp_path: Path) -> None:
    out = run_demo(tmp_path, "--kill-agent", "build")
    assert "killed the build agent" in out
    assert "COMPLETED" in out, out
    assert set(re.findall(r"\[ok\] (\S+)", out)) >= ALWAYS


def audit_of(tmp_path: Path) -> list[dict[str, object]]:
    log = next(tmp_path.glob("run-*")) / "audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_secure_demo_runs_with_mutual_tls_certificates_and_tokens(tmp_path: Path) -> None:
    out = run_demo(tmp_path, "--secure")
    assert "Secure mode: mutual TLS" in out and "COMPLETED" in out, out
    assert set(re.findall(r"\[ok\] (\S+)", out)) >= ALWAYS, out
    assert "A viewer's StopWorkflow was refused: PERMISSION_DENIED" in out, out
    records = audit_of(tmp_path)
    joined = {r["principal"] for r in records if str(r["method"]).endswith("/Connect")}
    assert joined == {"planner", "executor", "notion", "build", "reviewer", "refactor"}
    assert all(r["via"] == "certificate" for r in records if r["principal"] in joined)
    started = [r for r in records if str(r["method"]).endswith("/StartWorkflow")]
    assert [(r["principal"], r["via"], r["outcome"]) for r in started] == [
        ("demo-admin", "token", "OK")
    ]
    # the tokens file holds digests only: no token the demo made is written anywhere
    tokens = (next(tmp_path.glob("run-*")) / "tokens.yaml").read_text()
    assert "sha256:" in tokens and "spiffe://agentmesh/executor" in tokens


def test_cluster_demo_survives_a_sigkilled_leader(tmp_path: Path) -> None:
    # With --secure: the replicas serve mutual TLS and auth, and redirects keep both.
    out = run_demo(tmp_path, "--kill-leader", "--secure")
    assert "Cluster ready: coord-" in out, out
    assert "A viewer's StopWorkflow was refused" in out, out
    killed = re.search(r"killed the leader (coord-\d) \(SIGKILL\)", out)
    took = re.search(r">> (coord-\d) took over after ([\d.]+)s", out)
    assert killed is not None and took is not None, out
    assert took[1] != killed[1]
    assert "COMPLETED" in out, out
    assert set(re.findall(r"\[ok\] (\S+)", out)) >= ALWAYS, out
    # etcd (its data dir is in the workspace) and the three replicas were stopped too
    assert (next(tmp_path.glob("run-*")) / "etcd").is_dir()
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "etcd must be stopped"
    for port in re.findall(r"coord-\d at 127\.0\.0\.1:(\d+)", out):
        with socket.socket() as s, pytest.raises(OSError):
            s.connect(("127.0.0.1", int(port)))


def test_demo_keep_running_leaves_the_dashboard_up_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN / "agentmesh"), "demo", "--workspace", str(tmp_path), "--keep-running"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:  # until it says it keeps running (or it exits)
            lines.append(line)
            if "keep running" in line:
                break
        out = "".join(lines)
        dashboard = re.search(r"Dashboard: (http://\S+/)", out)
        assert dashboard is not None and "COMPLETED" in out, out
        with urllib.request.urlopen(dashboard.group(1), timeout=10) as page:
            assert b"AgentMesh" in page.read()
        request = urllib.request.Request(
            dashboard.group(1) + "agentmesh.v1.ExecutionService/ListExecutions",
            data=b'{"workflowName": "project_setup"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            executions = json.load(answer)["executions"]
        assert [e["status"] for e in executions] == ["EXECUTION_STATUS_COMPLETED"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        proc.stdout.close()
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--workspace {tmp_path}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "Ctrl-C must stop everything it started"
