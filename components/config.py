"""The typed stack configuration: one pydantic model for ``Pulumi.<stack>.yaml``, plus preflight.

Shape
    Every domain is one structured config key in the project namespace (``proxmox``, ``nodes``,
    ``templates``, ``networks``, ``managementCluster``, ``storage``, ``clusterApi``, ``kamaji``,
    ``tenants``, ``operations``, ``versions``, ``localRender``). YAML keys are camelCase; the Python
    attributes are snake_case. Every model forbids unknown keys and is frozen.

Validation
    ``load_stack_config(raw)`` validates the shape with pydantic, then runs ``preflight`` (the
    cross-key checks in ``components.config_checks``: CIDR overlaps, IP and VMID ranges, references to
    nodes, storages, templates and storage classes, the version compatibility matrix). Anything wrong
    is raised as ONE ``StackConfigError`` whose problems carry the YAML key path
    (``tenants[1].podCidr``) and what is allowed. Shape errors come first: preflight needs a model,
    so it runs once the shape is valid.

Secrets (never in this model)
    Secrets are separate Pulumi config keys in the project namespace, set with
    ``pulumi config set --secret <key> <value>``, and read as Outputs by ``read_stack_secrets``:

    * ``proxmoxTokenSecret`` (always): the UUID secret of ``proxmox.tokenId``;
    * ``managementKubeconfig`` (when ``managementCluster.external`` is true);
    * ``sshPrivateKey`` (when the program builds the management cluster: kubeadm over SSH);
    * ``csiEncryptionPassphrase`` (when a storage class has ``encrypted: true``).

    ``read_stack_config`` reports a missing required secret key together with the other problems.

The model needs no Pulumi engine: only ``read_stack_config`` and ``read_stack_secrets`` touch pulumi.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from components.config_checks import (
    COMPATIBILITY_MATRIX,
    CSI_CONTROLLER_VMID,
    ClusterApiLine,
    CompatibilityMatrix,
    ConfigProblem,
    KamajiLine,
    format_problems,
    preflight,
)

if TYPE_CHECKING:
    import pulumi

__all__ = [
    "COMPATIBILITY_MATRIX",
    "CSI_CONTROLLER_VMID",
    "DEFAULT_VERSIONS",
    "DOMAIN_KEYS",
    "SECRET_KEYS",
    "BackupConfig",
    "BackupRetention",
    "ClusterApiConfig",
    "ClusterApiLine",
    "CompatibilityMatrix",
    "ConfigProblem",
    "ControlPlaneSpec",
    "KamajiConfig",
    "KamajiDatastoreConfig",
    "KamajiLine",
    "KamajiLoadBalancerConfig",
    "ManagementClusterConfig",
    "NetworkConfig",
    "NetworksConfig",
    "NodeConfig",
    "OperationsConfig",
    "ProxmoxConfig",
    "RoutedNetworkConfig",
    "StackConfig",
    "StackConfigError",
    "StackSecrets",
    "StorageClassConfig",
    "TemplateConfig",
    "TenantConfig",
    "TenantNetworkConfig",
    "TenantQuota",
    "VersionsConfig",
    "VmIpRange",
    "VmidRange",
    "WorkerPoolConfig",
    "WorkerSpec",
    "format_path",
    "format_problems",
    "load_stack_config",
    "preflight",
    "problems_from_validation_error",
    "read_stack_config",
    "read_stack_secrets",
    "render_stack_config_schema",
    "required_secret_keys",
    "stack_config_json_schema",
]

# --------------------------------------------------------------------------------------------------
# Promotable versions (reference/k8s_stack.md section 0). Keys are the YAML keys under `versions`.
# --------------------------------------------------------------------------------------------------

DEFAULT_VERSIONS: Final[Mapping[str, str]] = {
    "kubernetes": "v1.34.8",
    "vmTemplate": "ubuntu-2404-kube",
    "capiCore": "v1.12.8",
    "capmox": "v0.9.0",
    "caaph": "v0.6.2",
    "ipamInCluster": "v1.1.0",
    "kamajiControlPlaneProvider": "v0.20.0",
    "kamajiImageTag": "26.8.2-edge",
    "kamaji": "0.0.0+latest",
    "certManager": "v1.20.2",
    "capiOperator": "0.28.0",
    "cilium": "1.19.5",
    "kubeOvn": "v1.16.2",
    "proxmoxCsi": "0.5.9",
    "proxmoxCcm": "0.2.28",
    "snapshotController": "3.0.5",
    "metallb": "0.16.1",
    "velero": "12.0.3",
    "victoriaMetricsOperator": "0.61.0",
    "fluentBit": "0.48.9",
}
"""Default promotable set; a stack overrides single entries under ``versions``."""

DOMAIN_KEYS: Final[tuple[str, ...]] = (
    "proxmox",
    "nodes",
    "templates",
    "networks",
    "managementCluster",
    "storage",
    "clusterApi",
    "kamaji",
    "tenants",
    "operations",
    "versions",
)
"""Structured Pulumi config keys read with ``Config.get_object`` (``localRender`` is a plain string)."""

SECRET_KEYS: Final[Mapping[str, str]] = {
    "proxmoxTokenSecret": "UUID secret of proxmox.tokenId",
    "managementKubeconfig": "kubeconfig of the existing management cluster (managementCluster.external)",
    "sshPrivateKey": "private key matching managementCluster.sshPublicKeys (kubeadm bootstrap over SSH)",
    "csiEncryptionPassphrase": "LUKS passphrase for storage classes with encrypted: true",
    "kamajiDatastorePassword": "password of kamaji.datastore.username (kamaji.datastore.driver: postgresql)",
}
"""Secret Pulumi config keys (``pulumi config set --secret``) and what each holds."""

# --------------------------------------------------------------------------------------------------
# Scalar types. Patterns double as JSON-schema patterns; PATTERN_HELP turns them into plain words.
# --------------------------------------------------------------------------------------------------

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"
_STORAGE_ID = r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
_BRIDGE = r"^[A-Za-z][A-Za-z0-9_.-]*$"
_TOKEN_ID = r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$"
_RELEASE = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
_CHART = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$"
_KAMAJI_TAG = r"^[0-9]{2}\.[0-9]{1,2}\.[0-9]+-edge$"
_TEMPLATE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_+.-]*$"
_SSH_KEY = (
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)
_LINUX_USER = r"^[a-z_][a-z0-9_-]*$"
_HOST_PORT = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$"
_SCHEDULE = r"^[A-Za-z0-9*,:./~ -]+$"
_CHECKSUM = r"^(sha256|sha512):[0-9a-f]+$"

PATTERN_HELP: Final[Mapping[str, str]] = {
    _DNS_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
    "with a letter or digit",
    _DNS_SUBDOMAIN: "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'",
    _HOSTNAME: "must be a host name: letters, digits and '-', starting and ending with a letter or digit",
    _STORAGE_ID: "must be a Proxmox storage ID: a letter, then letters, digits, '-', '_' or '.'",
    _BRIDGE: "must be a Linux bridge or SDN VNet name such as vmbr0",
    _TOKEN_ID: "must be a Proxmox API token ID 'user@realm!tokenname', e.g. capmox@pve!capi "
    "(the token secret goes in the secret config key proxmoxTokenSecret)",
    _RELEASE: "must be a release tag like v1.12.8 (with the leading 'v')",
    _CHART: "must be a chart version like 1.19.5 or v1.20.2",
    _KAMAJI_TAG: "must be a Kamaji edge image tag like 26.8.2-edge",
    _TEMPLATE_TAG: "must be a Proxmox tag: letters, digits, '_', '-', '+' and '.'",
    _SSH_KEY: "must be one OpenSSH public key line like 'ssh-ed25519 AAAA... comment'",
    _LINUX_USER: "must be a Linux user name: lowercase letters, digits, '_' and '-'",
    _HOST_PORT: "must be host:port, e.g. postgres.db.svc:5432 (no scheme)",
    _SCHEDULE: "must be a Proxmox calendar event such as '02:00' or 'sun 01:30'",
    _CHECKSUM: "must be 'sha256:<hex>' or 'sha512:<hex>'",
}
"""Plain-language meaning of each pattern used in the model, for error messages."""


def _pattern(regex: str, max_length: int | None = None) -> StringConstraints:
    return StringConstraints(pattern=regex, max_length=max_length)


TenantName = Annotated[str, _pattern(_DNS_LABEL, 30)]
PoolName = Annotated[str, _pattern(_DNS_LABEL, 20)]
TemplateName = Annotated[str, _pattern(_DNS_LABEL, 63)]
NodeName = Annotated[str, _pattern(_HOSTNAME, 63)]
StorageId = Annotated[str, _pattern(_STORAGE_ID, 64)]
StorageClassName = Annotated[str, _pattern(_DNS_SUBDOMAIN, 253)]
BridgeName = Annotated[str, _pattern(_BRIDGE, 15)]
KubeVersion = Annotated[str, _pattern(_RELEASE)]
ReleaseTag = Annotated[str, _pattern(_RELEASE)]
ChartVersion = Annotated[str, _pattern(_CHART)]
TemplateTag = Annotated[str, _pattern(_TEMPLATE_TAG, 64)]
SshPublicKey = Annotated[str, _pattern(_SSH_KEY)]
Vmid = Annotated[int, Field(ge=100, le=999_999_999)]


def _parse_cidr(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if "/" not in value:
        raise ValueError(f"must be an IPv4 network in CIDR notation like 10.0.0.0/24 (got {value!r})")
    try:
        net = ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"must be an IPv4 network in CIDR notation like 10.0.0.0/24 (got {value!r})") from None
    if not isinstance(net, IPv4Network):
        raise ValueError(f"must be an IPv4 network; this stack is IPv4-only (got {value!r})")
    if str(net) != value.strip():
        raise ValueError(f"{value!r} has host bits set; the network is {net}")
    return net


Cidr = Annotated[IPv4Network, BeforeValidator(_parse_cidr)]


def _check_endpoint(value: str) -> str:
    from urllib.parse import urlsplit

    allowed = "the base URL of the Proxmox API, e.g. https://pve1.example.com:8006"
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"must be {allowed} (got {value!r})") from None
    if parts.scheme != "https":
        raise ValueError(f"must use https: {allowed} (got {value!r})")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError(f"must be {allowed}, with a host and no user info (got {value!r})")
    if parts.path.rstrip("/") == "/api2/json":
        raise ValueError(
            f"must be {allowed} without /api2/json: the program appends it where a consumer needs it "
            "(CSI, CCM) and CAPMOX must not get it"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be {allowed}, with no path, query or fragment (got {value!r})")
    return f"https://{parts.hostname}" + (f":{port}" if port is not None else "")


def _check_ca_bundle(value: str) -> str:
    if "-----BEGIN" in value:
        if "-----BEGIN CERTIFICATE-----" not in value or "-----END CERTIFICATE-----" not in value:
            raise ValueError("must be a PEM certificate bundle or a file path; the PEM text is incomplete")
        return value
    if not value.strip() or "\n" in value:
        raise ValueError("must be a PEM certificate bundle or a file path")
    return value


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


class _ConfigModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class VmidRange(_ConfigModel):
    """An inclusive range of Proxmox VMIDs."""

    start: Vmid
    """First VMID of the range (100..999999999)."""
    end: Vmid
    """Last VMID of the range, inclusive."""

    @property
    def size(self) -> int:
        """Number of VMIDs in the range (0 when start > end)."""
        return max(0, self.end - self.start + 1)

    def contains(self, vmid: int) -> bool:
        """Whether ``vmid`` lies inside the range."""
        return self.start <= vmid <= self.end

    def overlaps(self, other: VmidRange) -> bool:
        """Whether the two ranges share at least one VMID."""
        return self.start <= other.end and other.start <= self.end


class VmIpRange(_ConfigModel):
    """An inclusive range of IPv4 addresses, e.g. for VM NICs or LoadBalancer services."""

    start: IPv4Address
    """First address of the range."""
    end: IPv4Address
    """Last address of the range, inclusive."""

    @property
    def size(self) -> int:
        """Number of addresses in the range (0 when start > end)."""
        return max(0, int(self.end) - int(self.start) + 1)

    def contains(self, address: IPv4Address) -> bool:
        """Whether ``address`` lies inside the range."""
        return self.start <= address <= self.end

    def overlaps(self, other: VmIpRange) -> bool:
        """Whether the two ranges share at least one address."""
        return self.start <= other.end and other.start <= self.end

    def as_capmox(self) -> str:
        """The range in CAPMOX ``ipv4Config.addresses`` form, ``start-end``."""
        return f"{self.start}-{self.end}"


class ProxmoxConfig(_ConfigModel):
    """How the program reaches the Proxmox VE API (the token secret is the secret key proxmoxTokenSecret)."""

    endpoint: Annotated[
        str,
        AfterValidator(_check_endpoint),
        Field(json_schema_extra={"pattern": r"^https://[^/?#]+/?$"}),
    ]
    """Base URL of the API, https only, without /api2/json, e.g. https://pve1.example.com:8006."""
    token_id: Annotated[str, _pattern(_TOKEN_ID)]
    """API token ID, user@realm!tokenname."""
    verify_tls: bool = True
    """Verify the API's TLS certificate; false is the explicit, visible opt-out."""
    ca_bundle: Annotated[str, AfterValidator(_check_ca_bundle)] | None = None
    """CA bundle (PEM text or a file path) that signs the API certificate."""
    cluster_name: Annotated[str, _pattern(_HOSTNAME, 15)]
    """Proxmox cluster name; also the CSI/CCM topology region label."""
    http_timeout_seconds: int = Field(default=60, ge=30, le=3600)
    """Timeout of one API call, in seconds."""
    max_concurrent_clones_per_node: int = Field(default=2, ge=1, le=16)
    """How many clones may run at once on one node."""

    @property
    def api_url(self) -> str:
        """The URL with /api2/json, as the CSI driver and the CCM want it (CAPMOX wants ``endpoint``)."""
        return f"{self.endpoint}/api2/json"


