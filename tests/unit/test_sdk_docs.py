"""Every public name of the SDK has a docstring; every public coroutine's says what
cancelling it does.  Checked on the source (a dataclass's generated ``__doc__`` does
not count), for each class of ``agent_sdk.__all__`` and the SDK classes it inherits from.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import agent_sdk
import agent_sdk.testing

PUBLIC = [getattr(agent_sdk, n) for n in agent_sdk.__all__] + [
    getattr(agent_sdk.testing, n) for n in agent_sdk.testing.__all__
]


def _node(obj: object) -> ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))  # type: ignore[arg-type]
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    return node


def _function_problems(node: ast.FunctionDef | ast.AsyncFunctionDef, where: str) -> list[str]:
    doc = ast.get_docstring(node)
    if not doc:
        return [f"{where}: no docstring"]
    if isinstance(node, ast.AsyncFunctionDef) and "cancel" not in doc.lower():
        return [f"{where}: a coroutine whose docstring does not say what cancelling does"]
    return []


def undocumented(obj: object) -> list[str]:
    """What ``obj`` (a class or a function) lacks: its own docstring, and for a class
    the docstrings of its public methods and properties."""
    node = _node(obj)
    name = node.name
    if not isinstance(node, ast.ClassDef):
        return _function_problems(node, name)
    problems = [] if ast.get_docstring(node) else [f"{name}: no docstring"]
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not (
            item.name.startswith("_")
        ):
            problems += _function_problems(item, f"{name}.{item.name}")
    return problems


def _sdk_classes() -> list[type]:
    """The public classes and the SDK classes they inherit from (e.g. Client's mixin)."""
    seen: list[type] = []
    for obj in PUBLIC:
        if isinstance(obj, type):
            for cls in obj.__mro__:
                if cls.__module__.startswith("agent_sdk") and cls not in seen:
                    seen.append(cls)
    return seen


def test_every_public_name_and_method_has_a_docstring() -> None:
    functions = [obj for obj in PUBLIC if not isinstance(obj, type)]
    problems = [p for obj in [*_sdk_classes(), *functions] for p in undocumented(obj)]
    assert not problems, "document these:\n" + "\n".join(problems)


def test_the_check_finds_what_is_missing() -> None:
    class Bare:
        def method(self) -> None:
            pass

        async def wait(self) -> None:
            """Wait."""

        @property
        def value(self) -> int:
            return 0

        def _private(self) -> None:
            pass

    assert undocumented(Bare) == [
        "Bare: no docstring",
        "Bare.method: no docstring",
        "Bare.wait: a coroutine whose docstring does not say what cancelling does",
        "Bare.value: no docstring",
    ]
    assert len(_sdk_classes()) > len([o for o in PUBLIC if isinstance(o, type)])
