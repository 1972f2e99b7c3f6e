"""The deploy files: the Kubernetes manifests configure the coordinator with settings
that exist and load, and the image's build context holds everything the wheel ships."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.config import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"


def containers(path: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] in ("Deployment", "StatefulSet"):
            out += [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return out


def environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's AGENTMESH_ variables, with $(VAR) references filled with samples."""
    samples = {"POD_NAME": "agentmesh-coordinator-0", "POD_IP": "10.1.2.3"}
    env = {}
    for item in container.get("env", []):
        if item["name"].startswith(ENV_PREFIX) and "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: samples[m[1]], item["value"])
    return env


@pytest.mark.parametrize("manifest", ["coordinator.yaml", "cluster.yaml"])
def test_coordinator_environment_is_valid_settings(manifest: str) -> None:
    (coordinator,) = containers(DEPLOY / manifest, "coordinator")
    env = environment(coordinator)
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    settings = load_settings(environ=env)
    if manifest == "cluster.yaml":
        assert settings.clustered
        assert settings.endpoints == ["etcd-0.etcd:2379", "etcd-1.etcd:2379", "etcd-2.etcd:2379"]
        assert settings.advertise_address == "10.1.2.3:50051"
        assert settings.coordinator_id == "agentmesh-coordinator-0"