class NodeConfig(_ConfigModel):
    """A Proxmox VE node that may run the platform's VMs."""

    name: NodeName
    """Node name as Proxmox knows it; also the CSI topology zone."""
    storages: tuple[StorageId, ...] = Field(min_length=1)
    """Storage IDs available on this node (local and shared)."""
    weight: int | None = Field(default=None, ge=1, le=100)
    """Relative share of VMs placed on this node (default: equal shares)."""


class TemplateConfig(_ConfigModel):
    """A VM template: an existing one (vmid + node), one found by tags, or one built from a cloud image."""

    vmid: Vmid | None = None
    """VMID of an existing template, or the VMID to give the template built from cloudImageUrl."""
    tags: tuple[TemplateTag, ...] = ()
    """Proxmox tags that select the template (CAPMOX templateSelector.matchTags)."""
    node: NodeName | None = None
    """Node holding the template (with vmid or cloudImageUrl)."""
    cloud_image_url: Annotated[str, _pattern(r"^https://[^\s]+$")] | None = None
    """https URL of a cloud image to build the template from."""
    cloud_image_checksum: Annotated[str, _pattern(_CHECKSUM)] | None = None
    """Checksum of the cloud image, sha256:<hex> or sha512:<hex>."""
    storage: StorageId | None = None
    """Storage that receives the built template's disk (with cloudImageUrl)."""


