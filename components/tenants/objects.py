"""The Kubernetes objects of one tenant, as plain data (no Pulumi): names, specs, hashes and CIDR math.

``components.tenants.tenant.Tenant`` turns these into resources; tests and the conformance tier validate them
directly. Every function is pure, so the same inputs always give the same names and specs, and nothing
here refers to another tenant: adding, removing or resizing one tenant cannot change another one's objects.

Naming (``<t>`` is the tenant name, at most 30 characters)
    * namespace ``tenant-<t>`` on the management cluster, labelled ``proxmox-k8s-platform/tenant=<t>``;
    * the CAPI ``Cluster``, ``KamajiControlPlane`` and ``ProxmoxCluster`` are all called ``<t>`` inside it
      (Kamaji then names its admin kubeconfig Secret ``<t>-admin-kubeconfig``);
    * per worker pool ``<p>``: MachineDeployment ``<t>-<p>``, ProxmoxMachineTemplate and
      KubeadmConfigTemplate ``<t>-<p>-<hash>``, where ``<hash>`` is the first 10 hex digits of the SHA-256
      of the template's canonical JSON. Both kinds are immutable in practice (CAPMOX's webhook refuses any
      change of a ProxmoxMachineTemplate; CAPI never rolls machines for an edited KubeadmConfigTemplate),
      so a changed spec must be a new object: a new name, and the MachineDeployment points at it.

Addresses
    The Kamaji control-plane pods of a tenant run in ``tenant-<t>`` on the management cluster and get
    their IPs from a private Kube-OVN Subnet. Its CIDR is carved from the tenant's own ``podCidr``: the
    last /26 of the last node block (see :func:`control_plane_cidr`). Preflight already guarantees that
    every tenant's pod CIDR is disjoint from every other CIDR of the platform, so the Subnet can never
    overlap another tenant, the management cluster's pod/service/join CIDRs or a node network, and it
    depends on nothing but the tenant's own config. The tenant's Cilium (installed by the HelmChartProxy
    below) is given the pod CIDR *minus* that node block, so the tenant cluster never hands those
    addresses to its own pods either.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any, Final, Literal

import yaml

__all__ = [
    "API_SERVER_PORT",
    "CAAPH_API",
    "CAPI_API",
    "CAPMOX_API",
    "CNI_LABEL",
    "CONTROL_PLANE_API",
    "KONNECTIVITY_PORT",
    "KUBEADM_BOOTSTRAP_API",
    "KUBE_OVN_API",
    "TENANT_LABEL",
    "ControlPlaneFootprint",
    "DatastoreAccess",
    "PoolSpec",
    "TemplateSource",
    "WorkerNetwork",
    "admin_role_rules",
    "capmox_credentials_labels",
    "cilium_proxy_spec",
    "cilium_values",
    "cluster_spec",
    "control_plane_cidr",
    "control_plane_footprint",
    "kamaji_control_plane_spec",
    "kubeadm_config_template_spec",
    "limit_range_spec",
    "machine_deployment_spec",
    "machine_template_spec",
    "namespace_labels",
    "namespace_name",
    "network_policies",
    "node_mask_size",
    "proxmox_cluster_spec",
    "quota_hard",
    "spec_hash",
    "subnet_spec",
    "tenant_firewall_group",
    "tenant_pod_pools",
    "versioned_name",
]

TENANT_LABEL: Final = "proxmox-k8s-platform/tenant"
"""Label on every tenant object (and the selector of the tenant's pods and its Cluster)."""

CNI_LABEL: Final = "proxmox-k8s-platform/cni"
"""Cluster label the CNI HelmChartProxy selects on."""

CAPI_CLUSTER_LABEL: Final = "cluster.x-k8s.io/cluster-name"
CAPI_DEPLOYMENT_LABEL: Final = "cluster.x-k8s.io/deployment-name"

CAPI_API: Final = "cluster.x-k8s.io/v1beta2"
KUBEADM_BOOTSTRAP_API: Final = "bootstrap.cluster.x-k8s.io/v1beta2"
CONTROL_PLANE_API: Final = "controlplane.cluster.x-k8s.io/v1alpha2"
CAPMOX_API: Final = "infrastructure.cluster.x-k8s.io/v1alpha2"
KUBE_OVN_API: Final = "kubeovn.io/v1"
CAAPH_API: Final = "addons.cluster.x-k8s.io/v1alpha1"

API_SERVER_PORT: Final = 6443
KONNECTIVITY_PORT: Final = 8132
CONTROL_PLANE_PREFIX: Final = 26
"""Size of the Kube-OVN Subnet of the control-plane pods (62 addresses: 5 replicas, surge and slack)."""
MAX_POD_PREFIX: Final = 22
"""Longest tenant pod CIDR prefix that leaves room for a reserved node block and a few nodes."""

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_GROUP: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,17}")


