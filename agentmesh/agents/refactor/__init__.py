"""Refactor agent: measures code, applies safe fixes, suggests optimisations, modernises.

Python goes through ``ast`` and ``ruff`` (``--fix`` applies ruff's safe fixes only); JS/TS
through ``agentmesh.agents._codetools``. Every write is under ``path``, which must lie in the workspace;
outputs name files relative to the workspace. Every capability is idempotent: a second run
changes nothing and reports nothing applied.

- ``code_analysis`` {path: dir | file} -> {files[{file, language, loc, sloc, functions[{name,
  line, loc, complexity, nesting?}], classes, maxComplexity, docstringCoverage?}], totals{files,
  loc, sloc, functions, classes, avgComplexity, maxComplexity, docstringCoverage},
  hotspots[{file, name, line, complexity, loc, reason}]}
- ``code_transformation`` {path, issues?: code_linting issues, testResults?: test_execution
  output} -> {applied[{file, rule, count}], filesChanged[], remaining, remainingByRule,
  ignored, notes[]}. With issues: fixes the files they name (JS/TS: the rules they name;
  Python: ruff's safe fixes, then ``ruff format``). With neither: every source file. With
  testResults: makes sure a test runner is configured (``scripts.test`` in package.json,
  ``[tool.pytest.ini_options]`` in pyproject.toml); failing tests themselves stay in
  ``remaining``.
- ``performance_optimization`` {path, issues?, apply?: bool (false)} -> {optimizations[{file,
  line, kind, suggestion, applied}], count, applied, filesChanged[]}. Python: string
  ``+=`` and list membership in loops, ``range(len())``, ``len()`` in ``while`` tests, ruff's
  PERF and C4 rules (their safe fixes applied with apply). JS/TS: async ``forEach``,
  ``await`` in loops, nested loops over one array, ``RegExp`` built in loops, synchronous
  JSON reads, JSON deep clones, ``.filter(f)[0]`` (rewritten to ``.find(f)`` with apply).
- ``modernization`` {path, target?: "py3NN" (py311)} -> {changes[{file, rule, count}],
  filesChanged[], remaining, target}: ``ruff check --select UP --fix``; JS ``var`` ->
  ``let``/``const`` where safe.

Layout: ``_common`` (shared inputs and ruff fixes), then one module per capability:
``_analysis``, ``_transform``, ``_performance``, ``_modernize``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from agent_sdk import Agent
from agentmesh.agents._agent import make_workspace, reference_agent
from agentmesh.agents.refactor._analysis import analyze
from agentmesh.agents.refactor._modernize import modernize
from agentmesh.agents.refactor._performance import HINTS, optimize
from agentmesh.agents.refactor._transform import transform

__all__ = ["HINTS", "analyze", "create", "modernize", "optimize", "transform"]


def create(coordinator: str | None = None, *, workspace: Path, max_concurrency: int = 4) -> Agent:
    """The refactor agent; it rewrites files only under ``workspace``."""
    workspace = make_workspace(workspace)
    return reference_agent(
        "refactor",
        coordinator,
        max_concurrency,
        [
            (
                "code_analysis",
                partial(analyze, ws=workspace),
                "complexity, size and doc metrics per file",
            ),
            (
                "code_transformation",
                partial(transform, ws=workspace),
                "apply safe lint fixes and formatting",
            ),
            (
                "performance_optimization",
                partial(optimize, ws=workspace),
                "find (and optionally fix) slow patterns",
            ),
            (
                "modernization",
                partial(modernize, ws=workspace),
                "pyupgrade rules (ruff UP) and JS var -> let",
            ),
        ],
    )