class _NetworkBase(_ConfigModel):
    bridge: BridgeName
    """Linux bridge or SDN VNet on the Proxmox nodes, e.g. vmbr0."""
    vlan: int | None = Field(default=None, ge=1, le=4094)
    """VLAN tag (1..4094); omit for an untagged network."""
    cidr: Cidr
    """IPv4 subnet, e.g. 10.10.10.0/24."""
    mtu: int = Field(default=1500, ge=1280, le=65520)
    """MTU of the VM NICs on this network."""


class NetworkConfig(_NetworkBase):
    """A node network that may be unrouted (data, storage)."""

    gateway: IPv4Address | None = None
    """Default gateway, inside cidr; omit for an unrouted network."""
    dns_servers: tuple[IPv4Address, ...] = ()
    """DNS servers handed to VMs on this network."""


class RoutedNetworkConfig(_NetworkBase):
    """A routed network with a gateway and DNS (the management network)."""

    gateway: IPv4Address
    """Default gateway, inside cidr."""
    dns_servers: tuple[IPv4Address, ...] = Field(min_length=1)
    """DNS servers handed to VMs on this network."""


class TenantNetworkConfig(RoutedNetworkConfig):
    """A tenant's isolated worker network: its own bridge or VLAN, and an address pool."""

    ip_range: VmIpRange
    """Addresses CAPMOX may give the tenant's worker VMs (inside cidr)."""