def _label(value: str, what: str, max_length: int = 63) -> str:
    if len(value) > max_length or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be a DNS-1123 label of at most {max_length} characters")
    return value


# --------------------------------------------------------------------------------------------------
# Names and hashes
# --------------------------------------------------------------------------------------------------


def namespace_name(tenant: str) -> str:
    """The tenant's namespace on the management cluster."""
    return f"tenant-{_label(tenant, 'tenant name', 30)}"


def namespace_labels(tenant: str) -> dict[str, str]:
    """Namespace labels: the tenant label, and Pod Security ``baseline`` enforced (``restricted`` warned).

    Kamaji's control-plane pods need no privileges and no host access, so ``baseline`` holds them;
    ``restricted`` is only reported, since the upstream images do not all set the restricted fields.
    """
    return {
        TENANT_LABEL: tenant,
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }


def spec_hash(spec: Mapping[str, Any], length: int = 10) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``spec`` as canonical JSON (sorted keys)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def versioned_name(base: str, spec: Mapping[str, Any]) -> str:
    """``<base>-<hash of spec>``: the name of an immutable template, new whenever its spec changes."""
    name = f"{base}-{spec_hash(spec)}"
    return _label(name, "template name")


def tenant_firewall_group(prefix: str, tenant: str) -> str:
    """The Proxmox security group of a tenant's workers: ``<prefix>-t-<tenant>``, hashed when too long.

    Proxmox limits group names to 18 characters, tenant names go up to 30: a name that does not fit
    becomes ``<prefix>-t<hash>`` (stable: a hash of the tenant name); the group comment names the tenant.
    """
    readable = f"{prefix}-t-{tenant}"
    if _GROUP.fullmatch(readable):
        return readable
    digest = hashlib.sha256(tenant.encode()).hexdigest()
    name = f"{prefix}-t{digest[: 18 - len(prefix) - 2]}"
    if not _GROUP.fullmatch(name):
        raise ValueError(f"firewall group prefix {prefix!r} leaves no room for a tenant suffix")
    return name


# --------------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------------


def node_mask_size(pod_cidr: IPv4Network) -> int:
    """Prefix of the per-node pod block Cilium allocates in the tenant cluster (/24, smaller for small CIDRs)."""
    if pod_cidr.prefixlen > MAX_POD_PREFIX:
        raise ValueError(
            f"tenant pod CIDR {pod_cidr} is too small: at most /{MAX_POD_PREFIX} leaves room for the worker "
            "nodes' pod blocks and the block reserved for the Kamaji control plane"
        )
    return 24 if pod_cidr.prefixlen <= 20 else pod_cidr.prefixlen + 4


def _reserved_block(pod_cidr: IPv4Network) -> IPv4Network:
    """The last node block of the pod CIDR, kept out of the tenant's own pod IPAM."""
    return list(pod_cidr.subnets(new_prefix=node_mask_size(pod_cidr)))[-1]


def control_plane_cidr(pod_cidr: IPv4Network | str) -> IPv4Network:
    """The CIDR of the tenant's Kube-OVN Subnet on the management cluster: the last /26 of the pod CIDR."""
    net = ipaddress.IPv4Network(pod_cidr)
    return list(_reserved_block(net).subnets(new_prefix=CONTROL_PLANE_PREFIX))[-1]


def tenant_pod_pools(pod_cidr: IPv4Network | str) -> list[str]:
    """The tenant cluster's pod CIDR minus the reserved node block, as sorted CIDRs for Cilium's IPAM."""
    net = ipaddress.IPv4Network(pod_cidr)
    return [str(n) for n in sorted(net.address_exclude(_reserved_block(net)))]


