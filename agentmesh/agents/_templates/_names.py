"""Names in every case generated code needs: ``PascalCase``, ``camelCase``, ``snake_case``,
``kebab-case``, Title Case, and text made safe inside a comment or a docstring."""

from __future__ import annotations

import keyword
import re


def words(text: str) -> list[str]:
    """The words of ``text``: split at non-alphanumerics and at lower-to-upper case changes."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def pascal(text: str) -> str:
    """``PascalCase`` of the words of ``text``."""
    return "".join(w[0].upper() + w[1:] for w in words(text))


def camel(text: str) -> str:
    """``camelCase`` of the words of ``text``."""
    p = pascal(text)
    return p[:1].lower() + p[1:]


def snake(text: str) -> str:
    """``snake_case`` of the words of ``text``."""
    return "_".join(w.lower() for w in words(text))


def py_name(text: str) -> str:
    """``snake(text)``, with a trailing underscore when that is a Python keyword."""
    name = snake(text)
    return f"{name}_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def kebab(text: str) -> str:
    """``kebab-case`` of the words of ``text``."""
    return "-".join(w.lower() for w in words(text))


def title(text: str) -> str:
    """Title Case of the words of ``text``."""
    return " ".join(w[0].upper() + w[1:] for w in words(text))


def comment(text: str) -> str:
    """``text`` safe inside a /* */ or JSDoc comment and on one line."""
    return " ".join(text.replace("*/", "* /").split())


def docstring(text: str) -> str:
    """``text`` safe inside a Python triple-quoted docstring and on one line."""
    return " ".join(text.replace("\\", "/").replace('"""', "'''").split())