class NetworksConfig(_ConfigModel):
    """The node networks; each must have its own bridge or VLAN."""

    management: RoutedNetworkConfig
    """Network of the management cluster's VMs, its API VIP and its LoadBalancer addresses."""
    data: NetworkConfig | None = None
    """Optional network for workload traffic."""
    storage: NetworkConfig | None = None
    """Optional network for storage traffic."""


class _VmSize(_ConfigModel):
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


class ManagementClusterConfig(_ConfigModel):
    """The management cluster: built on Proxmox VMs (default), or an existing one (external: true)."""

    external: bool = False
    """Bring your own cluster: its kubeconfig is the secret config key managementKubeconfig."""
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
    ssh_user: Annotated[str, _pattern(_LINUX_USER, 32)] = "ubuntu"
    """Login user on the VMs for the kubeadm bootstrap."""
    ssh_public_keys: tuple[SshPublicKey, ...] = ()
    """Public keys installed on the VMs; the private key is the secret config key sshPrivateKey."""

    def explicit_vm_keys(self) -> tuple[str, ...]:
        """Attribute names of VM-only settings that the stack set explicitly."""
        return tuple(name for name in _VM_ONLY_MANAGEMENT_KEYS if name in self.model_fields_set)


class StorageClassConfig(_ConfigModel):
    """A Proxmox storage exposed as a Kubernetes StorageClass through the Proxmox CSI driver."""

    storage: StorageId
    """Proxmox storage ID (CSI parameter storage)."""
    storage_class: StorageClassName
    """Name of the Kubernetes StorageClass."""
    type: Literal["dir", "lvm", "lvmthin", "zfspool", "nfs", "rbd"] = "lvmthin"
    """Proxmox storage type (decides snapshot support and whether volumes can follow a VM to another node)."""
    shared: bool = False
    """The storage is shared between nodes (always true for nfs and rbd)."""
    ssd: bool = False
    """SSD emulation and discard."""
    cache: Literal["none", "writethrough", "writeback", "directsync"] = "none"
    """QEMU cache mode of the volumes (the values the CSI driver accepts)."""
    backup: bool = False
    """Include the volumes in vzdump backups of the VM."""
    disk_iops: int | None = Field(default=None, ge=1, alias="diskIOPS")
    """Read/write IOPS limit per volume."""
    disk_mbps: int | None = Field(default=None, ge=1, alias="diskMBps")
    """Read/write MB/s limit per volume."""
    encrypted: bool = False
    """LUKS-encrypt the volumes (passphrase: secret config key csiEncryptionPassphrase)."""
    fs_type: Literal["ext4", "xfs"] = "ext4"
    """File system of the volumes."""
    is_default: bool = Field(default=False, alias="default")
    """Mark as the cluster's default StorageClass (at most one)."""
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    """What happens to a volume when its claim is deleted."""


