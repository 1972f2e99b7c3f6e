"""Reviewer agent: lints, runs tests, reviews documentation and scans for security issues.

Read-only except for what the tools it runs write (pytest and node write nothing that
stays; ruff runs with ``--no-cache``). Paths are absolute or relative to the workspace and
must stay inside it; outputs name files relative to the workspace.

- ``code_linting`` {files: glob | [glob | dir | file, ...] (``{a,b}`` and ``**`` work),
  or path: dir} -> {issues[{file, line, column, rule, message, severity (error|warning),
  fixable, source (ruff|jslint)}], counts{total, errors, warnings, fixable, byRule},
  filesChecked, notes[]}. Python through ``ruff check``; JS/TS through ``agentmesh.agents._codetools``.
  A glob whose base directory does not exist matches nothing (not an error).
- ``test_execution`` {path: dir, testPattern? | pattern?: glob for JS/TS tests (default
  ``**/*.{test,spec}.{js,mjs,cjs,jsx,ts,tsx,mts}``; ``.js`` in a pattern also matches
  ``.mjs``/``.cjs``)} -> {passed (at least one test ran, none failed), total, succeeded,
  failed, skipped, durationMs, runner, output (tail), reason?, skippedFiles[]}. Python tests
  (``test_*.py``) run with ``python -m pytest``, JS with ``node --test``; TypeScript tests
  are reported as skipped (node cannot run them without a compiler).
- ``documentation_review`` {path: dir} -> {score 0..100, findings[{file, line?, kind,
  severity, message}], files[markdown files], readme, sections{install, usage},
  coverage{documented, total, ratio, undocumented[]}}
- ``security_scanning`` {path: dir | files: like code_linting} -> {findings[{file, line,
  rule, severity (critical|high|medium), message}], counts{total, critical, high, medium,
  byRule}, filesScanned}. Secrets (AWS keys, private keys, hard-coded credentials,
  high-entropy strings; never echoed) and dangerous calls (Python via ``ast``; JS/TS on
  code with comments and strings masked).

Layout: ``_select`` (which files a task names), ``_lint``, ``_runner`` (tests), ``_docs``,
``_security``: one module per capability.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from agent_sdk import Agent
from agentmesh.agents._agent import make_workspace, reference_agent
from agentmesh.agents.reviewer._docs import review_docs
from agentmesh.agents.reviewer._lint import code_linting, lint_paths
from agentmesh.agents.reviewer._runner import (
    DEFAULT_TEST_PATTERN,
    OUTPUT_TAIL,
    TEST_TIMEOUT,
    run_tests,
)
from agentmesh.agents.reviewer._security import scan

__all__ = [
    "DEFAULT_TEST_PATTERN",
    "OUTPUT_TAIL",
    "TEST_TIMEOUT",
    "code_linting",
    "create",
    "lint_paths",
    "review_docs",
    "run_tests",
    "scan",
]


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The reviewer agent; it reads (and runs tests) under ``workspace``."""
    workspace = make_workspace(workspace)
    return reference_agent(
        "reviewer",
        coordinator,
        max_concurrency,
        [
            (
                "code_linting",
                partial(code_linting, workspace=workspace),
                "lint Python (ruff) and JS/TS files",
            ),
            (
                "test_execution",
                partial(run_tests, workspace=workspace),
                "run a project's pytest or node tests",
            ),
            (
                "documentation_review",
                partial(review_docs, workspace=workspace),
                "score README, doc comments and Markdown links",
            ),
            (
                "security_scanning",
                partial(scan, workspace=workspace),
                "find secrets and dangerous calls",
            ),
        ],
    )
