"""The package installs whole: the wheel alone, in a fresh venv, runs ``agentmesh demo``.

The wheel and the sdist are built from a copy of the source tree in a temporary
directory (what a fresh clone holds: no venv, caches, build/ or *.egg-info), so a
build never writes into the repository, and a stale ``build/lib`` there can never
leak into the wheel under test.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

import agentmesh

ROOT = Path(__file__).resolve().parents[2]
PIP = ("-m", "pip", "--disable-pip-version-check")
TYPED = ("agentmesh", "agentmesh/v1", "agentmesh/agents", "coordinator", "agent_sdk")
WORKFLOWS = sorted(p.name for p in (ROOT / "agentmesh" / "agents" / "workflows").glob("*.yaml"))
PROTOS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "protos").rglob("*.proto"))
CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Topic :: System :: Distributed Computing",
    "Framework :: AsyncIO",
    "Typing :: Typed",
    "Operating System :: POSIX :: Linux",
}
REPO_URL = "https://github.com/agentmesh/agentmesh"
# Local state a clone does not have (see .gitignore).
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    "node_modules",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "var",
    "*.db",
    "*.db-*",
    "*.db.lock",
    "agentmesh-demo",
    "agentmesh-workspace",
)


def run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run with the environment minus anything that could import the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"{r.args} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("source") / "agentmesh"
    shutil.copytree(ROOT, tree, ignore=NOT_IN_A_CLONE, symlinks=True)
    return tree


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    ok(
        run(
            [sys.executable, *PIP, "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
            out,
            300,
        )
    )
    (built,) = out.glob("agentmesh-*.whl")
    return built


def wheel_metadata(wheel: Path) -> EmailMessage:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        text = z.read(name).decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)  # type: ignore[return-value]


def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return [n for n in z.namelist() if ".dist-info/" not in n]


def test_sdist_holds_the_sources_and_the_metadata_is_complete(
    source: Path, wheel: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sdist"
    build = (
        "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    )
    name = ok(run([sys.executable, "-c", build, str(out)], source, 120)).strip().splitlines()[-1]
    sdist = out / name
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    prefix = f"agentmesh-{agentmesh.__version__}/"
    assert all(n.startswith(prefix) or n + "/" == prefix for n in names), names[:5]
    inside = {n.removeprefix(prefix) for n in names}
    assert PROTOS and set(PROTOS) <= inside, set(PROTOS) - inside
    assert {"LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", "PKG-INFO"} <= inside
    assert {f"agentmesh/agents/workflows/{w}" for w in WORKFLOWS} <= inside
    assert {f"{p}/py.typed" for p in TYPED} <= inside
    # everything the wheel ships can be rebuilt from the sdist alone
    assert set(wheel_files(wheel)) <= inside, set(wheel_files(wheel)) - inside
    assert not any(n.startswith(("agents/", ".venv/", "build/")) for n in inside)

    meta = wheel_metadata(wheel)
    assert meta["Name"] == "agentmesh"
    assert meta["Version"] == agentmesh.__version__
    assert tuple(int(x) for x in meta["Metadata-Version"].split(".")) >= (2, 4)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    classifiers = set(meta.get_all("Classifier") or [])
    assert classifiers >= CLASSIFIERS, CLASSIFIERS - classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues"}, urls
    assert all(u.startswith(REPO_URL) for u in urls.values()), urls
    assert meta["Author"] == "AgentMesh contributors"
    assert meta["Keywords"]
    assert meta["Requires-Python"] == ">=3.11"
    with zipfile.ZipFile(wheel) as z:
        (license_file,) = [n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert z.read(license_file) == (ROOT / "LICENSE").read_bytes()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A new venv with nothing installed (not even the dev venv's site-packages)."""
    venv = tmp_path / "fresh"
    ok(run([sys.executable, "-m", "venv", str(venv)], tmp_path, 120))
    return venv


@pytest.mark.timeout(600)
def test_wheel_installs_whole_and_runs_the_demo(wheel: Path, fresh: Path, tmp_path: Path) -> None:
    python, agentmesh_cmd = fresh / "bin" / "python", fresh / "bin" / "agentmesh"
    ok(run([str(python), *PIP, "install", "-q", str(wheel)], tmp_path, 400))
    outside = tmp_path / "cwd"  # nothing here or above it is the source tree
    outside.mkdir()

    site = Path(
        ok(
            run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                outside,
                30,
            )
        ).strip()
    )
    assert site.is_relative_to(fresh)
    where = ok(
        run(
            [str(python), "-c", "import agentmesh.agents; print(agentmesh.agents.__file__)"],
            outside,
            30,
        )
    )
    assert Path(where.strip()).is_relative_to(site), where
    # the reference agents are agentmesh.agents: no top-level `agents` package
    assert not (site / "agents").exists()
    (dist_info,) = site.glob("agentmesh-*.dist-info")
    top_level = set((dist_info / "top_level.txt").read_text().split())
    assert top_level == {"agentmesh", "coordinator", "agent_sdk"}, top_level
    record = (dist_info / "RECORD").read_text()
    assert not re.search(r"^agents/", record, re.MULTILINE)
    for package in TYPED:
        assert (site / package / "py.typed").is_file(), f"{package}/py.typed is not installed"
    for workflow in WORKFLOWS:
        assert (site / "agentmesh" / "agents" / "workflows" / workflow).is_file()

    version = ok(run([str(agentmesh_cmd), "--version"], outside, 30))
    assert version.strip() == f"agentmesh {agentmesh.__version__}", version

    workspace = tmp_path / "workspace"
    out = ok(run([str(agentmesh_cmd), "demo", "--workspace", str(workspace)], outside, 300))
    assert "COMPLETED" in out, out
    assert "[ok] deploy_project" in out, out
    left = subprocess.run(
        ["pgrep", "-f", f"--workspace {workspace}"], capture_output=True, text=True
    )
    assert left.stdout.strip() == "", "the demo must stop everything it started"