def test_cluster_probes_select_the_leader_and_survive_etcd_outages() -> None:
    (coordinator,) = containers(DEPLOY / "cluster.yaml", "coordinator")
    assert coordinator["readinessProbe"]["grpc"]["service"] == "agentmesh.v1.AgentService"
    assert coordinator["livenessProbe"]["grpc"]["service"] == "liveness"


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def services(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Service"]


@pytest.mark.parametrize("manifest", ["coordinator.yaml", "cluster.yaml"])
def test_probes_use_the_plaintext_probe_port_so_tls_can_be_turned_on(manifest: str) -> None:
    """The kubelet's gRPC probes cannot do TLS: they go to ``probe_listen``'s port,
    which the container declares and no Service exposes."""
    (coordinator,) = containers(DEPLOY / manifest, "coordinator")
    settings = load_settings(environ=environment(coordinator))
    assert settings.probe_listen, "set AGENTMESH_PROBE_LISTEN"
    probe_port = int(settings.probe_listen.rpartition(":")[2])
    listen_port = int(settings.listen.rpartition(":")[2])
    assert probe_port != listen_port
    declared = {p["name"]: p["containerPort"] for p in coordinator["ports"]}
    http_port = int(settings.http_listen.rpartition(":")[2])
    assert declared == {"grpc": listen_port, "probe": probe_port, "http": http_port}
    for probe in PROBES:
        assert coordinator[probe]["grpc"]["port"] == probe_port, probe  # a number, not a name
    for service in services(DEPLOY / manifest):
        exposed = {p.get("targetPort") for p in service["spec"]["ports"]}
        assert not exposed & {"probe", probe_port}, service["metadata"]["name"]


_TLS_LINE = re.compile(
    r"^([ ]+)# ((?:- name: (?:AGENTMESH_TLS_\w+|agentmesh-tls))"
    r"|(?:[ ]+(?:value: /etc/agentmesh-tls/\S+|mountPath: /etc/agentmesh-tls|readOnly: true"
    r"|secret:|secretName: \S+)))([ ]+#.*)?$",
    re.MULTILINE,
)


def test_the_commented_tls_variant_of_the_coordinator_is_valid() -> None:
    """Uncommenting the TLS lines of coordinator.yaml gives TLS (mutual) on the main
    port from a mounted secret, and the probes stay where they are."""
    text = (DEPLOY / "coordinator.yaml").read_text()
    variant = _TLS_LINE.sub(lambda m: m[1] + m[2] + (m[3] or ""), text)
    assert variant.count("\n") == text.count("\n") and variant != text
    docs = list(yaml.safe_load_all(variant))
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (coordinator,) = deployment["spec"]["template"]["spec"]["containers"]
    settings = load_settings(environ=environment(coordinator))
    assert settings.tls_cert and settings.tls_key and settings.tls_client_ca
    (plain,) = containers(DEPLOY / "coordinator.yaml", "coordinator")
    assert {p: coordinator[p] for p in PROBES} == {p: plain[p] for p in PROBES}
    mounts = {m["name"]: m["mountPath"] for m in coordinator["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for file in (settings.tls_cert, settings.tls_key, settings.tls_client_ca):
        assert Path(file).parent.as_posix() == mounts["agentmesh-tls"], file
    assert "secretName" in volumes["agentmesh-tls"]["secret"]


# --- the container image: deploy/Dockerfile + deploy/Dockerfile.dockerignore --------------
#
# Docker is not needed: the build stage's COPY lines and the ignore file are read
# statically and compared with what the wheel is built from (pyproject.toml).


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def top_level_packages() -> set[str]:
    """The top-level packages `[tool.setuptools.packages.find]` picks from the repo root."""
    find = pyproject()["tool"]["setuptools"]["packages"]["find"]
    assert find.get("where", ["."]) == ["."], "the check below assumes where = ['.']"
    return {
        d.name
        for d in ROOT.iterdir()
        if (d / "__init__.py").is_file()
        and any(fnmatch.fnmatchcase(d.name, pattern) for pattern in find["include"])
        and not any(fnmatch.fnmatchcase(d.name, p) for p in find.get("exclude", []))
    }


def packaged_files(package: str) -> list[str]:
    """Files under a top-level package the wheel ships: modules and package data."""
    data = pyproject()["tool"]["setuptools"]["package-data"]
    patterns = ["*.py", *(p for globs in data.values() for p in globs)]
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT / package):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                out.append((Path(dirpath) / name).relative_to(ROOT).as_posix())
    return sorted(out)


def build_stage_copies() -> dict[str, str]:
    """What the build stage COPYs from the context: path in WORKDIR -> path in the context."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    copies: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue  # from another stage, not from the context
        assert not args[0].startswith("["), "the check reads the shell form of COPY only"
        *sources, dest = args
        for source in sources:
            assert not any(c in source for c in "*?["), f"no wildcards in COPY: {source}"
            src = source.strip("/")
            if (ROOT / src).is_dir():
                assert len(sources) == 1, "a directory is COPY'd on its own line"
                copies[dest.strip("/") or "."] = src
            else:
                assert dest.endswith("/"), f"COPY {src} into a directory: {line}"
                copies[os.path.normpath(dest + Path(src).name)] = src
    return copies


Rules = list[tuple[bool, re.Pattern[str]]]


def dockerignore_rules(text: str) -> Rules:
    """(negated, regex) for each rule, in order; the last rule that matches wins."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def dockerignore_patterns() -> Rules:
    return dockerignore_rules(DOCKERIGNORE.read_text())


def ignored(path: str, rules: Rules) -> bool:
    """Whether the build context leaves out `path` (a rule on a directory covers its files)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            verdict = not negated
    return verdict


def test_dockerignore_matcher_understands_the_patterns_it_reads() -> None:
    rules = dockerignore_patterns()
    assert ignored("agentmesh/__pycache__/wire.cpython-311.pyc", rules)
    assert ignored("agentmesh/agents/__pycache__/planner.cpython-311.pyc", rules)
    assert ignored(".git/config", rules)
    assert ignored("agentmesh.egg-info/PKG-INFO", rules)
    assert ignored("build/lib/agentmesh/wire.py", rules)
    assert not ignored("agentmesh/agents/workflows/project_setup.yaml", rules)
    # rules that would drop the workflows are caught; a later `!` rule brings them back
    workflow = "agentmesh/agents/workflows/project_setup.yaml"
    for rule in ("**/*.yaml", "*/*/workflows", "agentmesh/agents", "agentmesh", "**/workflows/"):
        assert ignored(workflow, dockerignore_rules(rule)), rule
    assert not ignored(workflow, dockerignore_rules("**/*.yaml\n!agentmesh/**/*.yaml"))
    assert not ignored(workflow, dockerignore_rules("*.yaml\nworkflows"))  # root-anchored


def test_image_build_context_holds_every_package_the_wheel_ships() -> None:
    copies = build_stage_copies()
    packages = top_level_packages()
    assert {"agentmesh", "coordinator", "agent_sdk"} <= packages, packages
    assert "agents" not in packages, "the reference agents live in agentmesh.agents"
    for package in packages:
        assert copies.get(package) == package, f"the Dockerfile does not COPY {package}/"


def test_image_build_context_holds_the_files_pyproject_names() -> None:
    copies = build_stage_copies()
    project = pyproject()["project"]
    needed = ["pyproject.toml", project["readme"], *project.get("license-files", [])]
    if (ROOT / "MANIFEST.in").is_file():
        needed.append("MANIFEST.in")
    assert "LICENSE" in needed
    rules = dockerignore_patterns()
    for name in needed:
        assert copies.get(name) == name, f"the Dockerfile does not COPY {name}"
        assert not ignored(name, rules), f"the dockerignore leaves out {name}"


def test_dockerignore_keeps_every_file_the_wheel_ships() -> None:
    rules = dockerignore_patterns()
    files = [f for package in sorted(top_level_packages()) for f in packaged_files(package)]
    workflows = [f for f in files if f.startswith("agentmesh/agents/workflows/")]
    assert {Path(f).name for f in workflows} >= {"project_setup.yaml", "implement_feature.yaml"}
    assert "agentmesh/agents/planner.py" in files
    assert all(Path(f).suffix == ".yaml" for f in workflows), workflows
    for typed in ("agentmesh", "agentmesh/v1", "agentmesh/agents", "coordinator", "agent_sdk"):
        assert f"{typed}/py.typed" in files
    left_out = [f for f in files if ignored(f, rules)]
    assert left_out == [], f"deploy/Dockerfile.dockerignore leaves out {left_out}"


def test_image_gives_the_reference_agents_a_writable_workspace() -> None:
    """`agentmesh agent planner` runs as UID 10001; WORKDIR /app is root's."""
    runtime = DOCKERFILE.read_text().split(" AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    workspace = re.search(r"AGENTMESH_WORKSPACE=(\S+)", runtime)
    assert workspace is not None, "set AGENTMESH_WORKSPACE in the runtime stage"
    assert workspace[1].startswith("/tmp/"), workspace[1]


@pytest.mark.parametrize("manifest", ["coordinator.yaml", "cluster.yaml"])
def test_prometheus_scrapes_the_http_listener(manifest: str) -> None:
    """The scrape annotations name the port the coordinator serves /metrics on."""
    docs = [d for d in yaml.safe_load_all((DEPLOY / manifest).read_text()) if d]
    (pod,) = [
        d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "coordinator"
    ]
    (coordinator,) = containers(DEPLOY / manifest, "coordinator")
    settings = load_settings(environ=environment(coordinator))
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
    assert settings.http_listen.startswith("0.0.0.0:"), "reachable from the scraper"
    assert notes["prometheus.io/port"] == settings.http_listen.rpartition(":")[2]