# --------------------------------------------------------------------------------------------------
# Namespace guard rails: quota, limits, RBAC, network
# --------------------------------------------------------------------------------------------------

# Explicit resources of each control-plane container; the ResourceQuota accounts for exactly these.
_COMPONENT_RESOURCES: Final[Mapping[str, tuple[int, int, int]]] = {
    # component: (cpu request millicores, memory request MiB, memory limit MiB)
    "apiServer": (250, 512, 1536),
    "controllerManager": (100, 256, 512),
    "scheduler": (50, 128, 256),
    "konnectivity": (50, 128, 256),
}


def component_resources(component: str) -> dict[str, dict[str, str]]:
    """Requests and limits of one control-plane container (no CPU limit: API servers must not be throttled)."""
    cpu, mem, limit = _COMPONENT_RESOURCES[component]
    return {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}, "limits": {"memory": f"{limit}Mi"}}


@dataclass(frozen=True)
class ControlPlaneFootprint:
    """What the control plane needs from the namespace quota during a rolling update (2x the replicas)."""

    cpu_millis: int
    """Sum of CPU requests."""
    memory_request_mib: int
    """Sum of memory requests."""
    memory_limit_mib: int
    """Sum of memory limits."""
    pods: int
    """Pods at once."""


def control_plane_footprint(replicas: int) -> ControlPlaneFootprint:
    """The quota a control plane of ``replicas`` needs, with Kamaji's default 100% surge during rollouts."""
    pods = 2 * replicas
    return ControlPlaneFootprint(
        cpu_millis=pods * sum(c for c, _, _ in _COMPONENT_RESOURCES.values()),
        memory_request_mib=pods * sum(m for _, m, _ in _COMPONENT_RESOURCES.values()),
        memory_limit_mib=pods * sum(limit for _, _, limit in _COMPONENT_RESOURCES.values()),
        pods=pods,
    )


