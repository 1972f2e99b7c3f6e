"""Secrets: the provider that resolves them by name (``provider``) and the rules that
keep secret values out of the history, answers, errors and logs (``redact``)."""

from cryptography.fernet import Fernet

from coordinator.config import Settings
from coordinator.errors import ConfigError, NotFound
from coordinator.secrets.provider import SecretProvider
from coordinator.secrets.redact import REDACTED, SEALED, Redactor, Secrets

__all__ = [
    "REDACTED",
    "SEALED",
    "Redactor",
    "SecretProvider",
    "Secrets",
    "provider_for",
    "redactor_for",
]


def provider_for(settings: Settings) -> SecretProvider:
    """The secret provider ``settings`` describe."""
    return SecretProvider(
        env_prefix=settings.secrets_env_prefix,
        directory=settings.secrets_dir,
        file=settings.secrets_file,
    )


def redactor_for(settings: Settings) -> Redactor:
    """The redactor ``settings`` describe, with the history key from the provider
    (ConfigError for one that is not a Fernet key; none found: markers, and
    ``no_key_note`` says why, for the runtime to log when it first matters)."""
    provider = provider_for(settings)
    key: str | None = None
    note = "history_key_secret is empty"
    if settings.history_key_secret:
        try:
            key = provider.get(settings.history_key_secret).strip()
        except NotFound:
            note = f"no secret {settings.history_key_secret!r} ({provider.describe()})"
    if key:
        try:
            Fernet(key.encode())
        except ValueError:
            raise ConfigError(
                f"secret {settings.history_key_secret!r} is not a Fernet key (32 bytes, "
                "url-safe base64: make one with `agentmesh auth new-history-key`)"
            ) from None
    redactor = Redactor(settings.redact_fields, key)
    redactor.no_key_note = "" if key else note
    return redactor
