"""``make lint`` and the pre-commit hooks run the same gates, and the hook file is valid for pre-commit."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.support.paths import REPO
from tests.support.tools import venv_tool

GATES = {
    "ruff check": r"ruff check",
    "ruff format": r"ruff format --check",
    "mypy": r"mypy \.",
    "shellcheck": r"shellcheck -x --severity=style",
    "actionlint": r"scripts/actionlint\.sh",
}
"""Gate -> the command fragment both places must run."""


def lint_recipe() -> str:
    """The commands of the Makefile's lint target."""
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^lint:.*\n((?:\t.*\n)+)", text, re.M)
    assert match, "the Makefile has no lint target"
    return match.group(1)


def test_make_lint_and_pre_commit_run_the_same_gates() -> None:
    recipe = lint_recipe()
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"]
    entries = "\n".join(h["entry"] for repo in hooks for h in repo["hooks"])
    for gate, fragment in GATES.items():
        assert re.search(fragment, recipe), f"make lint does not run {gate}"
        assert re.search(fragment, entries), f"the pre-commit hooks do not run {gate}"
    assert len(re.findall(r"^\t", recipe, re.M)) == len(GATES), "make lint runs a gate the hooks do not know"


def test_the_hook_file_is_valid_for_pre_commit() -> None:
    result = subprocess.run(
        [venv_tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
