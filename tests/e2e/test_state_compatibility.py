"""A stack deployed by the previous layout upgrades to this one with no change at all.

The layout change moved every module: dynamic providers are pickled into state by module path, and
components' URNs follow their type tokens and parents. So the previous layout itself (the commit before
the move, taken from git history with ``git archive``) runs ``pulumi up`` on the local stack against the
simulator; then this checkout runs on the same state and the same stack file.

The previous layout's local stack had no Kubernetes side in the engine (``localRender`` with mocks).
The stack file then upgrades the way this checkout's Pulumi.local.yaml did: no ``localRender``, the
cluster bootstrapped elsewhere (the local API server, its kubeconfig the secret managementKubeconfig),
charts from the pinned unpacked copies. So this checkout's first ``up`` adds the Kubernetes objects.
What must hold is that nothing the old state holds changes: after this checkout's first ``up`` every
resource of the old state has the same ID, inputs and outputs (plaintexts; only the provider's
configuration takes the upgraded keys), and no VM changed; then ``up`` and ``refresh`` change nothing
more, and ``destroy`` still loads the old pickles stored in the resources' outputs and leaves only the
templates.
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
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import PASSPHRASE, REPO, SHARED_CHARTS, STACK, pulumi_bin, require_shared
from tests.support.kube import kube_binaries
from tools import kube_api
from tools.kube_api import LocalKubeApi
from tools.local_stack import registered_nodes
from tools.scratch import PROJECT, Cli, cli_env, copy_project, reap
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
    require_shared()
    root = tmp_path_factory.mktemp("upgrade")
    bin_dir = pulumi_bin(root / "home")
    tree = previous_layout(root / "previous-tree")
    sim = ServedSimulator(str(root))
    seed(sim.pve)
    env = cli_env(bin_dir, root, PASSPHRASE)
    old_project, new_project = root / "old", root / "new"
    copy_project(tree, old_project, PREVIOUS_COPY)
    copy_project(REPO, new_project)
    (old_project / f"Pulumi.{STACK}.yaml").write_text(previous_stack_file(sim, tree / "Pulumi.local.yaml"))
    # The new side applies the Kubernetes side to a local API server, as the upgraded local stack does.
    kube = LocalKubeApi(root / "kube", bin_dir=kube_binaries()).start()
    assert kube.kubeconfig is not None
    kube_api.preload_crds(kube.kubeconfig)
    old = Cli(old_project, env, STACK)
    new = Cli(new_project, env, STACK)
    old.run("stack", "init")
    old.run("config", "set", "--secret", "proxmoxTokenSecret", TOKEN_SECRET)
    # The secrets are encrypted with the stack's salt, which `stack init` wrote into the old copy's file.
    new_stack = new_project / f"Pulumi.{STACK}.yaml"
    new_stack.write_text(upgraded_stack_file((old_project / f"Pulumi.{STACK}.yaml").read_text()))
    kube_api.register_nodes(kube.kubeconfig, registered_nodes(new_stack))
    new.run("config", "set", "--secret", "managementKubeconfig", stdin=kube.kubeconfig.read_text())
    try:
        old.run("up", "--yes", "--skip-preview")
        yield Upgrade(old, new, sim)
    finally:
        kube.stop()
        sim.stop()
        reap(root)


def previous_stack_file(sim: ServedSimulator, local_stack: Path) -> str:
    """The previous layout's local stack file pointed at ``sim`` (its secret is set per stack)."""
    local = yaml.safe_load(local_stack.read_text())
    config = {k: v for k, v in local["config"].items() if not k.endswith(":proxmoxTokenSecret")}
    config[f"{PROJECT}:proxmox"] = {**config[f"{PROJECT}:proxmox"], "endpoint": sim.pve.url, "caBundle": sim.cafile}
    return yaml.safe_dump({"config": config})


UPGRADED_KEYS = tuple(f"{PROJECT}:{k}" for k in ("localRender", "managementCluster", "charts", "managementKubeconfig"))
"""Stack configuration keys the upgrade changes: the default provider's inputs hold the stack config."""

UPGRADED_OUTPUTS = ("managementApiEndpoint", "renderDir", "apiEndpoint", "kubeconfig")
"""Outputs of the stack and of components that describe the management cluster's API: rendered
placeholders before, the cluster bootstrapped elsewhere after. Resources (``custom``) keep all theirs."""