def quota_hard(
    *,
    cpu: int | None,
    memory_gib: int | None,
    storage_gib: int | None,
    pods: int | None,
    replicas: int,
    service_type: Literal["LoadBalancer", "NodePort"],
) -> dict[str, str]:
    """``ResourceQuota.spec.hard``: the configured quota, or one sized for the control plane when unset.

    CPU and memory are quota'd on requests, memory also on limits (no memory overcommit); one
    LoadBalancer Service (the API server's) with ``serviceType: LoadBalancer`` and none otherwise, so the
    namespace cannot drain the MetalLB pool that preflight sized at one address per tenant. A configured
    quota smaller than the control plane's rolling-update footprint is refused.
    """
    need = control_plane_footprint(replicas)
    default_cpu = -(-need.cpu_millis // 1000)
    default_mem = -(-need.memory_limit_mib // 1024)
    hard_cpu = cpu if cpu is not None else default_cpu
    hard_mem = memory_gib if memory_gib is not None else default_mem
    hard_pods = pods if pods is not None else need.pods + 2
    problems = []
    if hard_cpu * 1000 < need.cpu_millis:
        problems.append(f"cpu {hard_cpu} < {need.cpu_millis}m")
    if hard_mem * 1024 < need.memory_limit_mib:
        problems.append(f"memoryGiB {hard_mem} < {need.memory_limit_mib}Mi of limits")
    if hard_pods < need.pods:
        problems.append(f"pods {hard_pods} < {need.pods}")
    if problems:
        raise ValueError(
            f"quota too small for {replicas} control-plane replicas during a rolling update (2x pods): "
            + ", ".join(problems)
        )
    hard = {
        "requests.cpu": str(hard_cpu),
        "requests.memory": f"{hard_mem}Gi",
        "limits.memory": f"{hard_mem}Gi",
        "pods": str(hard_pods),
        "services.loadbalancers": "1" if service_type == "LoadBalancer" else "0",
    }
    hard["requests.storage"] = f"{storage_gib if storage_gib is not None else 0}Gi"
    return hard


def limit_range_spec() -> dict[str, Any]:
    """Defaults for containers that set no resources, and a ceiling per container."""
    return {
        "limits": [
            {
                "type": "Container",
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "default": {"memory": "512Mi"},
                "max": {"cpu": "4", "memory": "8Gi"},
            }
        ]
    }


_READ: Final = ["get", "list", "watch"]


def admin_role_rules(cluster: str) -> list[dict[str, Any]]:
    """The tenant admins' Role: read the tenant's objects, and read its admin kubeconfig, nothing else.

    Changes go through the stack configuration; no write access means tenant admins cannot fight Pulumi
    or reach the Proxmox credentials Secret in their namespace.
    """
    return [
        {
            "apiGroups": ["cluster.x-k8s.io"],
            "resources": ["clusters", "machinedeployments", "machinesets", "machines", "machinehealthchecks"],
            "verbs": _READ,
        },
        {"apiGroups": ["controlplane.cluster.x-k8s.io"], "resources": ["kamajicontrolplanes"], "verbs": _READ},
        {
            "apiGroups": ["infrastructure.cluster.x-k8s.io"],
            "resources": ["proxmoxclusters", "proxmoxmachines", "proxmoxmachinetemplates"],
            "verbs": _READ,
        },
        {
            "apiGroups": ["bootstrap.cluster.x-k8s.io"],
            "resources": ["kubeadmconfigs", "kubeadmconfigtemplates"],
            "verbs": _READ,
        },
        {"apiGroups": ["kamaji.clastix.io"], "resources": ["tenantcontrolplanes"], "verbs": _READ},
        {
            "apiGroups": ["addons.cluster.x-k8s.io"],
            "resources": ["helmchartproxies", "helmreleaseproxies"],
            "verbs": _READ,
        },
        {
            "apiGroups": [""],
            "resources": ["pods", "pods/log", "services", "endpoints", "events", "resourcequotas", "limitranges"],
            "verbs": _READ,
        },
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [f"{cluster}-admin-kubeconfig"],
            "verbs": ["get"],
        },
    ]


@dataclass(frozen=True, kw_only=True)
class DatastoreAccess:
    """Where the control-plane pods reach their Kamaji DataStore (egress allowance)."""

    ports: tuple[int, ...]
    """TCP ports of the datastore."""
    namespaces: tuple[str, ...] = ()
    """Namespaces of in-cluster datastore pods (bundled etcd: ``kamaji-system``)."""
    cidrs: tuple[str, ...] = ()
    """Address blocks of datastores outside the cluster."""

    def __post_init__(self) -> None:
        if not self.ports or not all(0 < p < 65536 for p in self.ports):
            raise ValueError(f"datastore ports must be 1..65535, got {self.ports}")
        if not self.namespaces and not self.cidrs:
            raise ValueError("datastore access needs a namespace or a CIDR")
        for cidr in self.cidrs:
            ipaddress.IPv4Network(cidr)

    @classmethod
    def etcd(cls, namespace: str = "kamaji-system") -> DatastoreAccess:
        """Kamaji's bundled etcd (``kamaji-etcd`` in ``kamaji-system``, client port 2379)."""
        return cls(ports=(2379,), namespaces=(namespace,))

    @classmethod
    def from_endpoints(cls, endpoints: Sequence[str]) -> DatastoreAccess:
        """An SQL datastore: ``<svc>.<ns>.svc[...]:port`` endpoints are namespaces, anything else any address."""
        ports: list[int] = []
        namespaces: list[str] = []
        cidrs: list[str] = []
        for endpoint in endpoints:
            host, _, port = endpoint.rpartition(":")
            ports.append(int(port))
            parts = host.split(".")
            if len(parts) >= 3 and parts[2] == "svc":
                namespaces.append(parts[1])
            else:
                cidrs.append("0.0.0.0/0")
        return cls(
            ports=tuple(sorted(set(ports))),
            namespaces=tuple(sorted(set(namespaces))),
            cidrs=tuple(sorted(set(cidrs))),
        )


def _ns_selector(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(datastore: DatastoreAccess) -> dict[str, dict[str, Any]]:
    """The namespace's NetworkPolicies (enforced by Cilium: Kube-OVN runs with ``ENABLE_NP=false``).

    * ``default-deny``: no ingress, no egress for any pod;
    * ``allow-dns``: egress to the cluster DNS (kube-system ``k8s-app=kube-dns``) on 53/UDP+TCP;
    * ``allow-datastore``: egress to the Kamaji DataStore (etcd 2379 in ``kamaji-system``, or SQL);
    * ``allow-control-plane-ingress``: the kube-apiserver (6443) and konnectivity (8132) ports, from any
      source. The *source* restriction is the private Kube-OVN Subnet's ``allowSubnets`` (the management
      pod and node networks, the tenant's worker network), not an ``ipBlock`` here: Cilium gives node
      addresses (LoadBalancer traffic SNATed by a node) reserved identities that ``ipBlock`` rules do not
      match, which would silently drop workers whose traffic lands on another node.
    """
    datastore_peers: list[dict[str, Any]] = [_ns_selector(ns) for ns in datastore.namespaces]
    datastore_peers += [{"ipBlock": {"cidr": cidr}} for cidr in datastore.cidrs]
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{**_ns_selector("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
        "allow-datastore": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": datastore_peers, "ports": [{"protocol": "TCP", "port": p} for p in datastore.ports]}],
        },
        "allow-control-plane-ingress": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [
                        {"protocol": "TCP", "port": API_SERVER_PORT},
                        {"protocol": "TCP", "port": KONNECTIVITY_PORT},
                    ]
                }
            ],
        },
    }