class ClusterApiConfig(_ConfigModel):
    """Cluster API / CAPMOX placement defaults for tenant worker VMs."""

    vmid_range: VmidRange = VmidRange(start=200_000, end=299_999)
    """VMIDs for tenant workers without their own tenants[].vmidRange."""
    allowed_nodes: tuple[NodeName, ...] = ()
    """Nodes tenant workers may run on (default: all nodes)."""


class KamajiDatastoreConfig(_ConfigModel):
    """The Kamaji DataStore that holds the tenants' control-plane state."""

    driver: Literal["etcd", "postgresql"] = "etcd"
    """etcd (deployed by the kamaji-etcd chart) or an existing PostgreSQL."""
    replicas: int = Field(default=3, ge=1, le=7)
    """etcd replicas (odd)."""
    storage_class: StorageClassName | None = None
    """StorageClass for the etcd volumes (default: the default storage class)."""
    size_gib: int = Field(default=8, ge=1, le=1024, alias="sizeGiB")
    """Size of each etcd volume in GiB."""
    endpoints: tuple[Annotated[str, _pattern(_HOST_PORT)], ...] = ()
    """PostgreSQL endpoints host:port (postgresql only)."""
    username: Annotated[str, _pattern(_LINUX_USER, 63)] = "kamaji"
    """PostgreSQL user (postgresql only); its password is the secret config key kamajiDatastorePassword."""


class KamajiLoadBalancerConfig(_ConfigModel):
    """Addresses for the tenants' control-plane LoadBalancer services (MetalLB pool)."""

    ip_range: VmIpRange
    """Pool inside networks.management.cidr; one address per tenant."""


class KamajiConfig(_ConfigModel):
    """Kamaji, which runs tenant control planes as pods on the management cluster."""

    replicas: int = Field(default=2, ge=1, le=5)
    """Kamaji controller replicas."""
    datastore: KamajiDatastoreConfig = KamajiDatastoreConfig()
    """The default DataStore."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """How tenant API servers are exposed."""
    load_balancer: KamajiLoadBalancerConfig | None = None
    """LoadBalancer address pool (required with serviceType LoadBalancer and tenants)."""


class WorkerPoolConfig(_ConfigModel):
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


class TenantQuota(_ConfigModel):
    """ResourceQuota of the tenant's namespace on the management cluster."""

    cpu: int = Field(ge=1)
    """CPU cores."""
    memory_gib: int = Field(ge=1, alias="memoryGiB")
    """Memory in GiB."""
    storage_gib: int = Field(ge=1, alias="storageGiB")
    """Requested storage in GiB."""
    pods: int = Field(ge=1)
    """Number of pods."""


class TenantConfig(_ConfigModel):
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


class BackupRetention(_ConfigModel):
    """How many backups a Proxmox backup job keeps (prune-backups)."""

    keep_last: int = Field(default=0, ge=0, le=1000)
    """Keep the last N backups."""
    keep_daily: int = Field(default=7, ge=0, le=1000)
    """Keep one backup per day for N days."""
    keep_weekly: int = Field(default=4, ge=0, le=1000)
    """Keep one backup per week for N weeks."""
    keep_monthly: int = Field(default=3, ge=0, le=1000)
    """Keep one backup per month for N months."""


class BackupConfig(_ConfigModel):
    """Proxmox backup jobs (vzdump) for the platform's VMs."""

    schedule: Annotated[str, _pattern(_SCHEDULE, 64)] = "02:00"
    """Proxmox calendar event, e.g. '02:00' or 'sun 01:30'."""
    storage: StorageId
    """Backup storage ID; must exist on every node."""
    mode: Literal["snapshot", "suspend", "stop"] = "snapshot"
    """vzdump mode."""
    retention: BackupRetention = BackupRetention()
    """What the job keeps."""


