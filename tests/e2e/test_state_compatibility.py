"""A stack deployed by the previous layout upgrades to this one with no change at all.

The layout change moved every module: dynamic providers are pickled into state by module path, and
components' URNs follow their type tokens and parents. So the previous layout itself (the commit before
the move, taken from git history with ``git archive``) runs ``pulumi up`` on the local stack against the
simulator; then this checkout runs on the same state: ``preview`` and ``up`` must show no change,
``refresh`` no drift, and ``destroy`` must still load the old pickles stored in the resources' outputs
and leave only the templates.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, STACK, Cli, cli_env, copy_project, reap, stack_file, toolchain_bin
from tools.simulator import TOKEN_SECRET, ServedSimulator, seed

pytestmark = pytest.mark.e2e

PREVIOUS_LAYOUT = "c7fea3af96c5acb4a5428590718b6121fead76e1"
"""The last commit with the flat components/ and providers/ folders."""

PREVIOUS_COPY = ("Pulumi.yaml", "__main__.py", "components", "providers", "tools", "policy")


def previous_layout(dest: Path) -> Path:
    """Extract the previous layout's tree into ``dest``; skip only when this clone has no history."""
    known = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS_LAYOUT}^{{commit}}"], capture_output=True, check=False
    )
    if known.returncode != 0:
        shallow = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"], capture_output=True, text=True
        )
        if shallow.stdout.strip() == "true":
            pytest.skip(f"this clone is shallow: commit {PREVIOUS_LAYOUT[:12]} (the previous layout) is not in it")
        pytest.fail(f"commit {PREVIOUS_LAYOUT[:12]} (the previous layout) is missing from the repository")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_LAYOUT], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@dataclass
class Upgrade:
    """One stack deployed by the previous layout, and a CLI in a copy of this checkout for the same state."""

    old: Cli
    new: Cli
    sim: ServedSimulator


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgrade]:
    """``pulumi up`` by the previous layout; then a project copy of this checkout on the same backend."""
    bin_dir = toolchain_bin()
    root = tmp_path_factory.mktemp("upgrade")
    tree = previous_layout(root / "previous-tree")
    sim = ServedSimulator(str(root))
    seed(sim.pve)
    env = cli_env(bin_dir, root)
    old_project, new_project = root / "old", root / "new"
    copy_project(tree, old_project, PREVIOUS_COPY)
    copy_project(REPO, new_project)
    config = stack_file(sim, tree / "Pulumi.local.yaml")
    for project in (old_project, new_project):
        (project / f"Pulumi.{STACK}.yaml").write_text(config)
    old, new = Cli(old_project, env), Cli(new_project, env)
    old.run("stack", "init")
    old.run("config", "set", "--secret", "proxmoxTokenSecret", TOKEN_SECRET)
    # The secret is encrypted with the stack's salt, which `stack init` wrote into the old copy's file.
    (new_project / f"Pulumi.{STACK}.yaml").write_text((old_project / f"Pulumi.{STACK}.yaml").read_text())
    try:
        old.run("up", "--yes", "--skip-preview")
        yield Upgrade(old, new, sim)
    finally:
        sim.stop()
        reap(root)


def providers_in_state(cli: Cli) -> set[str]:
    """The module paths named by every pickled ``__provider`` in the stack's state (inputs and outputs)."""
    state = json.loads(cli.run("stack", "export", "--show-secrets").stdout)
    found = set()
    for resource in state["deployment"]["resources"]:
        for props in (resource.get("inputs", {}), resource.get("outputs", {})):
            blob = props.get("__provider")
            if isinstance(blob, dict):  # a secret, shown as {"4dabf18193072939515e22adb298388d": ..., "plaintext"}
                blob = json.loads(blob["plaintext"])
            if isinstance(blob, str):
                raw = base64.b64decode(blob)
                found |= {m for m in _MODULES if m.encode() in raw}
    return found


_MODULES = (
    "providers.vm_resource",
    "providers.pool_resource",
    "providers.firewall_resource",
    "providers.template_resource",
    "providers.access_resource",
    "providers.dynamic.vm",
    "providers.dynamic.pool",
    "providers.dynamic.firewall",
    "providers.dynamic.template",
    "providers.dynamic.access",
)


def test_the_previous_layout_wrote_its_own_module_paths(upgrade: Upgrade) -> None:
    # Guards the test itself: the state really names the old modules, so the steps below load them.
    paths = providers_in_state(upgrade.old)
    assert {"providers.vm_resource", "providers.pool_resource", "providers.firewall_resource"} <= paths
    assert not any(p.startswith("providers.dynamic.") for p in paths)


def test_this_layout_previews_no_change_on_the_old_state(upgrade: Upgrade) -> None:
    preview = upgrade.new.run("preview", "--expect-no-changes", "--diff")
    assert "error" not in preview.stderr.lower()
    assert "replace" not in preview.stdout


def test_this_layout_ups_with_no_change_and_refreshes_without_drift(upgrade: Upgrade) -> None:
    upgrade.new.run("up", "--yes", "--expect-no-changes", "--skip-preview")
    upgrade.new.run("refresh", "--yes", "--expect-no-changes", "--skip-preview")
    upgrade.new.run("preview", "--expect-no-changes")


def test_destroy_by_this_layout_loads_the_old_pickles_and_leaves_the_templates(upgrade: Upgrade) -> None:
    assert any(not p.startswith("providers.dynamic.") for p in providers_in_state(upgrade.new))
    upgrade.new.run("destroy", "--yes", "--skip-preview")
    assert {vm.vmid for vm in upgrade.sim.pve.vms} == {9000, 9001}