def subnet_spec(namespace: str, cidr: IPv4Network, allow_subnets: Sequence[str]) -> dict[str, Any]:
    """The private Kube-OVN Subnet of the tenant namespace (the control-plane pods' addresses).

    ``private: true`` drops traffic from every other subnet except ``allowSubnets`` (both directions) and
    the node (join) subnet, which Kube-OVN always allows (``SetLogicalSwitchPrivate``): other tenants'
    subnets are never listed, so tenants cannot reach each other's control planes. No NAT outward: the
    control plane talks to nothing outside the platform.
    """
    allow = sorted({str(ipaddress.IPv4Network(c)) for c in allow_subnets})
    return {
        "protocol": "IPv4",
        "cidrBlock": str(cidr),
        "namespaces": [namespace],
        "private": True,
        "allowSubnets": allow,
        "natOutgoing": False,
    }


# --------------------------------------------------------------------------------------------------
# Cluster API
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TemplateSource:
    """The VM template a worker pool clones: a VMID on a node, or tags (CAPMOX ``templateSelector``)."""

    vmid: int | None = None
    """Template VMID (with ``node``)."""
    node: str | None = None
    """Node holding the template (with ``vmid``)."""
    tags: tuple[str, ...] = ()
    """Tags selecting the template (the template may carry more; exactly one template must match)."""

    def __post_init__(self) -> None:
        by_id = self.vmid is not None and self.node is not None
        if by_id == bool(self.tags) or (self.vmid is None) != (self.node is None):
            raise ValueError("a template is selected by vmid + node, or by tags (exactly one of them)")

    def capmox_fields(self) -> dict[str, Any]:
        """The ProxmoxMachine fields that select the template."""
        if self.vmid is not None:
            return {"sourceNode": self.node, "templateID": self.vmid}
        return {"templateSelector": {"matchTags": sorted(set(self.tags)), "matchPolicy": "uniqueSubset"}}


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    """One worker pool, resolved against the stack (template, nodes)."""

    name: str
    """Pool name (DNS label, at most 20 characters)."""
    replicas: int
    """Worker VMs."""
    cores: int
    """vCPU cores per VM."""
    memory_mib: int
    """Memory per VM in MiB (multiple of 8)."""
    disk_gib: int
    """Boot disk in GiB (at least 5, at least the template's)."""
    template: TemplateSource
    """Template to clone."""
    allowed_nodes: tuple[str, ...]
    """Proxmox nodes the pool's VMs may run on."""
    boot_disk: str = "scsi0"
    """Boot disk slot of the template."""

    def __post_init__(self) -> None:
        _label(self.name, "worker pool name", 20)
        if self.replicas < 0 or self.cores < 1 or self.disk_gib < 5 or self.memory_mib % 8:
            raise ValueError(f"worker pool {self.name}: replicas >= 0, cores >= 1, disk >= 5 GiB, memory % 8 == 0")
        if not self.allowed_nodes:
            raise ValueError(f"worker pool {self.name}: no Proxmox node to run on")


