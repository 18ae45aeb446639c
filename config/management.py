"""The management cluster domain: its VMs (or an existing cluster), addresses, CIDRs, and preflight."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Final, Literal

from pydantic import Field

from config.base import (
    LINUX_USER,
    Cidr,
    ConfigModel,
    NodeName,
    Problems,
    SshPublicKey,
    TemplateName,
    VmidRange,
    VmIpRange,
    check_range,
    check_reserved_ip,
    check_subnet_member,
    pattern,
)
from config.networks import RoutedNetworkConfig
from config.proxmox import Inventory


class _VmSize(ConfigModel):
    cores: int = Field(default=2, ge=1, le=128)
    """vCPU cores per VM."""
    memory_mib: int = Field(default=4096, ge=2048, le=4_194_304, multiple_of=8, alias="memoryMiB")
    """Memory per VM in MiB (a multiple of 8)."""
    disk_gib: int = Field(default=40, ge=10, le=65536, alias="diskGiB")
    """Boot disk size per VM in GiB."""


class ControlPlaneSpec(_VmSize):
    """Control-plane VMs of the management cluster."""

    count: Literal[1, 3, 5] = 3
    """Number of control-plane VMs: 1, 3 or 5 (odd keeps etcd quorum)."""


class WorkerSpec(_VmSize):
    """Worker VMs of the management cluster."""

    count: int = Field(default=2, ge=0, le=100)
    """Number of worker VMs."""
    cores: int = Field(default=4, ge=1, le=128)
    """vCPU cores per VM."""
    memory_mib: int = Field(default=8192, ge=2048, le=4_194_304, multiple_of=8, alias="memoryMiB")
    """Memory per VM in MiB (a multiple of 8)."""
    disk_gib: int = Field(default=60, ge=10, le=65536, alias="diskGiB")
    """Boot disk size per VM in GiB."""


_VM_ONLY_MANAGEMENT_KEYS: Final[tuple[str, ...]] = (
    "bootstrap",
    "control_planes",
    "workers",
    "template",
    "nodes",
    "vmid_range",
    "ip_range",
    "control_plane_endpoint",
    "ssh_user",
    "ssh_public_keys",
)


class ManagementClusterConfig(ConfigModel):
    """The management cluster: built on Proxmox VMs (default), or an existing one (external: true)."""

    external: bool = False
    """Bring your own cluster: its kubeconfig is the secret config key managementKubeconfig."""
    bootstrap: Literal["kubeadm", "external"] = "kubeadm"
    """With VMs built here: kubeadm (the program bootstraps Kubernetes over SSH, secret sshPrivateKey) or
    external (something else bootstraps the VMs, e.g. the image or your tooling, and its admin kubeconfig
    is the secret managementKubeconfig)."""
    await_readiness: bool = True
    """Wait for workloads (Deployments, DaemonSets, Jobs, Services, claims) to become ready when applying;
    false applies and moves on (a cluster where nothing runs pods yet, or one a GitOps controller owns)."""
    control_planes: ControlPlaneSpec = ControlPlaneSpec()
    """Control-plane VMs."""
    workers: WorkerSpec = WorkerSpec()
    """Worker VMs."""
    template: TemplateName | None = None
    """VM template name from templates (default: versions.vmTemplate)."""
    nodes: tuple[NodeName, ...] = ()
    """Proxmox nodes the VMs may run on (default: all nodes)."""
    vmid_range: VmidRange = VmidRange(start=100_000, end=100_999)
    """VMIDs for the management cluster's VMs."""
    ip_range: VmIpRange | None = None
    """Static addresses for the VMs, inside networks.management.cidr (required unless external)."""
    control_plane_endpoint: IPv4Address | None = None
    """kube-vip address of the API, inside networks.management.cidr, outside ipRange."""
    pod_cidr: Cidr = IPv4Network("10.244.0.0/16")
    """Pod CIDR (kubeadm podSubnet = Kube-OVN POD_CIDR)."""
    service_cidr: Cidr = IPv4Network("10.96.0.0/16")
    """Service CIDR (kubeadm serviceSubnet = Kube-OVN SVC_CIDR)."""
    join_cidr: Cidr = IPv4Network("100.64.0.0/16")
    """Kube-OVN join CIDR; must not overlap any other network."""
    kube_proxy_replacement: bool = True
    """Let Cilium replace kube-proxy."""
    ssh_user: Annotated[str, pattern(LINUX_USER, 32)] = "ubuntu"
    """Login user on the VMs for the kubeadm bootstrap."""
    ssh_public_keys: tuple[SshPublicKey, ...] = ()
    """Public keys installed on the VMs; the private key is the secret config key sshPrivateKey."""

    def explicit_vm_keys(self) -> tuple[str, ...]:
        """Attribute names of VM-only settings that the stack set explicitly."""
        return tuple(name for name in _VM_ONLY_MANAGEMENT_KEYS if name in self.model_fields_set)

    def vm_count(self) -> int:
        """Number of VMs the program builds for this cluster."""
        return self.control_planes.count + self.workers.count

    def cidrs(self) -> list[tuple[str, IPv4Network]]:
        """(key path, CIDR) of the cluster's pod, service and join networks."""
        return [
            ("managementCluster.podCidr", self.pod_cidr),
            ("managementCluster.serviceCidr", self.service_cidr),
            ("managementCluster.joinCidr", self.join_cidr),
        ]