class OperationsConfig(_ConfigModel):
    """Operations tooling."""

    monitoring: bool = True
    """Install metrics collection."""
    logging: bool = True
    """Install log shipping."""
    backups: BackupConfig | None = None
    """Proxmox backup jobs (omit for none)."""


class VersionsConfig(_ConfigModel):
    """The promotable set: versions that move together from dev to staging to prod.

    Keys match the fields of ``components.versions.Versions`` (camelCase), plus ``vmTemplate`` and a
    few operations charts; every value is one exact version.
    """

    kubernetes: KubeVersion = DEFAULT_VERSIONS["kubernetes"]
    """Kubernetes of the management cluster and the default for tenants."""
    vm_template: TemplateName = DEFAULT_VERSIONS["vmTemplate"]
    """Default VM template name (from templates)."""
    capi_core: ReleaseTag = DEFAULT_VERSIONS["capiCore"]
    """Cluster API core, kubeadm bootstrap and control-plane providers."""
    capmox: ReleaseTag = DEFAULT_VERSIONS["capmox"]
    """CAPMOX infrastructure provider."""
    caaph: ReleaseTag = DEFAULT_VERSIONS["caaph"]
    """Cluster API add-on provider for Helm (installs each tenant's CNI)."""
    ipam_in_cluster: ReleaseTag = DEFAULT_VERSIONS["ipamInCluster"]
    """In-cluster IPAM provider."""
    kamaji_control_plane_provider: ReleaseTag = DEFAULT_VERSIONS["kamajiControlPlaneProvider"]
    """Kamaji control-plane provider for Cluster API."""
    kamaji_image_tag: Annotated[str, _pattern(_KAMAJI_TAG)] = DEFAULT_VERSIONS["kamajiImageTag"]
    """Kamaji image tag (edge release); the real pin, as the chart has one public version."""
    kamaji: ChartVersion = DEFAULT_VERSIONS["kamaji"]
    """Kamaji chart."""
    cert_manager: ChartVersion = DEFAULT_VERSIONS["certManager"]
    """cert-manager chart."""
    capi_operator: ChartVersion = DEFAULT_VERSIONS["capiOperator"]
    """cluster-api-operator chart."""
    cilium: ChartVersion = DEFAULT_VERSIONS["cilium"]
    """Cilium chart."""
    kube_ovn: ChartVersion = DEFAULT_VERSIONS["kubeOvn"]
    """Kube-OVN chart."""
    proxmox_csi: ChartVersion = DEFAULT_VERSIONS["proxmoxCsi"]
    """proxmox-csi-plugin chart."""
    proxmox_ccm: ChartVersion = DEFAULT_VERSIONS["proxmoxCcm"]
    """proxmox-cloud-controller-manager chart."""
    snapshot_controller: ChartVersion = DEFAULT_VERSIONS["snapshotController"]
    """snapshot-controller chart (only with CSI snapshots)."""
    metallb: ChartVersion = DEFAULT_VERSIONS["metallb"]
    """MetalLB chart."""
    velero: ChartVersion = DEFAULT_VERSIONS["velero"]
    """Velero chart."""
    victoria_metrics_operator: ChartVersion = DEFAULT_VERSIONS["victoriaMetricsOperator"]
    """victoria-metrics-operator chart."""
    fluent_bit: ChartVersion = DEFAULT_VERSIONS["fluentBit"]
    """fluent-bit chart."""


