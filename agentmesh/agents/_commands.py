"""The executor's command policy: which programs run, which count as shell, which
environment names a task may set, which arguments name paths. Pure decisions on argv
and names; ``agentmesh.agents.executor`` applies them (see its docstring and docs/security.md).
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import sys
from dataclasses import dataclass

_SHELL_OPERATOR = frozenset("|&;<>()")
_PR_SET_DUMPABLE = 4


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What the seed's workflows and the demo run (``cat`` of a workspace file) plus small tools
# that read or write the files their arguments name and start nothing else. Interpreters,
# package managers and git are not here: each runs code that files in the workspace (which
# other agents write) or its own options name.
DEFAULT_PROGRAMS = _words(
    """basename cat cmp cp cut diff dirname echo false grep head ls md5sum mkdir mv printf
    pwd rm rmdir sha256sum sleep sort tail touch tr true uniq wc"""
)

# Programs that run another program, or code, named by their arguments or by a config
# their arguments can set, whatever those arguments are: commands with them count as shell.
SHELL_PROGRAMS = _words(
    """sh ash bash rbash dash zsh ksh mksh pdksh oksh yash posh fish csh tcsh rc es xonsh
    elvish nu pwsh powershell busybox toybox
    env xargs nohup timeout nice ionice setsid stdbuf sudo su doas runuser pkexec sg newgrp
    chroot unshare nsenter setpriv capsh chrt taskset flock time watch script expect strace
    ltrace gdb valgrind systemd-run at batch parallel fakeroot proot firejail bwrap
    ssh rsh scp sftp less more
    awk gawk mawk nawk sed gsed ed ex vi vim nvim emacs dc m4 tclsh wish lua luajit r
    rscript julia osascript
    git make gmake npx pnpx bunx bun deno"""
)


@dataclass(frozen=True)
class CodeOptions:
    """The options with which a program runs code or another program given on its command
    line; ``letters`` are short options found anywhere in a bundle (``-le``), scanning a
    bundle stops at a letter of ``value_letters`` (the rest is that option's value)."""

    letters: str = ""
    value_letters: str = ""
    options: frozenset[str] = frozenset()  # exact, or followed by "=value"
    commands: frozenset[str] = frozenset()  # subcommands (any non-option argument)
    value_prefixes: tuple[str, ...] = ()  # an argument or option value starting so is code


def _opts(*names: str) -> frozenset[str]:
    return frozenset(names)


_PYTHON = CodeOptions("cm", "WX")
_NPM = CodeOptions(
    "c",
    options=_opts("--call", "--script-shell", "--node-options", "--shell"),
    commands=_opts("exec", "x", "dlx", "explore", "init", "create", "innit"),
)
CODE_OPTIONS: dict[str, CodeOptions] = {
    "python": _PYTHON,
    "pypy": _PYTHON,
    "node": CodeOptions("ep", "rC", _opts("--eval", "--print", "--run"), value_prefixes=("data:",)),
    "perl": CodeOptions("eEMmdF", "I"),
    "ruby": CodeOptions("e", "IrCEF"),
    "php": CodeOptions("rRBEFad", "cfz"),
    "find": CodeOptions(options=_opts("-exec", "-execdir", "-ok", "-okdir")),
    "sort": CodeOptions(options=_opts("--compress-program")),
    "split": CodeOptions(options=_opts("--filter")),
    "tar": CodeOptions(
        "IF",
        "fbCgHKLNTVX",
        _opts(
            "--to-command",
            "--use-compress-program",
            "--checkpoint-action",
            "--info-script",
            "--new-volume-script",
        ),
    ),
    "rsync": CodeOptions("e", options=_opts("--rsh", "--rsync-path")),
    "zip": CodeOptions(options=_opts("-TT", "--unzip-command")),
    "man": CodeOptions("PH", options=_opts("--pager", "--html")),
    "rg": CodeOptions(options=_opts("--pre")),
    "npm": _NPM,
    "pnpm": _NPM,
    "yarn": _NPM,
}
_ALIASES = {"nodejs": "node"}

# Names a task's env may not set: the executor sets them, or they make programs load,
# run or read other code or configuration.
ENV_FORBIDDEN = _words(
    """PATH HOME TMPDIR SHELL ENV IFS PS1 PS2 PS3 PS4 PROMPT_COMMAND CDPATH GLOBIGNORE
    SHELLOPTS BASHOPTS EXECIGNORE ZDOTDIR LOCPATH NLSPATH HOSTALIASES RESOLV_HOST_CONF
    LOCALDOMAIN RES_OPTIONS CLASSPATH TCLLIBPATH PAGER MANPAGER MANOPT EDITOR VISUAL
    BROWSER SUDO_ASKPASS TERMINFO TERMINFO_DIRS TERMCAP CURL_HOME WGETRC GNUPGHOME"""
)
ENV_FORBIDDEN_PREFIXES = (
    "LD_",
    "DYLD_",
    "GLIBC_",
    "MALLOC_",
    "GCONV",
    "BASH_",
    "PYTHON",
    "PERL",
    "RUBY",
    "GEM_",
    "BUNDLE_",
    "NODE_",
    "NPM_CONFIG_",
    "YARN_",
    "PHP",
    "LUA_",
    "JAVA_",
    "_JAVA_",
    "JDK_",
    "GIT_",
    "SSH_",
    "LESS",
    "XDG_",
    "OPENSSL_",
)
# Copied from the agent's own environment; nothing else of it reaches a command.
ENV_FROM_AGENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR")


def protect_environment() -> bool:
    """Mark this process non-dumpable (Linux ``prctl(PR_SET_DUMPABLE, 0)``): processes of
    the same user that are not root, the commands it starts among them, can then neither
    read its ``/proc/<pid>/environ`` (its secrets) nor ptrace it; it writes no core dumps.
    Whether that was done (False elsewhere); never raises."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _family(name: str) -> str:
    """``python3.11`` -> ``python``, ``zsh-5.9`` -> ``zsh``, ``nodejs`` -> ``node``."""
    low = name.lower()
    base = re.sub(r"[-_]?[0-9][0-9.]*[a-z]?$", "", low) or low
    return _ALIASES.get(base, base)


def shell_reason(argv: list[str]) -> str | None:
    """Why ``argv`` counts as a shell command (it runs another program or code given on
    its command line), or None."""
    name = os.path.basename(argv[0])
    family = _family(name)
    if family in SHELL_PROGRAMS or name.lower() in SHELL_PROGRAMS:
        return f"{name} runs other programs or code named by its arguments"
    spec = CODE_OPTIONS.get(family)
    if spec is None:
        return None
    for arg in argv[1:]:
        if _is_code_option(arg, spec):
            return f"{name} {arg[:40]} runs code given on the command line"
    return None


def _is_code_option(arg: str, spec: CodeOptions) -> bool:
    option, _, value = arg.partition("=")
    if option in spec.options and arg.startswith("-"):
        return True
    if spec.value_prefixes and (
        arg.startswith(spec.value_prefixes) or value.startswith(spec.value_prefixes)
    ):
        return True
    if not arg.startswith("-"):
        return arg in spec.commands
    if arg.startswith("--") or not spec.letters:
        return False
    for letter in arg[1:]:
        if letter in spec.letters:
            return True
        if letter in spec.value_letters:
            return False
    return False


def needs_shell(command: str) -> str | None:
    """The first shell construct of ``command`` outside quotes ($( and ` anywhere)."""
    for construct in ("$(", "`"):
        if construct in command:
            return construct
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        for token in lexer:
            if token and set(token) <= _SHELL_OPERATOR:
                return token
    except ValueError:
        return None  # unbalanced quotes: shlex.split reports them
    return None


def env_refusal(name: str) -> str | None:
    """Why a task's env may not set ``name``, or None."""
    if name in ENV_FORBIDDEN:
        return "the executor sets it, or it makes programs run or read other code"
    prefix = next((p for p in ENV_FORBIDDEN_PREFIXES if name.startswith(p)), None)
    if prefix is not None:
        return f"{prefix}* names change which code programs load or run"
    return None


def path_candidates(arg: str) -> list[str]:
    """``arg`` and the path an option may carry: ``--file=/x``, ``if=/x``, ``-o/x``."""
    found = [arg]
    if "=" in arg:
        found.append(arg.partition("=")[2])
    elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        rest = arg[2:]
        if "/" in rest or rest.startswith("."):
            found.append(rest)
    return found