@dataclass(frozen=True, kw_only=True)
class WorkerNetwork:
    """The tenant's worker network as CAPMOX needs it."""

    bridge: str
    """Bridge (or SDN VNet) of net0."""
    vlan: int | None
    """VLAN tag of net0."""
    mtu: int
    """MTU of net0."""
    cidr: IPv4Network
    """Network of the worker VMs."""
    gateway: str
    """Default gateway."""
    dns_servers: tuple[str, ...]
    """DNS servers handed to the VMs."""
    ip_range: str
    """Addresses for the VMs, ``start-end``."""


def cluster_spec(cluster: str, pod_cidr: str, service_cidr: str) -> dict[str, Any]:
    """CAPI ``Cluster``: networks, the Kamaji control plane, the Proxmox infrastructure."""
    return {
        "clusterNetwork": {
            "apiServerPort": API_SERVER_PORT,
            "pods": {"cidrBlocks": [pod_cidr]},
            "services": {"cidrBlocks": [service_cidr]},
            "serviceDomain": "cluster.local",
        },
        "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KamajiControlPlane", "name": cluster},
        "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "ProxmoxCluster", "name": cluster},
    }


def kamaji_control_plane_spec(
    *,
    tenant: str,
    version: str,
    replicas: int,
    datastore: str,
    service_type: Literal["LoadBalancer", "NodePort"],
) -> dict[str, Any]:
    """``KamajiControlPlane`` (v1alpha2): version, replicas, DataStore, Service type, addons, resources.

    ``controlPlaneEndpoint`` is absent on purpose: the Kamaji provider writes it (and the one of the
    ProxmoxCluster). CoreDNS, kube-proxy and konnectivity run as Kamaji addons; konnectivity plus
    ``InternalIP`` first keeps ``kubectl logs/exec`` working through the tunnel.
    """
    pod_labels = {TENANT_LABEL: tenant}
    return {
        "version": version,
        "replicas": replicas,
        "dataStoreName": datastore,
        "network": {"serviceType": service_type, "serviceLabels": dict(pod_labels)},
        "addons": {
            "coreDNS": {},
            "kubeProxy": {},
            "konnectivity": {
                "server": {"port": KONNECTIVITY_PORT, "resources": component_resources("konnectivity")},
                "agent": {"mode": "DaemonSet"},
            },
        },
        "kubelet": {"cgroupfs": "systemd", "preferredAddressTypes": ["InternalIP", "ExternalIP", "Hostname"]},
        "apiServer": {"resources": component_resources("apiServer")},
        "controllerManager": {"resources": component_resources("controllerManager")},
        "scheduler": {"resources": component_resources("scheduler")},
        "deployment": {
            "additionalMetadata": {"labels": dict(pod_labels)},
            "podAdditionalMetadata": {"labels": dict(pod_labels)},
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": dict(pod_labels)},
                }
            ],
        },
    }


def capmox_credentials_labels() -> dict[str, str]:
    """The label CAPMOX looks for on a ``credentialsRef`` Secret."""
    return {"platform.ionos.com/secret-type": "proxmox-credentials"}


def proxmox_cluster_spec(
    *,
    network: WorkerNetwork,
    allowed_nodes: Sequence[str],
    credentials_secret: str,
    namespace: str,
) -> dict[str, Any]:
    """``ProxmoxCluster`` (v1alpha2) for an externally managed (Kamaji) control plane.

    The IP pool (``ipv4Config``) becomes the ``<cluster>-v4-icip`` InClusterIPPool; ``credentialsRef``
    points at the tenant's own CAPMOX token, scoped to the tenant's Proxmox pool.
    """
    return {
        "externalManagedControlPlane": True,
        "allowedNodes": sorted(set(allowed_nodes)),
        "ipv4Config": {
            "addresses": [network.ip_range],
            "prefix": network.cidr.prefixlen,
            "gateway": network.gateway,
        },
        "dnsServers": list(network.dns_servers),
        "credentialsRef": {"name": credentials_secret, "namespace": namespace},
    }


