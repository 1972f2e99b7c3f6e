"""The gRPC listener's TLS: server credentials read from ``tls_cert``/``tls_key`` (and,
for mutual TLS, ``tls_client_ca``), re-read whenever one of the files changes, so a
renewed certificate (cert-manager, a rotated Kubernetes secret) is served to new
connections without a restart. Connections already open keep the certificate they
were made with.

gRPC asks for the configuration at each new handshake; the files are only re-read when
their modification times or sizes changed. A change that cannot be loaded (a key that
does not match, a half-written file) keeps the last good configuration and logs why.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from coordinator.config import Settings
from coordinator.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Files:
    cert: Path
    key: Path
    client_ca: Path | None


def _stamp(files: _Files) -> tuple[tuple[int, int], ...]:
    paths = [files.cert, files.key, *([files.client_ca] if files.client_ca else [])]
    out = []
    for path in paths:
        st = os.stat(path)
        out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e.strerror or e}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{setting}: {path} is not a PEM file")
    return data


class ReloadingCredentials:
    """Server credentials for ``settings`` that follow changes to their files.

    Raises ``ConfigError`` at construction when a file cannot be read or is not PEM
    (the coordinator refuses to start rather than serve without TLS).
    """

    def __init__(self, settings: Settings) -> None:
        self._files = _Files(
            Path(settings.tls_cert),
            Path(settings.tls_key),
            Path(settings.tls_client_ca) if settings.tls_client_ca else None,
        )
        self.mutual = self._files.client_ca is not None
        self._stamp = _stamp_or_raise(self._files)
        self._config = self._load()
        self.reloads = 0

    def _load(self) -> grpc.ServerCertificateConfiguration:
        f = self._files
        cert = _read(f.cert, "tls_cert")
        key = _read(f.key, "tls_key")
        ca = _read(f.client_ca, "tls_client_ca") if f.client_ca else None
        _check(f)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's per-handshake question: a new configuration, or None to keep the last."""
        try:
            stamp = _stamp(self._files)
        except OSError as e:
            log.warning("TLS files not readable (%s); serving the last good certificate", e)
            return None
        if stamp == self._stamp:
            return None
        try:
            config = self._load()
        except ConfigError as e:
            log.warning("TLS files changed but cannot be loaded (%s); keeping the last", e)
            return None
        self._stamp = stamp
        self._config = config
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self._files.cert)
        return config

    def server_credentials(self) -> grpc.ServerCredentials:
        """The credentials for ``add_secure_port``: the files as loaded now, asked again
        at every new handshake (``require_client_authentication`` with a client CA)."""
        return grpc.dynamic_ssl_server_credentials(
            self._config, self._fetch, require_client_authentication=self.mutual
        )


def _check(files: _Files) -> None:
    """Refuse what gRPC would fail on only at the next handshake: a certificate or key
    that does not parse, a key that is not the certificate's, a CA bundle that does not
    load. The standard library's TLS does the checking."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, ValueError) as e:
        raise ConfigError(
            f"tls_cert/tls_key: {files.cert} and {files.key} are not a certificate and its "
            f"private key ({e})"
        ) from None
    if files.client_ca is not None:
        try:
            context.load_verify_locations(cafile=files.client_ca)
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(
                f"tls_client_ca: {files.client_ca} is not a CA bundle ({e})"
            ) from None


def _stamp_or_raise(files: _Files) -> tuple[tuple[int, int], ...]:
    try:
        return _stamp(files)
    except OSError as e:
        raise ConfigError(f"TLS: cannot read {e.filename}: {e.strerror or e}") from None
