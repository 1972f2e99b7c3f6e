"""agentmesh.agents._sandbox: the one workspace confinement every reference agent uses, on real trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_sdk import TaskError
from agentmesh.agents._sandbox import ancestors, confine, is_inside, names_a_path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/ws (the workspace) with files, links in and out, and tmp/outside.txt beside it."""
    ws = tmp_path / "ws"
    (ws / "src" / "deep").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("x = 1\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    (tmp_path / "ws-evil").mkdir()  # shares the workspace's name as a prefix
    (ws / "file-out").symlink_to(tmp_path / "outside.txt")
    (ws / "dir-out").symlink_to(tmp_path)
    (ws / "abs-etc").symlink_to("/etc")
    (ws / "file-in").symlink_to(ws / "src" / "main.py")
    (ws / "dir-in").symlink_to("src")  # relative target
    (ws / "chain").symlink_to("file-in")  # a link to a link that stays inside
    (ws / "chain-out").symlink_to("dir-out")
    return ws


def failure(root: Path, raw: object, **options: Path) -> TaskError:
    with pytest.raises(TaskError) as caught:
        confine(root, raw, "path", **options)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("src/main.py", "src/main.py"),
        ("./src/../src/main.py", "src/main.py"),
        (".", "."),
        ("  src  ", "src"),  # surrounding whitespace is not part of the name
        ("src/not-yet/new.txt", "src/not-yet/new.txt"),  # missing paths may be created
        ("file-in", "src/main.py"),
        ("dir-in/main.py", "src/main.py"),
        ("chain", "src/main.py"),
        ("src/deep/../../src", "src"),
    ],
)
def test_paths_inside_resolve_to_their_real_path(tree: Path, raw: str, expected: str) -> None:
    assert confine(tree, raw, "path") == (tree / expected).resolve()


def test_an_absolute_path_inside_is_accepted(tree: Path) -> None:
    assert confine(tree, str(tree / "src" / "main.py"), "path") == tree / "src" / "main.py"


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "../outside.txt",
        "src/../../outside.txt",
        "src/deep/../../../ws-evil",
        "missing/../../outside.txt",  # a missing directory does not hide the ..
        "/etc/passwd",
        "/",
        "/proc/self/environ",
    ],
)
def test_dot_dot_and_absolute_escapes_are_refused(tree: Path, raw: str) -> None:
    e = failure(tree, raw)
    assert e.type == "PathOutsideWorkspace"
    assert e.message == f"path: {raw!r} is outside the workspace {tree.resolve()}"


def test_a_sibling_sharing_the_workspace_name_is_outside(tree: Path) -> None:
    assert failure(tree, str(tree.parent / "ws-evil")).type == "PathOutsideWorkspace"


@pytest.mark.parametrize(
    "raw",
    [
        "file-out",  # a file symlink out
        "dir-out",  # a directory symlink out
        "dir-out/outside.txt",
        "abs-etc/passwd",
        "chain-out/outside.txt",  # a link to a link that leads out
        "dir-out/new-dir/new.txt",  # a path to create, through a link out
    ],
)
def test_symlinks_leading_out_are_refused(tree: Path, raw: str) -> None:
    e = failure(tree, raw)
    assert e.type == "PathOutsideWorkspace"
    assert e.message.endswith("through a symlink")


def test_out_through_a_link_and_back_in_is_inside(tree: Path) -> None:
    # The real path decides, not the route to it.
    assert confine(tree, "dir-out/ws/src/main.py", "path") == tree / "src" / "main.py"


def test_relative_paths_may_start_from_a_base_inside(tree: Path) -> None:
    base = tree / "src" / "deep"
    assert confine(tree, "../main.py", "path", base=base) == tree / "src" / "main.py"
    assert failure(tree, "../../../outside.txt", base=base).type == "PathOutsideWorkspace"


def test_a_workspace_given_through_a_symlink_is_compared_by_its_real_path(
    tree: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    assert confine(alias, "src/main.py", "path") == (tree / "src" / "main.py").resolve()
    assert confine(alias, str(tree / "src"), "path") == tree / "src"
    assert failure(alias, "../outside.txt").type == "PathOutsideWorkspace"


def test_a_symlink_loop_fails_when_used_not_when_confined(tree: Path) -> None:
    (tree / "loop").symlink_to("loop")
    path = confine(tree, "loop", "path")
    assert is_inside(tree, path)
    with pytest.raises(OSError):
        path.read_text()


@pytest.mark.parametrize(
    "raw",
    [None, 7, 1.5, True, [], ["src"], {"path": "src"}, b"src", "", "   ", "src\x00", "\x00"],
    ids=repr,
)
def test_non_strings_empty_and_nul_are_bad_input(tree: Path, raw: object) -> None:
    e = failure(tree, raw)
    assert e.type == "BadInput"
    assert e.message.startswith("path: ")


def test_is_inside(tree: Path) -> None:
    assert is_inside(tree, tree)
    assert is_inside(tree, tree / "file-in")
    assert is_inside(tree, tree / "nothing" / "yet")
    assert not is_inside(tree, tree / "file-out")
    assert not is_inside(tree, tree / "dir-out" / "outside.txt")
    assert not is_inside(tree, tree.parent)
    assert not is_inside(tree, tree.parent / "ws-evil")


def test_ancestors_stop_at_the_workspace(tree: Path) -> None:
    root = tree.resolve()
    deep = root / "src" / "deep"
    assert list(ancestors(root, deep)) == [deep, root / "src", root]
    assert list(ancestors(root, root)) == [root]
    # Not under the root: every parent (callers pass confined paths, so this never happens).
    other = root.parent / "ws-evil"
    assert list(ancestors(root, other)) == [other, *other.parents]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("/etc/passwd", True),
        ("..", True),
        ("a/../../b", True),
        ("src", True),  # exists
        ("dir-out/new.txt", True),  # starts with something that exists
        ("file-out", True),
        (".", True),
        ("hello", False),
        ("-la", False),
        ("https://example.com/x", False),
        ("", False),
        ("a\x00b", False),
    ],
)
def test_names_a_path(tree: Path, arg: str, expected: bool) -> None:
    assert names_a_path(arg, tree) is expected