def upgraded_stack_file(old_text: str) -> str:
    """The old stack file (its salt and secret kept) upgraded as this checkout's Pulumi.local.yaml was:
    ``localRender`` gone, ``managementCluster`` bootstrapped elsewhere, charts from the unpacked copies."""
    document = yaml.safe_load(old_text)
    current = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]
    config = {k: v for k, v in document["config"].items() if k != f"{PROJECT}:localRender"}
    mc_key, charts_key = f"{PROJECT}:managementCluster", f"{PROJECT}:charts"
    bootstrap = {k: current[mc_key][k] for k in ("bootstrap", "awaitReadiness")}
    config[mc_key] = {**config[mc_key], **bootstrap}
    config[charts_key] = {**current[charts_key], "directory": str(SHARED_CHARTS)}
    return yaml.safe_dump({**document, "config": config}, sort_keys=False)


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


def resources_by_urn(cli: Cli) -> dict[str, dict[str, Any]]:
    """The stack's resources by URN, secrets decrypted: a secret is re-encrypted with a fresh nonce
    whenever the engine writes it, so only plaintexts can be compared."""
    state = json.loads(cli.run("stack", "export", "--show-secrets").stdout)
    return {r["urn"]: r for r in state["deployment"]["resources"]}


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """What must not change about a resource: its ID, its outputs and its inputs, except the pickled
    provider in the inputs, which the engine rewrites on every step to the program's current one, and
    the configuration keys the upgrade changes, which a provider resource holds as inputs and outputs,
    and the management API's outputs of components and the stack (``UPGRADED_OUTPUTS``)."""
    config_keys = UPGRADED_KEYS if resource["type"].startswith("pulumi:providers:") else ()
    api_outputs = () if resource.get("custom") else UPGRADED_OUTPUTS
    skipped_inputs, skipped_outputs = {"__provider", *config_keys}, {*config_keys, *api_outputs}
    inputs = {k: v for k, v in (resource.get("inputs") or {}).items() if k not in skipped_inputs}
    outputs = {k: v for k, v in (resource.get("outputs") or {}).items() if k not in skipped_outputs}
    return {"id": resource.get("id"), "inputs": inputs, "outputs": outputs}


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Which parts of ``comparable`` differ: ``id``, ``inputs.<key>``, ``outputs.<key>``."""
    old, new = comparable(before), comparable(after)
    found = ["id"] if old["id"] != new["id"] else []
    for part in ("inputs", "outputs"):
        a, b = old[part] or {}, new[part] or {}
        found += [f"{part}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return found


def vm_configs(sim: ServedSimulator) -> dict[int, dict[str, Any]]:
    """Every VM's config in the simulator, by VMID."""
    return {vm.vmid: dict(vm.config) for vm in sim.pve.vms}


def test_this_layout_changes_nothing_the_old_state_holds(upgrade: Upgrade) -> None:
    # A preview cannot run first here: on a new cluster, the provider cannot plan a chart whose objects
    # are of a kind another chart of the same run installs (pulumi-kubernetes#3176, see README). So the
    # new layout runs `up`, and everything the old state held must come out of it exactly as it was.
    before, vms = resources_by_urn(upgrade.old), vm_configs(upgrade.sim)
    upgrade.new.run("up", "--yes", "--skip-preview")
    after = resources_by_urn(upgrade.new)
    assert set(before) <= set(after), f"resources of the old state gone: {set(before) - set(after)}"
    changed = {urn: differences(before[urn], after[urn]) for urn in before}
    changed = {urn: parts for urn, parts in changed.items() if parts}
    assert changed == {}, f"the new layout changed resources of the old state: {json.dumps(changed, indent=1)}"
    assert vm_configs(upgrade.sim) == vms, "a VM in the simulator was changed"
    added = set(after) - set(before)
    # Only the Kubernetes side is new (its objects, the components holding them, their providers): no
    # Proxmox resource (every one is a Python dynamic resource) was added.
    assert any("$kubernetes:" in urn for urn in added), sorted(added)
    proxmox_added = sorted(urn for urn in added if after[urn]["type"] == "pulumi-python:dynamic:Resource")
    assert proxmox_added == [], proxmox_added


def test_this_layout_then_ups_and_refreshes_with_no_change(upgrade: Upgrade) -> None:
    upgrade.new.run("up", "--yes", "--expect-no-changes", "--skip-preview")
    upgrade.new.run("refresh", "--yes", "--expect-no-changes", "--skip-preview")


def test_destroy_by_this_layout_loads_the_old_pickles_and_leaves_the_templates(upgrade: Upgrade) -> None:
    assert any(not p.startswith("providers.dynamic.") for p in providers_in_state(upgrade.new))
    upgrade.new.run("destroy", "--yes", "--skip-preview")
    assert {vm.vmid for vm in upgrade.sim.pve.vms} == {9000, 9001}
