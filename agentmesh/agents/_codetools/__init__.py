"""What the reviewer and refactor agents share: JS/TS lint rules and the source tree.

No Node linter is available offline, so the JS/TS rules are plain Python over the text.
``mask`` blanks comments and string contents (offsets and newlines kept), so the rules
and fixers look at code only; it is a best effort (JSX text with an apostrophe masks the
rest of its line, which can only hide issues, never invent them).

Rules (``RULES``): ``no-console``, ``no-var``, ``no-explicit-any`` (TS only),
``no-trailing-spaces``, ``eol-last``, ``max-len`` (> 120), ``no-debugger``, ``eqeqeq``.
``fix`` applies the fixable ones, only where the rewrite keeps behaviour:

- ``var`` -> ``let`` when no name is redeclared, used before its declaration, read
  outside its block, or captured by a closure in a loop (``const`` too on request);
- ``==`` -> ``===`` only next to ``typeof``; ``== null`` and the rest stay flagged;
- ``console.log/debug/info`` and ``debugger`` lines only when the call is a whole
  statement after ``{``, ``;`` or ``}`` (never the body of a brace-less ``if``);
- ``name: any`` -> ``name: unknown`` only when every later use of ``name`` accepts
  ``unknown`` (typeof, ===, templates, String(), console); ``as any`` stays flagged;
- trailing blanks outside template literals; the final newline.

The second half finds files: workspace-confined paths, ``{a,b}`` and ``**`` globs that
never walk into ``node_modules``, and ``ruff`` (found next to the interpreter or on PATH;
run ``--isolated`` unless the project has its own ruff config).

Layout: ``_mask``, ``_vars``, ``_lint``, ``_functions`` (JS/TS); ``_tree``, ``_ruff`` (files).
"""

from agentmesh.agents._codetools._functions import JsFunction, functions
from agentmesh.agents._codetools._lint import MAX_LEN, RULES, Issue, fix, lint
from agentmesh.agents._codetools._mask import brace_depths, mask, match_close
from agentmesh.agents._codetools._ruff import ruff, ruff_executable, ruff_issues
from agentmesh.agents._codetools._tree import (
    JS_SUFFIXES,
    PY_SUFFIXES,
    SKIP_DIRS,
    TS_SUFFIXES,
    Keep,
    display,
    existing_dir,
    expand_braces,
    glob,
    read_source,
    walk,
    write_source,
)
from agentmesh.agents._codetools._vars import VarDecl, analyze_vars, convert_vars

__all__ = [
    "JS_SUFFIXES",
    "MAX_LEN",
    "PY_SUFFIXES",
    "RULES",
    "SKIP_DIRS",
    "TS_SUFFIXES",
    "Issue",
    "JsFunction",
    "Keep",
    "VarDecl",
    "analyze_vars",
    "brace_depths",
    "convert_vars",
    "display",
    "existing_dir",
    "expand_braces",
    "fix",
    "functions",
    "glob",
    "lint",
    "mask",
    "match_close",
    "read_source",
    "ruff",
    "ruff_executable",
    "ruff_issues",
    "walk",
    "write_source",
]