class StackConfig(_ConfigModel):
    """The whole stack configuration: one key per domain of ``Pulumi.<stack>.yaml``."""

    proxmox: ProxmoxConfig
    """The Proxmox VE API."""
    nodes: tuple[NodeConfig, ...] = Field(min_length=1)
    """Proxmox nodes the platform may use."""
    templates: dict[TemplateName, TemplateConfig] = Field(default_factory=dict)
    """VM templates by name."""
    networks: NetworksConfig
    """Node networks."""
    management_cluster: ManagementClusterConfig
    """The management cluster."""
    storage: tuple[StorageClassConfig, ...] = ()
    """Proxmox storages exposed through the CSI driver."""
    cluster_api: ClusterApiConfig = ClusterApiConfig()
    """Cluster API placement defaults."""
    kamaji: KamajiConfig = KamajiConfig()
    """Kamaji."""
    tenants: tuple[TenantConfig, ...] = ()
    """Tenants."""
    operations: OperationsConfig = OperationsConfig()
    """Operations tooling."""
    versions: VersionsConfig = VersionsConfig()
    """The promotable version set."""
    local_render: Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\x00\n]+$")] | None = None
    """Render Kubernetes manifests to this directory instead of applying them (the local stack)."""

    def node_names(self) -> tuple[str, ...]:
        """Names of the declared nodes, in order."""
        return tuple(node.name for node in self.nodes)

    def storages_on(self, node_name: str) -> frozenset[str]:
        """Storage IDs declared on a node (empty for an unknown node)."""
        for node in self.nodes:
            if node.name == node_name:
                return frozenset(node.storages)
        return frozenset()

    def resolve_template(self, name: str | None) -> str:
        """The template name actually used: ``name`` or, if unset, ``versions.vmTemplate``."""
        return name if name is not None else self.versions.vm_template

    def management_nodes(self) -> tuple[str, ...]:
        """Nodes the management cluster's VMs may run on."""
        return self.management_cluster.nodes or self.node_names()

    def pool_nodes(self, pool: WorkerPoolConfig) -> tuple[str, ...]:
        """Nodes a tenant worker pool may run on (pool, then clusterApi, then all nodes)."""
        return pool.allowed_nodes or self.cluster_api.allowed_nodes or self.node_names()

    def default_storage_class(self) -> StorageClassConfig | None:
        """The storage class marked default, if any."""
        return next((sc for sc in self.storage if sc.is_default), None)

    def storage_class(self, name: str | None) -> StorageClassConfig | None:
        """The storage class called ``name``, or the default one when ``name`` is None."""
        if name is None:
            return self.default_storage_class()
        return next((sc for sc in self.storage if sc.storage_class == name), None)

    def tenant_kubernetes_version(self, tenant: TenantConfig) -> str:
        """The Kubernetes version a tenant runs."""
        return tenant.kubernetes_version or self.versions.kubernetes


# --------------------------------------------------------------------------------------------------
# Errors, loading, JSON schema
# --------------------------------------------------------------------------------------------------


class StackConfigError(ValueError):
    """Every problem of a stack configuration, raised at once."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__(format_problems(self.problems))


def required_secret_keys(cfg: StackConfig) -> tuple[str, ...]:
    """The secret config keys this configuration needs (see ``SECRET_KEYS``)."""
    keys = ["proxmoxTokenSecret"]
    if cfg.management_cluster.external:
        keys.append("managementKubeconfig")
    elif cfg.local_render is None:
        # Rendering (the local stack) skips the kubeadm bootstrap, so no SSH key is needed.
        keys.append("sshPrivateKey")
    if any(sc.encrypted for sc in cfg.storage):
        keys.append("csiEncryptionPassphrase")
    if cfg.kamaji.datastore.driver == "postgresql":
        keys.append("kamajiDatastorePassword")
    return tuple(keys)


def load_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate a raw stack configuration (shape, then preflight); raise one StackConfigError."""
    if not isinstance(raw, Mapping):
        raise StackConfigError(
            [ConfigProblem("<root>", f"must be a mapping of config keys (got {type(raw).__name__})")]
        )
    try:
        cfg = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise StackConfigError(problems_from_validation_error(exc)) from None
    problems = preflight(cfg)
    if problems:
        raise StackConfigError(problems)
    return cfg


def stack_config_json_schema() -> dict[str, Any]:
    """JSON schema (draft 2020-12, camelCase keys) of ``StackConfig``, for editors and CI."""
    schema = StackConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_stack_config_schema() -> str:
    """The JSON schema as the exact text stored in ``schema/stack-config.schema.json``."""
    return json.dumps(stack_config_json_schema(), indent=2, sort_keys=False) + "\n"


# --------------------------------------------------------------------------------------------------
# pydantic errors -> ConfigProblem with YAML key paths
# --------------------------------------------------------------------------------------------------

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SENSITIVE = re.compile(r"token|secret|password|passphrase|kubeconfig", re.IGNORECASE)


def format_path(loc: Sequence[int | str]) -> str:
    """Render a location tuple as a YAML key path: ``tenants[1].network.ipRange``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = part
        elif _SIMPLE_KEY.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out or "<root>"


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional from a type annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, UnionType):
            members = [a for a in typing.get_args(annotation) if a is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class found by walking ``loc`` from StackConfig, or None."""
    current: Any = StackConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if part in (n, f.alias)),
                None,
            )
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is tuple and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _got(value: Any, path: str) -> str:
    if _SENSITIVE.search(path):
        return ""
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, int | float):
        return f" (got {value})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f" (got {shown!r})"
    if value is None:
        return " (got null)"
    return f" (got a {type(value).__name__})"


