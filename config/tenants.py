"""The tenant domain: one entry per tenant cluster (worker pools, network, quota), and its preflight."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network
from typing import Final

from pydantic import Field

from config.base import (
    Cidr,
    ConfigModel,
    KubeVersion,
    NodeName,
    PoolName,
    Problems,
    StorageClassName,
    TemplateName,
    TenantName,
    VmidRange,
    check_range,
    check_reserved_ip,
    check_subnet_member,
)
from config.networks import TenantNetworkConfig
from config.proxmox import Inventory
from config.storage import StorageClassConfig, check_storage_class_ref, check_storage_on_nodes

RESERVED_NAMESPACES: Final = frozenset(
    {
        "default",
        "cert-manager",
        "capi-system",
        "capi-operator-system",
        "capi-kubeadm-bootstrap-system",
        "capi-kubeadm-control-plane-system",
        "capi-ipam-in-cluster-system",
        "capmox-system",
        "csi-proxmox",
        "kamaji-system",
        "kube-ovn",
        "metallb-system",
        "monitoring",
        "logging",
        "velero",
    }
)
"""Namespaces the platform uses; a tenant (whose name is its namespace) may not take them."""


class WorkerPoolConfig(ConfigModel):
    """A group of identical tenant worker VMs (one MachineDeployment)."""

    name: PoolName
    """Pool name (DNS-1123 label, at most 20 characters)."""
    count: int = Field(default=1, ge=0, le=100)
    """Number of worker VMs."""
    cores: int = Field(default=2, ge=1, le=128)
    """vCPU cores per VM."""
    memory_mib: int = Field(default=4096, ge=1024, le=4_194_304, multiple_of=8, alias="memoryMiB")
    """Memory per VM in MiB (a multiple of 8)."""
    disk_gib: int = Field(default=40, ge=5, le=65536, alias="diskGiB")
    """Boot disk size per VM in GiB (at least the template's disk)."""
    template: TemplateName | None = None
    """VM template name from templates (default: versions.vmTemplate)."""
    allowed_nodes: tuple[NodeName, ...] = ()
    """Nodes the pool may run on (default: clusterApi.allowedNodes, then all nodes)."""


class TenantQuota(ConfigModel):
    """ResourceQuota of the tenant's namespace on the management cluster."""

    cpu: int = Field(ge=1)
    """CPU cores."""
    memory_gib: int = Field(ge=1, alias="memoryGiB")
    """Memory in GiB."""
    storage_gib: int = Field(ge=1, alias="storageGiB")
    """Requested storage in GiB."""
    pods: int = Field(ge=1)
    """Number of pods."""


class TenantConfig(ConfigModel):
    """One tenant: a Kamaji control plane, CAPI worker VMs, an isolated network, quota, storage."""

    name: TenantName
    """Tenant name (DNS-1123 label, at most 30 characters); also its namespace."""
    kubernetes_version: KubeVersion | None = None
    """Kubernetes version of this tenant (default: versions.kubernetes)."""
    control_plane_replicas: int = Field(default=2, ge=1, le=5)
    """API server replicas (pods on the management cluster)."""
    worker_pools: tuple[WorkerPoolConfig, ...] = Field(min_length=1)
    """Worker pools."""
    pod_cidr: Cidr
    """Pod CIDR of the tenant cluster; unique across the platform."""
    service_cidr: Cidr
    """Service CIDR of the tenant cluster; unique across the platform."""
    network: TenantNetworkConfig
    """The tenant's worker network."""
    storage_class: StorageClassName | None = None
    """StorageClass name from storage (default: the default storage class)."""
    quota: TenantQuota | None = None
    """ResourceQuota of the tenant namespace."""
    vmid_range: VmidRange | None = None
    """Own VMID range for the workers (default: share clusterApi.vmidRange)."""

    def machines(self) -> int:
        """Worker VMs at the peak of a rollout: every pool's count plus one surge machine per pool."""
        # CAPI rolls out with maxSurge 1 per MachineDeployment.
        return sum(pool.count + 1 for pool in self.worker_pools)

    def cidrs(self, index: int) -> list[tuple[str, IPv4Network]]:
        """(key path, CIDR) of the tenant's pod, service and worker networks."""
        path = f"tenants[{index}]"
        return [
            (f"{path}.podCidr", self.pod_cidr),
            (f"{path}.serviceCidr", self.service_cidr),
            (f"{path}.network.cidr", self.network.cidr),
        ]


def check_tenants(
    tenants: Sequence[TenantConfig],
    *,
    inventory: Inventory,
    classes: Sequence[StorageClassConfig],
    default_nodes: Sequence[str],
    out: Problems,
) -> None:
    """Names, pools, references, storage placement and address capacity of every tenant.

    ``default_nodes`` are the nodes a pool without ``allowedNodes`` may use (clusterApi.allowedNodes,
    else every node).
    """
    names: dict[str, int] = {}
    for i, tenant in enumerate(tenants):
        path = f"tenants[{i}]"
        if tenant.name in names:
            out.add(f"{path}.name", f"duplicate tenant {tenant.name!r} (also tenants[{names[tenant.name]}])")
        names.setdefault(tenant.name, i)
        if tenant.name in RESERVED_NAMESPACES or tenant.name.startswith("kube-"):
            out.add(f"{path}.name", f"{tenant.name!r} is reserved for a platform namespace; choose another name")
        class_ok = check_storage_class_ref(classes, out, f"{path}.storageClass", tenant.storage_class)
        pools: dict[str, int] = {}
        for j, pool in enumerate(tenant.worker_pools):
            pool_path = f"{path}.workerPools[{j}]"
            if pool.name in pools:
                out.add(f"{pool_path}.name", f"duplicate pool {pool.name!r} (also workerPools[{pools[pool.name]}])")
            pools.setdefault(pool.name, j)
            inventory.check_template_ref(out, f"{pool_path}.template", pool.template)
            inventory.check_node_refs(out, f"{pool_path}.allowedNodes", pool.allowed_nodes)
            if class_ok:
                sc_path = f"{path}.storageClass" if tenant.storage_class else f"{pool_path}.allowedNodes"
                nodes = pool.allowed_nodes or default_nodes
                check_storage_on_nodes(
                    classes, inventory, out, sc_path, tenant.storage_class, nodes, f"workerPools[{j}]"
                )
        _check_capacity(tenant, path, out)


def _check_capacity(tenant: TenantConfig, path: str, out: Problems) -> None:
    machines = tenant.machines()
    net = tenant.network
    net_path = f"{path}.network"
    check_subnet_member(out, f"{net_path}.gateway", net.gateway, net.cidr, f"{net_path}.cidr")
    if check_range(out, f"{net_path}.ipRange", net.ip_range, net.cidr, f"{net_path}.cidr"):
        check_reserved_ip(out, f"{net_path}.gateway", net.gateway, [(f"{net_path}.ipRange", net.ip_range)])
        if net.ip_range.size < machines:
            out.add(
                f"{net_path}.ipRange",
                f"holds {net.ip_range.size} addresses; needs at least {machines} "
                "(the workers of every pool plus one rollout surge per pool)",
            )
    vr = tenant.vmid_range
    if vr is not None and vr.start <= vr.end and vr.size < machines:
        out.add(
            f"{path}.vmidRange",
            f"holds {vr.size} VMIDs; needs at least {machines} "
            "(the workers of every pool plus one rollout surge per pool)",
        )