def check_management_cluster(
    mc: ManagementClusterConfig, net: RoutedNetworkConfig, inventory: Inventory, out: Problems
) -> None:
    """VM-only keys only when built here; references, sizes, addresses and the API VIP when built here."""
    if mc.external:
        for name in mc.explicit_vm_keys():
            alias = type(mc).model_fields[name].alias or name
            out.add(
                f"managementCluster.{alias}",
                "only used when the program builds the management cluster; remove it or set external: false",
            )
        return
    inventory.check_template_ref(out, "managementCluster.template", mc.template)
    inventory.check_node_refs(out, "managementCluster.nodes", mc.nodes)
    if mc.bootstrap == "kubeadm" and not mc.ssh_public_keys:
        out.add(
            "managementCluster.sshPublicKeys",
            "needs at least one key for the kubeadm bootstrap over SSH (private key: secret sshPrivateKey)",
        )
    vm_count = mc.vm_count()
    if mc.vmid_range.start <= mc.vmid_range.end and mc.vmid_range.size < vm_count:
        out.add(
            "managementCluster.vmidRange",
            f"holds {mc.vmid_range.size} VMIDs; needs at least {vm_count} (controlPlanes.count + workers.count)",
        )
    mgmt_cidr = "networks.management.cidr"
    if mc.ip_range is None:
        out.add("managementCluster.ipRange", "required unless external is true: static addresses for the VMs")
    elif check_range(out, "managementCluster.ipRange", mc.ip_range, net.cidr, mgmt_cidr):
        if mc.ip_range.size < vm_count:
            out.add(
                "managementCluster.ipRange",
                f"holds {mc.ip_range.size} addresses; needs at least {vm_count} (controlPlanes.count + workers.count)",
            )
        check_reserved_ip(out, "networks.management.gateway", net.gateway, [("managementCluster.ipRange", mc.ip_range)])
    if mc.control_plane_endpoint is None:
        out.add("managementCluster.controlPlaneEndpoint", "required unless external is true: the API VIP")
    else:
        path = "managementCluster.controlPlaneEndpoint"
        if check_subnet_member(out, path, mc.control_plane_endpoint, net.cidr, mgmt_cidr):
            if mc.control_plane_endpoint == net.gateway:
                out.add(path, f"{net.gateway} is the gateway of networks.management")
            check_reserved_ip(out, path, mc.control_plane_endpoint, [("managementCluster.ipRange", mc.ip_range)])