def _describe(error: Mapping[str, Any], path: str, loc: Sequence[int | str]) -> str:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    got = _got(value, path)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        if parent is None:
            return "unknown key"
        allowed = _allowed_keys(parent)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown key{suggestion}; allowed keys here: {', '.join(allowed)}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return PATTERN_HELP.get(pattern, f"must match the pattern {pattern}") + got
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    simple = {
        "string_too_long": "must be at most {max_length} characters long",
        "string_too_short": "must be at least {min_length} characters long",
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be greater than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
        "multiple_of": "must be a multiple of {multiple_of}",
        "too_short": "needs at least {min_length} entries",
        "too_long": "allows at most {max_length} entries",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "model_type": "must be a mapping of keys",
        "model_attributes_type": "must be a mapping of keys",
        "dict_type": "must be a mapping of names to entries",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "ip_v4_address": "must be an IPv4 address like 10.0.0.1",
        "ip_v4_network": "must be an IPv4 network in CIDR notation like 10.0.0.0/24",
    }
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("too_short", "too_long"):
        return simple[kind].format(**ctx)
    if kind in simple:
        return simple[kind].format(**ctx) + got
    return str(error["msg"]) + got


def problems_from_validation_error(exc: ValidationError) -> list[ConfigProblem]:
    """Convert pydantic's errors to ConfigProblems with camelCase YAML key paths."""
    errors = exc.errors(include_url=False)
    item_locs = {tuple(e["loc"][:i]) for e in errors for i in range(len(e["loc"]))}
    problems: list[ConfigProblem] = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in item_locs:
            continue  # pydantic also counts a list whose item failed as too short
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        path = format_path(loc)
        message = _describe(error, path, loc)
        if is_key:
            message = f"invalid name: {message}"
        problems.append(ConfigProblem(path, message))
    return problems


# --------------------------------------------------------------------------------------------------
# Pulumi glue (the only place that imports pulumi)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackSecrets:
    """The secret config values a stack needs, as secret Outputs (None where not needed)."""

    proxmox_token_secret: pulumi.Output[str]
    management_kubeconfig: pulumi.Output[str] | None
    ssh_private_key: pulumi.Output[str] | None
    csi_encryption_passphrase: pulumi.Output[str] | None
    kamaji_datastore_password: pulumi.Output[str] | None = None


def read_stack_config(config: pulumi.Config) -> StackConfig:
    """Read every domain key of a Pulumi config, validate, and fail the program cleanly on problems."""
    import pulumi

    raw: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key in DOMAIN_KEYS:
        try:
            value = config.get_object(key)
        except pulumi.ConfigTypeError:
            problems.append(ConfigProblem(key, "must be a YAML mapping or list, not a plain string"))
            continue
        if value is not None:
            raw[key] = value
    local_render = config.get("localRender")
    problems.extend(_unknown_keys(config))
    if local_render is not None:
        raw["localRender"] = local_render
    unreadable = {problem.path for problem in problems}
    cfg: StackConfig | None = None
    try:
        cfg = load_stack_config(raw)
    except StackConfigError as exc:
        # problems at or under an unreadable key are echoes of it (a missing key, a default used)
        problems.extend(p for p in exc.problems if re.split(r"[.\[]", p.path, maxsplit=1)[0] not in unreadable)
    if cfg is not None:
        for key in required_secret_keys(cfg):
            if config.get(key) is None:
                problems.append(
                    ConfigProblem(
                        key,
                        f"secret config key is missing ({SECRET_KEYS[key]}); "
                        f"set it with: pulumi config set --secret {key} <value>",
                    )
                )
    if problems or cfg is None:
        raise pulumi.RunError(format_problems(problems))
    return cfg


def _unknown_keys(config: pulumi.Config) -> list[ConfigProblem]:
    """Keys in the project's namespace that the program does not read (usually a typo)."""
    from pulumi.runtime import config as runtime_config

    known = {*DOMAIN_KEYS, *SECRET_KEYS, "localRender", "proxmoxPassword"}
    prefix = f"{config.name}:"
    present = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    problems = []
    for full in sorted(present):
        key = full[len(prefix) :] if full.startswith(prefix) else None
        if key is None or key in known:
            continue
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        message = "unknown stack config key" + (f"; did you mean '{hint[0]}'?" if hint else "")
        problems.append(ConfigProblem(key, f"{message} (known keys: {', '.join(sorted(known))})"))
    return problems


def read_stack_secrets(config: pulumi.Config, cfg: StackConfig) -> StackSecrets:
    """Read the secret config keys ``cfg`` needs as secret Outputs (see ``SECRET_KEYS``)."""
    needed = set(required_secret_keys(cfg))

    def optional(key: str) -> pulumi.Output[str] | None:
        return config.require_secret(key) if key in needed else None

    return StackSecrets(
        proxmox_token_secret=config.require_secret("proxmoxTokenSecret"),
        management_kubeconfig=optional("managementKubeconfig"),
        ssh_private_key=optional("sshPrivateKey"),
        csi_encryption_passphrase=optional("csiEncryptionPassphrase"),
        kamaji_datastore_password=optional("kamajiDatastorePassword"),
    )
