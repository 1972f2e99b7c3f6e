"""Secrets by name, from where operators keep them: environment variables
(``AGENTMESH_SECRET_<NAME>``), a directory of one file per secret (a Kubernetes secret
volume: the file name is the secret's name, its content the value), and a YAML or JSON
file mapping names to values. The first source that has a name wins, in that order.

Later features resolve their credentials here (an external service's API key, a
webhook's signing secret), so those values never appear in a definition, a request or
the store; agents never see them. Files are read when asked for (a rotated Kubernetes
secret is seen at once); values are never logged, and errors name the secret and where
it was looked for, never a value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from coordinator.errors import FailedPrecondition, NotFound

#: What a secret's name is: letters, digits, '.', '_' and '-' (a Kubernetes key).
NAME = re.compile(r"[A-Za-z0-9._-]{1,253}")


class SecretProvider:
    """Secret values by name (see the module docstring). ``env_prefix`` "" turns the
    environment off; ``directory`` and ``file`` "" turn those off."""

    def __init__(
        self,
        *,
        env_prefix: str = "AGENTMESH_SECRET_",
        directory: str = "",
        file: str = "",
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.env_prefix = env_prefix
        self.directory = directory
        self.file = file
        self._environ = environ

    def get(self, name: str) -> str:
        """The value of secret ``name``: NotFound when no source has it,
        FailedPrecondition when a source cannot be read (naming it, never a value)."""
        if not NAME.fullmatch(name) or name in (".", ".."):
            raise NotFound(f"secret {name[:80]!r} is not a secret name")
        if self.env_prefix:
            key = self.env_prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
            value = self._environ.get(key)
            if value is not None:
                return value
        if self.directory:
            path = Path(self.directory) / name
            try:
                return path.read_text(encoding="utf-8").removesuffix("\n")
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError) as e:
                raise FailedPrecondition(f"secret {name!r}: cannot read {path}: {e}") from None
        if self.file:
            found = self._from_file().get(name)
            if found is not None:
                return found
        raise NotFound(f"secret {name!r} is not defined (looked in: {self.describe()})")

    def describe(self) -> str:
        """Where secrets are looked for, for messages."""
        places = []
        if self.env_prefix:
            places.append(f"${self.env_prefix}<NAME>")
        if self.directory:
            places.append(f"{self.directory}/<name>")
        if self.file:
            places.append(self.file)
        return ", ".join(places) or "nowhere (no source configured)"

    def _from_file(self) -> dict[str, str]:
        try:
            text = Path(self.file).read_text(encoding="utf-8")
            data = json.loads(text) if self.file.endswith(".json") else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            # The parser's message may quote the file's content: keep only its kind.
            raise FailedPrecondition(
                f"secrets file {self.file}: cannot read it ({type(e).__name__})"
            ) from None
        if not isinstance(data, dict):
            raise FailedPrecondition(f"secrets file {self.file}: expected a mapping of names")
        return {str(k): str(v) for k, v in data.items() if v is not None}