def machine_template_spec(
    *,
    tenant: str,
    pool: PoolSpec,
    proxmox_pool: str,
    network: WorkerNetwork,
    vmid_range: tuple[int, int],
) -> dict[str, Any]:
    """``ProxmoxMachineTemplate.spec`` of a worker pool (hash it for the name: the kind is immutable)."""
    nic: dict[str, Any] = {"name": "net0", "bridge": network.bridge, "model": "virtio"}
    if network.vlan is not None:
        nic["vlan"] = network.vlan
    if network.mtu != 1500:
        nic["mtu"] = network.mtu
    machine: dict[str, Any] = {
        **pool.template.capmox_fields(),
        "full": True,
        "pool": proxmox_pool,
        "numSockets": 1,
        "numCores": pool.cores,
        "memoryMiB": pool.memory_mib,
        "disks": {"bootVolume": {"disk": pool.boot_disk, "sizeGb": pool.disk_gib}},
        "allowedNodes": sorted(set(pool.allowed_nodes)),
        "vmIDRange": {"start": vmid_range[0], "end": vmid_range[1]},
        "tags": sorted({f"tenant-{tenant}", f"pool-{pool.name}"}),
        "network": {"networkDevices": [nic]},
    }
    return {"template": {"spec": machine}}


def kubeadm_config_template_spec() -> dict[str, Any]:
    """``KubeadmConfigTemplate.spec`` of workers joining a Kamaji control plane (CAPMOX provider ID)."""
    return {
        "template": {
            "spec": {
                "joinConfiguration": {
                    "nodeRegistration": {
                        "name": "{{ local_hostname }}",
                        "criSocket": "unix:///var/run/containerd/containerd.sock",
                        "kubeletExtraArgs": [
                            {"name": "provider-id", "value": "proxmox://'{{ ds.meta_data.instance_id }}'"},
                        ],
                    }
                }
            }
        }
    }


def machine_deployment_spec(
    *,
    cluster: str,
    deployment: str,
    replicas: int,
    version: str,
    bootstrap_template: str,
    machine_template: str,
) -> dict[str, Any]:
    """``MachineDeployment`` (v1beta2): same Kubernetes version as the control plane (Kamaji#1062)."""
    selector = {CAPI_CLUSTER_LABEL: cluster, CAPI_DEPLOYMENT_LABEL: deployment}
    return {
        "clusterName": cluster,
        "replicas": replicas,
        "selector": {"matchLabels": dict(selector)},
        "rollout": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
        "template": {
            "metadata": {"labels": {**selector, "node-role.kubernetes.io/worker": ""}},
            "spec": {
                "clusterName": cluster,
                "version": version,
                "bootstrap": {
                    "configRef": {
                        "apiGroup": "bootstrap.cluster.x-k8s.io",
                        "kind": "KubeadmConfigTemplate",
                        "name": bootstrap_template,
                    }
                },
                "infrastructureRef": {
                    "apiGroup": "infrastructure.cluster.x-k8s.io",
                    "kind": "ProxmoxMachineTemplate",
                    "name": machine_template,
                },
            },
        },
    }


# --------------------------------------------------------------------------------------------------
# CNI of the tenant cluster (Cluster API add-on provider for Helm)
# --------------------------------------------------------------------------------------------------


def cilium_values(pod_cidr: IPv4Network | str) -> dict[str, Any]:
    """Cilium values for a tenant cluster: cluster-pool IPAM over the pod CIDR minus the reserved block.

    kube-proxy runs as a Kamaji addon, so no kube-proxy replacement and no ``k8sServiceHost`` is needed
    (the in-cluster Service address works from the start).
    """
    net = ipaddress.IPv4Network(pod_cidr)
    return {
        "ipam": {
            "mode": "cluster-pool",
            "operator": {
                "clusterPoolIPv4PodCIDRList": tenant_pod_pools(net),
                "clusterPoolIPv4MaskSize": node_mask_size(net),
            },
        },
        "kubeProxyReplacement": False,
        "operator": {"replicas": 1},
        "hubble": {"enabled": False},
    }


def cilium_proxy_spec(
    *, tenant: str, pod_cidr: IPv4Network | str, chart: str, repo: str, version: str
) -> dict[str, Any]:
    """``HelmChartProxy`` installing Cilium into the tenant cluster (selected by its Cluster's labels)."""
    return {
        "clusterSelector": {"matchLabels": {TENANT_LABEL: tenant, CNI_LABEL: "cilium"}},
        "repoURL": repo.rstrip("/"),
        "chartName": chart,
        "version": version,
        "releaseName": "cilium",
        "namespace": "kube-system",
        "valuesTemplate": yaml.safe_dump(cilium_values(pod_cidr), sort_keys=True),
    }
