"""Project templates and source generators of the build agent (pure: text in, text out).

- ``PROJECTS``: project type -> ``(name, description) -> {relative path: content}``, for
  ``react-typescript``, ``react``, ``node-service``, ``static-site``, ``python-package``.
  Every JavaScript-side project keeps its runnable logic in ``.mjs`` files with a
  ``tests/*.test.mjs`` suite for ``node --test`` (TypeScript cannot run without a
  compiler, so ``src/utils/<name>.ts`` re-exports ``./<name>.mjs``, typed by JSDoc).
- A small TypeScript type reader (``parse_signature``, ``type_names``) so component specs
  like ``{props: {"items": "NavItem[]"}}`` or ``signature: "(value: number) => string"``
  become declarations that type-check: unknown type names are declared as
  ``Record<string, unknown>`` next to their use.
- Emitters for React components and hooks, service classes, utilities with their tests
  (real implementations for common names, defaults from the signature otherwise), and
  Python modules with pytest tests.

Generated code follows the reviewer's rules: no ``console``, no ``any``, no ``var``, no
trailing blanks, a final newline.

Layout: ``_names`` (casing), ``_types`` (the type reader and values of types), ``_js`` (JS/TS
emitters), ``_utilities`` (utilities and their tests), ``_python`` (Python emitters),
``_projects`` (the project templates).
"""

from agentmesh.agents._templates._js import (
    NODE_TEST_HEAD,
    function_body,
    interface_source,
    js_cases_test,
    js_function,
    module_source,
    react_component,
    react_hook,
    reexport,
    type_decls,
)
from agentmesh.agents._templates._names import (
    camel,
    comment,
    docstring,
    kebab,
    pascal,
    py_name,
    snake,
    title,
    words,
)
from agentmesh.agents._templates._projects import (
    GITIGNORE_JS,
    GITIGNORE_PY,
    PROJECTS,
    STYLES,
    TSCONFIG,
    VERSIONS,
    node_project,
    python_package_name,
    python_project,
    react_project,
    static_project,
)
from agentmesh.agents._templates._python import (
    py_cases_test,
    py_default,
    py_module,
    py_sample,
    py_test,
    py_type,
    py_typed_dict,
)
from agentmesh.agents._templates._types import (
    BUILTIN_TYPES,
    SAFE_TYPE,
    Member,
    Signature,
    Spec,
    arrow_value,
    check_type,
    default_js,
    generic_names,
    js_check,
    parse_member,
    parse_signature,
    passthrough,
    sample_js,
    spec_types,
    split_top,
    strip_parens,
    type_names,
)
from agentmesh.agents._templates._utilities import KNOWN_UTILITIES, utility_module, utility_test

__all__ = [
    "BUILTIN_TYPES",
    "GITIGNORE_JS",
    "GITIGNORE_PY",
    "KNOWN_UTILITIES",
    "NODE_TEST_HEAD",
    "PROJECTS",
    "SAFE_TYPE",
    "STYLES",
    "TSCONFIG",
    "VERSIONS",
    "Member",
    "Signature",
    "Spec",
    "arrow_value",
    "camel",
    "check_type",
    "comment",
    "default_js",
    "docstring",
    "function_body",
    "generic_names",
    "interface_source",
    "js_cases_test",
    "js_check",
    "js_function",
    "kebab",
    "module_source",
    "node_project",
    "parse_member",
    "parse_signature",
    "pascal",
    "passthrough",
    "py_cases_test",
    "py_default",
    "py_module",
    "py_name",
    "py_sample",
    "py_test",
    "py_type",
    "py_typed_dict",
    "python_package_name",
    "python_project",
    "react_component",
    "react_hook",
    "react_project",
    "reexport",
    "sample_js",
    "snake",
    "spec_types",
    "split_top",
    "static_project",
    "strip_parens",
    "title",
    "type_decls",
    "type_names",
    "utility_module",
    "utility_test",
    "words",
]
