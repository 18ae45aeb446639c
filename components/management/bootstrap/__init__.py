"""The kubeadm bootstrap scripts and how they are rendered with their parameters.

The scripts beside this module are plain bash, linted with shellcheck. A rendered script is what a
``remote.Command`` sends on stdin to ``sudo -n /bin/bash -s``:

1. ``set -euo pipefail`` and a header of parameter assignments (``NAME='value'``, shell-quoted);
2. ``common.sh`` (log/die/retry/write_file);
3. the script itself, which declares its parameters at the top as ``: "${NAME:?why}"`` (required) or
   ``: "${NAME=}"`` (optional).

Parameters travel inside the script on stdin, never on the command line (``ps``) or through the SSH
environment (``AcceptEnv`` is rarely configured). ``render_script`` refuses a missing required
parameter and an undeclared one, so a renamed variable cannot silently become empty.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

__all__ = [
    "BOOTSTRAP_DIR",
    "SCRIPTS",
    "ScriptParameters",
    "render_script",
    "script_parameters",
    "script_path",
]

BOOTSTRAP_DIR: Final = Path(__file__).resolve().parent
"""Directory of the bootstrap scripts."""

SCRIPTS: Final[tuple[str, ...]] = (
    "prepare-node.sh",
    "kubeadm-init.sh",
    "join-credentials.sh",
    "kubeadm-join.sh",
)
"""Scripts that can be rendered (``common.sh`` is included in each)."""

_COMMON: Final = "common.sh"
_DECLARATION: Final = re.compile(r'^: "\$\{([A-Z][A-Z0-9_]*)(:\?|=|:=)', re.MULTILINE)
_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class ScriptParameters:
    """The parameters a script declares."""

    required: frozenset[str]
    """Declared as ``: "${NAME:?...}"``: must be given and non-empty."""

    optional: frozenset[str]
    """Declared as ``: "${NAME=}"`` or ``: "${NAME:=default}"`` (also in ``common.sh``)."""

    @property
    def allowed(self) -> frozenset[str]:
        """Every declared parameter."""
        return self.required | self.optional


def script_path(name: str) -> Path:
    """Path of a bootstrap script; ValueError for an unknown name."""
    if name not in (*SCRIPTS, _COMMON):
        raise ValueError(f"unknown bootstrap script {name!r}; known: {', '.join(SCRIPTS)}")
    return BOOTSTRAP_DIR / name


@cache
def _text(name: str) -> str:
    return script_path(name).read_text(encoding="utf-8")


def script_parameters(name: str) -> ScriptParameters:
    """The parameters ``name`` declares (plus the optional ones of ``common.sh``)."""
    required: set[str] = set()
    optional: set[str] = set()
    for source in (_text(_COMMON), _text(name)):
        for var, kind in _DECLARATION.findall(source):
            (required if kind == ":?" else optional).add(var)
    return ScriptParameters(frozenset(required), frozenset(optional - required))


def render_script(name: str, params: Mapping[str, str]) -> str:
    """Render ``name`` with ``params`` as one self-contained bash script for stdin.

    Raises ValueError for an unknown script, a missing or empty required parameter, an undeclared
    parameter, or a value containing a NUL byte (which bash cannot hold).
    """
    declared = script_parameters(name)
    unknown = sorted(set(params) - declared.allowed)
    if unknown:
        raise ValueError(f"{name}: undeclared parameters {unknown}; declared: {sorted(declared.allowed)}")
    missing = sorted(p for p in declared.required if not params.get(p))
    if missing:
        raise ValueError(f"{name}: missing required parameters {missing}")
    header = []
    for key in sorted(params):
        value = params[key]
        if not _NAME.fullmatch(key):
            raise ValueError(f"{name}: parameter name {key!r} is not an upper-case shell name")
        if "\0" in value:
            raise ValueError(f"{name}: parameter {key} contains a NUL byte")
        header.append(f"{key}={shlex.quote(value)}")
    # Every byte below is part of a bootstrap command's input: a change re-runs that step on every
    # existing cluster. So the header keeps the wording it had when the scripts lived in
    # components/bootstrap/ (tests/components/management/test_bootstrap.py pins the rendered bytes).
    parts = [
        "#!/usr/bin/env bash",
        f"# rendered from components/bootstrap/{name} by the platform program",
        "# the parameters below are literal data: single-quoted on purpose, nothing expands",
        "# shellcheck disable=SC2016",
        "set -euo pipefail",
        *header,
        _text(_COMMON),
        _text(name),
    ]
    return "\n".join(parts)
