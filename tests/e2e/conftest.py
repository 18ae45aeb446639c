"""The real ``pulumi`` CLI and kubernetes plugin driving a copy of this project against a Proxmox simulator
and a local kube-apiserver, both running for the test module.

The CLI and plugin come from ``scripts/pulumi-toolchain.sh`` (built from Go modules, cached outside the
repository), the API server from ``scripts/kube-toolchain.sh``. Each test module gets its own project
copy, file backend, PULUMI_HOME, simulator and API server, so nothing touches the developer's local stack.

The stack is the local stack's configuration (``managementCluster.bootstrap: external``: the program
creates the VMs on the simulator, the API server stands in for the Kubernetes they would run) plus one
tenant, so tenant objects meet the API server too. The pinned charts and the Cluster API CRDs come from
``../shared``; without them the tier is skipped, with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.support.kube import kube_binaries
from tools import kube_api
from tools.kube_api import LocalKubeApi
from tools.local_stack import registered_nodes
from tools.scratch import PROJECT, Cli, ToolchainError, cli_env, copy_project, reap, toolchain_bin
from tools.simulator import TOKEN_SECRET, ServedSimulator, seed

REPO: Final = Path(__file__).resolve().parents[2]
STACK: Final = "e2e"
PASSPHRASE: Final = "e2e-only-passphrase"
SHARED_CHARTS: Final = REPO.parent / "shared" / "charts"

E2E_TENANT: Final[dict[str, Any]] = {
    "name": "team-e2e",
    "controlPlaneReplicas": 1,
    "workerPools": [{"name": "general", "count": 1, "cores": 2, "memoryMiB": 4096}],
    "podCidr": "10.200.0.0/16",
    "serviceCidr": "10.201.0.0/16",
    "network": {
        "bridge": "vmbr0",
        "vlan": 110,
        "cidr": "10.110.0.0/24",
        "gateway": "10.110.0.1",
        "ipRange": {"start": "10.110.0.100", "end": "10.110.0.120"},
        "dnsServers": ["10.110.0.1"],
    },
    "quota": {"cpu": 8, "memoryGiB": 16, "storageGiB": 100, "pods": 50},
}
"""One tenant, so the tenant objects (namespace, RBAC, policies, CAPI/Kamaji objects) meet the API server."""


def require_shared() -> None:
    """Skip, naming what is missing, when the pinned charts or the CRD schemas are not beside the checkout."""
    if not SHARED_CHARTS.is_dir():
        pytest.skip(f"{SHARED_CHARTS} not found: the stack installs the pinned charts from their unpacked copies")
    try:
        kube_api.crd_files(patterns=kube_api.CRD_PRELOAD_PATTERNS)
    except kube_api.CrdsNotFoundError as exc:
        pytest.skip(f"{exc}: the Cluster API CRDs must be preloaded before the stack's CAPI objects can apply")


def pulumi_bin(home: Path) -> str:
    """The CLI's bin dir, with the kubernetes plugin registered in ``home``; skip with the reason if unbuildable."""
    try:
        return toolchain_bin(home)
    except ToolchainError as exc:
        pytest.skip(f"the pulumi CLI or its kubernetes plugin could not be built: {exc}")


def stack_document(sim: ServedSimulator, local_stack: Path = REPO / "Pulumi.local.yaml") -> dict[str, Any]:
    """The local stack's configuration pointed at ``sim``, with the e2e tenant and absolute chart paths.

    The secret is left out: it is encrypted per stack (``pulumi config set --secret``).
    """
    local = yaml.safe_load(local_stack.read_text())
    config = {k: v for k, v in local["config"].items() if not k.endswith(":proxmoxTokenSecret")}
    config[f"{PROJECT}:proxmox"] = {**config[f"{PROJECT}:proxmox"], "endpoint": sim.pve.url, "caBundle": sim.cafile}
    charts = config.get(f"{PROJECT}:charts")
    if isinstance(charts, dict) and charts.get("source") == "directory":
        config[f"{PROJECT}:charts"] = {**charts, "directory": str(SHARED_CHARTS)}
    config[f"{PROJECT}:tenants"] = [E2E_TENANT]
    # Tenants' API servers are LoadBalancer Services: MetalLB's pool, inside the management network.
    config[f"{PROJECT}:kamaji"] = {"loadBalancer": {"ipRange": {"start": "10.10.0.200", "end": "10.10.0.209"}}}
    return {"config": config}


@dataclass
class Deployment:
    """A project copy wired to a simulator and a local API server, with its CLI."""

    cli: Cli
    sim: ServedSimulator
    kube: LocalKubeApi
    root: Path

    @property
    def pve(self) -> Any:
        """The simulator's model (VMs, tokens, requests)."""
        return self.sim.pve

    @property
    def stack_file(self) -> Path:
        """The stack's configuration file in the project copy."""
        return self.cli.cwd / f"Pulumi.{STACK}.yaml"

    def guests(self) -> dict[int, Any]:
        """Non-template VMs in the simulator, by VMID."""
        return {vm.vmid: vm for vm in self.pve.vms if not vm.template}

    def state_text(self) -> str:
        """The stack's checkpoint file as stored by the file backend."""
        files = list((self.root / "state").rglob(f"{STACK}.json"))
        assert files, "no checkpoint file found"
        return files[0].read_text()

    def exported_state(self) -> dict[str, Any]:
        """``pulumi stack export`` (secrets stay encrypted)."""
        return dict(json.loads(self.cli.run("stack", "export").stdout))

    def outputs(self) -> dict[str, Any]:
        """The stack outputs (secrets masked)."""
        return dict(json.loads(self.cli.run("stack", "output", "--json").stdout))


def deploy_copy(
    root: Path, make_stack: Callable[[ServedSimulator], dict[str, Any]] = stack_document
) -> tuple[Cli, ServedSimulator, LocalKubeApi]:
    """Project copy, simulator, API server with the CAPI CRDs preloaded, and an initialised stack whose
    configuration ``make_stack`` writes for the simulator."""
    bin_dir = pulumi_bin(root / "home")
    kube_bin = kube_binaries()
    project = root / "project"
    copy_project(REPO, project)
    sim = ServedSimulator(str(root))
    seed(sim.pve)
    kube = LocalKubeApi(root / "kube", bin_dir=kube_bin).start()
    try:
        assert kube.kubeconfig is not None
        kube_api.preload_crds(kube.kubeconfig)
        stack_file = project / f"Pulumi.{STACK}.yaml"
        stack_file.write_text(yaml.safe_dump(make_stack(sim), sort_keys=False))
        # The cluster "bootstrapped elsewhere" has its nodes already: register them as kubelets would.
        kube_api.register_nodes(kube.kubeconfig, registered_nodes(stack_file))
        cli = Cli(project, cli_env(bin_dir, root, PASSPHRASE), STACK)
        cli.run("stack", "init")
        cli.run("config", "set", "--secret", "proxmoxTokenSecret", TOKEN_SECRET)
        cli.run("config", "set", "--secret", "managementKubeconfig", stdin=kube.kubeconfig.read_text())
    except BaseException:
        kube.stop()
        sim.stop()
        raise
    return cli, sim, kube


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A fresh project copy, backend, simulator and API server; the stack is initialised, nothing deployed."""
    require_shared()
    root = tmp_path_factory.mktemp("e2e")
    cli, sim, kube = deploy_copy(root)
    try:
        yield Deployment(cli, sim, kube, root)
    finally:
        kube.stop()
        sim.stop()
        reap(root)
