"""Preflight: the cross-key checks of a shape-valid ``StackConfig``, and the compatibility matrix.

Every check reports a ``ConfigProblem`` with the YAML key path (camelCase, ``tenants[1].podCidr``) and
what is allowed; none of them stops the others, so a user sees every problem in one run. The checks
prevent, before anything is created, the traps listed in DESIGN.md section 5 and
reference/k8s_stack.md section 6: overlapping CIDRs (Cilium chaining needs cluster-unique pod IPs),
addresses outside their subnets, colliding VMID ranges (including the CSI controller VMID), dangling
references to nodes, storages, templates and storage classes, and version sets outside the
compatibility matrix.

This module imports the model only for type checking, so ``components.config`` can re-export it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from components.config import StackConfig, VmidRange, VmIpRange


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the stack configuration: where (YAML key path) and what is allowed."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def format_problems(problems: Sequence[ConfigProblem]) -> str:
    """Render problems as one readable message, one line per problem."""
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    lines = [f"Stack configuration is invalid ({count} {noun}):"]
    lines.extend(f"  - {problem}" for problem in problems)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Compatibility matrix (data). Sources: reference/k8s_stack.md section 0 and the Cluster API release
# notes ("Kubernetes version support"). Version "lines" match a version when they are equal to it or a
# prefix of it at a component boundary: "v0.9" matches "v0.9.0", "0.0.0+latest" only itself.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterApiLine:
    """What pairs with one Cluster API minor release."""

    management_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of the management cluster."""
    workload_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of workload (tenant) clusters."""
    capmox: tuple[str, ...]
    """CAPMOX lines built for this CAPI contract."""
    ipam_in_cluster: tuple[str, ...]
    """In-cluster IPAM lines."""
    kamaji_provider: tuple[str, ...]
    """Kamaji control-plane provider lines."""


@dataclass(frozen=True)
class KamajiLine:
    """Kubernetes support of one line of Kamaji edge releases."""

    management_kubernetes_min: str
    """Oldest Kubernetes minor of the management cluster."""
    tenant_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of tenant control planes."""


@dataclass(frozen=True)
class CompatibilityMatrix:
    """The version combinations this program supports."""

    cluster_api: Mapping[str, ClusterApiLine]
    """Cluster API minor ("v1.12") to what pairs with it."""
    kamaji: Mapping[str, KamajiLine]
    """Kamaji edge release year ("26" for 26.x.y-edge) to its Kubernetes support."""
    kube_ovn_cilium: Mapping[str, tuple[str, ...]]
    """Kube-OVN line to the Cilium lines it is chained with."""
    charts: Mapping[str, tuple[str, ...]]
    """``versions`` key of a chart to its supported lines."""


COMPATIBILITY_MATRIX: Final = CompatibilityMatrix(
    cluster_api={
        "v1.12": ClusterApiLine(
            management_kubernetes=("v1.31", "v1.35"),
            workload_kubernetes=("v1.29", "v1.35"),
            capmox=("v0.9",),
            ipam_in_cluster=("v1.1",),
            kamaji_provider=("v0.20",),
        ),
        "v1.11": ClusterApiLine(
            management_kubernetes=("v1.30", "v1.34"),
            workload_kubernetes=("v1.28", "v1.34"),
            capmox=("v0.8", "v0.9"),
            ipam_in_cluster=("v1.1",),
            kamaji_provider=("v0.20",),
        ),
    },
    kamaji={"26": KamajiLine(management_kubernetes_min="v1.33", tenant_kubernetes=("v1.30", "v1.35"))},
    kube_ovn_cilium={"v1.16": ("1.18", "1.19"), "v1.15": ("1.19",)},
    charts={
        "certManager": ("v1.18", "v1.19", "v1.20"),
        "capiOperator": ("0.28",),
        "proxmoxCsi": ("0.5",),
        "kamaji": ("0.0.0+latest",),
    },
)
"""Supported version combinations (keep in step with reference/k8s_stack.md section 0)."""

CSI_CONTROLLER_VMID: Final = 9999
"""VMID that owns the Proxmox CSI driver's volumes (features.controllerVmID); no range may contain it."""

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


def line_matches(version: str, line: str) -> bool:
    """Whether ``version`` belongs to ``line`` ("v0.9" matches "v0.9.0" and "v0.9.1", not "v0.90.0")."""
    return version == line or version.startswith(line + ".")


def _minor(version: str) -> tuple[int, int]:
    """(major, minor) of "v1.34.8", "1.19.5" or "v1.34"."""
    parts = version.lstrip("v").split(".")
    return int(parts[0]), int(parts[1])


def _minor_line(version: str) -> str:
    major, minor = _minor(version)
    prefix = "v" if version.startswith("v") else ""
    return f"{prefix}{major}.{minor}"


def _in_range(version: str, low: str, high: str | None) -> bool:
    minor = _minor(version)
    return _minor(low) <= minor and (high is None or minor <= _minor(high))


def _join(items: Iterable[object]) -> str:
    return ", ".join(str(item) for item in items)


# --------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(ConfigProblem(path, message))


def preflight(cfg: StackConfig) -> list[ConfigProblem]:
    """Run every cross-key check on a shape-valid configuration; return all problems found."""
    out = _Problems()
    _check_proxmox(cfg, out)
    _check_nodes(cfg, out)
    _check_templates(cfg, out)
    _check_networks(cfg, out)
    _check_management_cluster(cfg, out)
    _check_storage(cfg, out)
    _check_cluster_api(cfg, out)
    _check_kamaji(cfg, out)
    _check_tenants(cfg, out)
    _check_cidr_overlaps(cfg, out)
    _check_vmid_ranges(cfg, out)
    _check_operations(cfg, out)
    _check_versions(cfg, out)
    return out.items


def _check_proxmox(cfg: StackConfig, out: _Problems) -> None:
    if not cfg.proxmox.verify_tls and cfg.proxmox.ca_bundle is not None:
        out.add("proxmox.caBundle", "only used when verifyTls is true; remove one of them")


def _check_nodes(cfg: StackConfig, out: _Problems) -> None:
    seen: dict[str, int] = {}
    for i, node in enumerate(cfg.nodes):
        if node.name in seen:
            out.add(f"nodes[{i}].name", f"duplicate node {node.name!r} (also nodes[{seen[node.name]}])")
        seen.setdefault(node.name, i)
        dupes = sorted({s for s in node.storages if node.storages.count(s) > 1})
        if dupes:
            out.add(f"nodes[{i}].storages", f"lists {_join(dupes)} more than once")


def _check_node_refs(cfg: StackConfig, out: _Problems, path: str, names: Sequence[str]) -> None:
    known = cfg.node_names()
    for j, name in enumerate(names):
        if name not in known:
            out.add(f"{path}[{j}]", f"unknown node {name!r}; declared nodes: {_join(known)}")


def _check_template_ref(cfg: StackConfig, out: _Problems, path: str, name: str | None) -> None:
    resolved = cfg.resolve_template(name)
    if resolved in cfg.templates:
        return
    declared = _join(cfg.templates) or "none"
    if name is None:
        out.add(
            path,
            f"defaults to versions.vmTemplate {resolved!r}, which is not declared in templates "
            f"(declared: {declared}); declare it or name a template here",
        )
    else:
        out.add(path, f"unknown template {name!r}; declared templates: {declared}")


def _check_templates(cfg: StackConfig, out: _Problems) -> None:
    vmids: dict[int, str] = {}
    for name, tpl in cfg.templates.items():
        path = f"templates.{name}"
        has_tags, has_vmid, has_url = bool(tpl.tags), tpl.vmid is not None, tpl.cloud_image_url is not None
        if not (has_tags or has_vmid or has_url):
            out.add(
                path,
                "needs exactly one source: vmid + node (an existing template), tags (found by "
                "tags), or cloudImageUrl + vmid + node + storage (built from a cloud image)",
            )
            continue
        if has_tags and (has_vmid or has_url):
            out.add(f"{path}.tags", "cannot be combined with vmid or cloudImageUrl; choose one source")
            continue
        if has_url and not has_vmid:
            out.add(f"{path}.vmid", "required with cloudImageUrl: the VMID to give the built template")
        if (has_vmid or has_url) and tpl.node is None:
            out.add(f"{path}.node", "required with vmid or cloudImageUrl: the node holding the template")
        if has_tags and tpl.node is not None:
            out.add(f"{path}.node", "only used with vmid or cloudImageUrl, not with tags")
        if has_url and tpl.storage is None:
            out.add(f"{path}.storage", "required with cloudImageUrl: the storage for the template's disk")
        if not has_url:
            for key, value in (("storage", tpl.storage), ("cloudImageChecksum", tpl.cloud_image_checksum)):
                if value is not None:
                    out.add(f"{path}.{key}", "only used with cloudImageUrl")
        if tpl.node is not None and tpl.node not in cfg.node_names():
            out.add(f"{path}.node", f"unknown node {tpl.node!r}; declared nodes: {_join(cfg.node_names())}")
        elif (
            tpl.node is not None
            and has_url
            and tpl.storage is not None
            and tpl.storage not in cfg.storages_on(tpl.node)
        ):
            out.add(
                f"{path}.storage",
                f"storage {tpl.storage!r} is not on node {tpl.node} "
                f"(its storages: {_join(sorted(cfg.storages_on(tpl.node)))})",
            )
        if tpl.vmid is not None:
            if tpl.vmid in vmids:
                out.add(f"{path}.vmid", f"VMID {tpl.vmid} is also used by templates.{vmids[tpl.vmid]}")
            vmids.setdefault(tpl.vmid, name)


def _segment(bridge: str, vlan: int | None) -> str:
    return f"bridge {bridge} " + (f"VLAN {vlan}" if vlan is not None else "untagged")


def _check_subnet_member(out: _Problems, path: str, address: IPv4Address, net: IPv4Network, what: str) -> bool:
    if address not in net:
        out.add(path, f"{address} is outside {what} {net}")
        return False
    if net.prefixlen < 31 and address in (net.network_address, net.broadcast_address):
        kind = "network" if address == net.network_address else "broadcast"
        out.add(path, f"{address} is the {kind} address of {net}")
        return False
    return True


def _check_range(out: _Problems, path: str, rng: VmIpRange, net: IPv4Network, what: str) -> bool:
    if rng.start > rng.end:
        out.add(path, f"start {rng.start} is after end {rng.end}")
        return False
    ok = _check_subnet_member(out, f"{path}.start", rng.start, net, what)
    return _check_subnet_member(out, f"{path}.end", rng.end, net, what) and ok


def _check_networks(cfg: StackConfig, out: _Problems) -> None:
    segments: dict[tuple[str, int | None], str] = {}
    nets = cfg.networks
    for key, net in (("management", nets.management), ("data", nets.data), ("storage", nets.storage)):
        if net is None:
            continue
        path = f"networks.{key}"
        seg = (net.bridge, net.vlan)
        if seg in segments:
            out.add(
                f"{path}.vlan",
                f"{_segment(*seg)} is already used by {segments[seg]}; node networks must be separated "
                "by bridge or VLAN",
            )
        segments.setdefault(seg, path)
        if net.gateway is not None:
            _check_subnet_member(out, f"{path}.gateway", net.gateway, net.cidr, f"{path}.cidr")
    for i, tenant in enumerate(cfg.tenants):
        path = f"tenants[{i}].network"
        seg = (tenant.network.bridge, tenant.network.vlan)
        if seg in segments:
            out.add(
                f"{path}.vlan",
                f"{_segment(*seg)} is already used by {segments[seg]}; each tenant needs its own bridge "
                "or VLAN (isolation)",
            )
        segments.setdefault(seg, path)


def _check_reserved_ip(
    out: _Problems, path: str, address: IPv4Address, ranges: Sequence[tuple[str, VmIpRange | None]]
) -> None:
    for range_path, rng in ranges:
        if rng is not None and rng.contains(address):
            out.add(path, f"{address} lies inside {range_path} ({rng.start}-{rng.end}); keep it outside")


def _check_management_cluster(cfg: StackConfig, out: _Problems) -> None:
    mc = cfg.management_cluster
    net = cfg.networks.management
    if mc.external:
        for name in mc.explicit_vm_keys():
            alias = type(mc).model_fields[name].alias or name
            out.add(
                f"managementCluster.{alias}",
                "only used when the program builds the management cluster; remove it or set external: false",
            )
        return
    _check_template_ref(cfg, out, "managementCluster.template", mc.template)
    _check_node_refs(cfg, out, "managementCluster.nodes", mc.nodes)
    if not mc.ssh_public_keys:
        out.add(
            "managementCluster.sshPublicKeys",
            "needs at least one key for the kubeadm bootstrap over SSH (private key: secret sshPrivateKey)",
        )
    vm_count = mc.control_planes.count + mc.workers.count
    if mc.vmid_range.start <= mc.vmid_range.end and mc.vmid_range.size < vm_count:
        out.add(
            "managementCluster.vmidRange",
            f"holds {mc.vmid_range.size} VMIDs; needs at least {vm_count} (controlPlanes.count + workers.count)",
        )
    mgmt_cidr = "networks.management.cidr"
    if mc.ip_range is None:
        out.add("managementCluster.ipRange", "required unless external is true: static addresses for the VMs")
    elif _check_range(out, "managementCluster.ipRange", mc.ip_range, net.cidr, mgmt_cidr):
        if mc.ip_range.size < vm_count:
            out.add(
                "managementCluster.ipRange",
                f"holds {mc.ip_range.size} addresses; needs at least {vm_count} (controlPlanes.count + workers.count)",
            )
        _check_reserved_ip(
            out, "networks.management.gateway", net.gateway, [("managementCluster.ipRange", mc.ip_range)]
        )
    if mc.control_plane_endpoint is None:
        out.add("managementCluster.controlPlaneEndpoint", "required unless external is true: the API VIP")
    else:
        path = "managementCluster.controlPlaneEndpoint"
        if _check_subnet_member(out, path, mc.control_plane_endpoint, net.cidr, mgmt_cidr):
            if mc.control_plane_endpoint == net.gateway:
                out.add(path, f"{net.gateway} is the gateway of networks.management")
            _check_reserved_ip(out, path, mc.control_plane_endpoint, [("managementCluster.ipRange", mc.ip_range)])


def _check_storage(cfg: StackConfig, out: _Problems) -> None:
    names: dict[str, int] = {}
    defaults: list[int] = []
    all_storages = {s for node in cfg.nodes for s in node.storages}
    for i, sc in enumerate(cfg.storage):
        if sc.storage_class in names:
            out.add(
                f"storage[{i}].storageClass",
                f"duplicate StorageClass {sc.storage_class!r} (also storage[{names[sc.storage_class]}])",
            )
        names.setdefault(sc.storage_class, i)
        if sc.is_default:
            defaults.append(i)
        if sc.storage not in all_storages:
            out.add(
                f"storage[{i}].storage",
                f"storage {sc.storage!r} is not on any node; declared storages: {_join(sorted(all_storages))}",
            )
    for i in defaults[1:]:
        out.add(f"storage[{i}].default", f"only one StorageClass may be default (storage[{defaults[0]}] is)")


def _check_storage_on_nodes(
    cfg: StackConfig, out: _Problems, path: str, class_name: str | None, nodes: Sequence[str], who: str
) -> None:
    sc = cfg.storage_class(class_name)
    if sc is None:
        return
    missing = [n for n in nodes if n in cfg.node_names() and sc.storage not in cfg.storages_on(n)]
    if missing:
        out.add(
            path,
            f"StorageClass {sc.storage_class!r} uses storage {sc.storage!r}, which is not on "
            f"{_join(missing)} where {who} may run",
        )


def _check_storage_class_ref(cfg: StackConfig, out: _Problems, path: str, name: str | None) -> bool:
    if name is None or cfg.storage_class(name) is not None:
        return True
    declared = _join(sc.storage_class for sc in cfg.storage) or "none"
    out.add(path, f"unknown StorageClass {name!r}; declared in storage: {declared}")
    return False


def _check_cluster_api(cfg: StackConfig, out: _Problems) -> None:
    _check_node_refs(cfg, out, "clusterApi.allowedNodes", cfg.cluster_api.allowed_nodes)


def _check_kamaji(cfg: StackConfig, out: _Problems) -> None:
    ds = cfg.kamaji.datastore
    path = "kamaji.datastore"
    if ds.driver == "etcd":
        if ds.replicas % 2 == 0:
            out.add(f"{path}.replicas", f"must be odd for etcd quorum (got {ds.replicas})")
        if ds.endpoints:
            out.add(f"{path}.endpoints", "only used with driver postgresql (kamaji-etcd is deployed in-cluster)")
        if _check_storage_class_ref(cfg, out, f"{path}.storageClass", ds.storage_class):
            if cfg.storage_class(ds.storage_class) is None:
                out.add(
                    f"{path}.storageClass",
                    "kamaji-etcd needs a StorageClass for its volumes: name one from storage or mark one default",
                )
            elif not cfg.management_cluster.external:
                _check_storage_on_nodes(
                    cfg, out, f"{path}.storageClass", ds.storage_class, cfg.management_nodes(), "the management cluster"
                )
    else:
        if not ds.endpoints:
            out.add(f"{path}.endpoints", "required with driver postgresql: host:port of the database")
        if ds.storage_class is not None:
            out.add(f"{path}.storageClass", "only used with driver etcd")
    lb = cfg.kamaji.load_balancer
    if cfg.kamaji.service_type == "LoadBalancer" and cfg.tenants and lb is None:
        out.add(
            "kamaji.loadBalancer",
            "required when serviceType is LoadBalancer and tenants are declared: the address pool "
            "for the tenants' API servers",
        )
    if lb is None:
        return
    if cfg.kamaji.service_type != "LoadBalancer":
        out.add("kamaji.loadBalancer", "only used with serviceType LoadBalancer; remove it or change serviceType")
        return
    net = cfg.networks.management
    lb_path = "kamaji.loadBalancer.ipRange"
    if not _check_range(out, lb_path, lb.ip_range, net.cidr, "networks.management.cidr"):
        return
    if lb.ip_range.size < len(cfg.tenants):
        out.add(lb_path, f"holds {lb.ip_range.size} addresses; needs one per tenant ({len(cfg.tenants)})")
    mc_range = None if cfg.management_cluster.external else cfg.management_cluster.ip_range
    mc_valid = mc_range is not None and mc_range.start <= mc_range.end and mc_range.end in net.cidr
    if mc_range is not None and mc_valid and mc_range.start in net.cidr and lb.ip_range.overlaps(mc_range):
        out.add(lb_path, f"overlaps managementCluster.ipRange ({mc_range.start}-{mc_range.end})")
    _check_reserved_ip(out, "networks.management.gateway", net.gateway, [(lb_path, lb.ip_range)])
    endpoint = cfg.management_cluster.control_plane_endpoint
    if endpoint is not None and not cfg.management_cluster.external:
        _check_reserved_ip(out, "managementCluster.controlPlaneEndpoint", endpoint, [(lb_path, lb.ip_range)])


def _check_tenants(cfg: StackConfig, out: _Problems) -> None:
    names: dict[str, int] = {}
    for i, tenant in enumerate(cfg.tenants):
        path = f"tenants[{i}]"
        if tenant.name in names:
            out.add(f"{path}.name", f"duplicate tenant {tenant.name!r} (also tenants[{names[tenant.name]}])")
        names.setdefault(tenant.name, i)
        if tenant.name in RESERVED_NAMESPACES or tenant.name.startswith("kube-"):
            out.add(f"{path}.name", f"{tenant.name!r} is reserved for a platform namespace; choose another name")
        class_ok = _check_storage_class_ref(cfg, out, f"{path}.storageClass", tenant.storage_class)
        pools: dict[str, int] = {}
        machines = 0
        for j, pool in enumerate(tenant.worker_pools):
            pool_path = f"{path}.workerPools[{j}]"
            if pool.name in pools:
                out.add(f"{pool_path}.name", f"duplicate pool {pool.name!r} (also workerPools[{pools[pool.name]}])")
            pools.setdefault(pool.name, j)
            _check_template_ref(cfg, out, f"{pool_path}.template", pool.template)
            _check_node_refs(cfg, out, f"{pool_path}.allowedNodes", pool.allowed_nodes)
            if class_ok:
                sc_path = f"{path}.storageClass" if tenant.storage_class else f"{pool_path}.allowedNodes"
                _check_storage_on_nodes(
                    cfg, out, sc_path, tenant.storage_class, cfg.pool_nodes(pool), f"workerPools[{j}]"
                )
            machines += pool.count + 1  # CAPI rolls out with maxSurge 1 per MachineDeployment
        net = tenant.network
        net_path = f"{path}.network"
        _check_subnet_member(out, f"{net_path}.gateway", net.gateway, net.cidr, f"{net_path}.cidr")
        if _check_range(out, f"{net_path}.ipRange", net.ip_range, net.cidr, f"{net_path}.cidr"):
            _check_reserved_ip(out, f"{net_path}.gateway", net.gateway, [(f"{net_path}.ipRange", net.ip_range)])
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


def _check_cidr_overlaps(cfg: StackConfig, out: _Problems) -> None:
    cidrs: list[tuple[str, IPv4Network]] = []
    nets = cfg.networks
    for key, net in (("management", nets.management), ("data", nets.data), ("storage", nets.storage)):
        if net is not None:
            cidrs.append((f"networks.{key}.cidr", net.cidr))
    mc = cfg.management_cluster
    cidrs += [
        ("managementCluster.podCidr", mc.pod_cidr),
        ("managementCluster.serviceCidr", mc.service_cidr),
        ("managementCluster.joinCidr", mc.join_cidr),
    ]
    for i, tenant in enumerate(cfg.tenants):
        cidrs += [
            (f"tenants[{i}].podCidr", tenant.pod_cidr),
            (f"tenants[{i}].serviceCidr", tenant.service_cidr),
            (f"tenants[{i}].network.cidr", tenant.network.cidr),
        ]
    for b, (path_b, net_b) in enumerate(cidrs):
        for path_a, net_a in cidrs[:b]:
            if net_a.overlaps(net_b):
                out.add(
                    path_b,
                    f"{net_b} overlaps {path_a} ({net_a}); node networks, pod, service and join CIDRs "
                    "must all be disjoint (Cilium chaining needs cluster-unique pod IPs)",
                )
                break


def _check_vmid_ranges(cfg: StackConfig, out: _Problems) -> None:
    ranges: list[tuple[str, VmidRange]] = []
    if not cfg.management_cluster.external:
        ranges.append(("managementCluster.vmidRange", cfg.management_cluster.vmid_range))
    ranges.append(("clusterApi.vmidRange", cfg.cluster_api.vmid_range))
    ranges += [(f"tenants[{i}].vmidRange", t.vmid_range) for i, t in enumerate(cfg.tenants) if t.vmid_range]
    valid: list[tuple[str, VmidRange]] = []
    for path, rng in ranges:
        if rng.start > rng.end:
            out.add(path, f"start {rng.start} is after end {rng.end}")
            continue
        clash = next(((p, r) for p, r in valid if r.overlaps(rng)), None)
        if clash is not None:
            out.add(path, f"{rng.start}-{rng.end} overlaps {clash[0]} ({clash[1].start}-{clash[1].end})")
        if rng.contains(CSI_CONTROLLER_VMID):
            out.add(path, f"contains VMID {CSI_CONTROLLER_VMID}, reserved for the Proxmox CSI controller")
        valid.append((path, rng))
    for name, tpl in cfg.templates.items():
        if tpl.vmid is None:
            continue
        for path, rng in valid:
            if rng.contains(tpl.vmid):
                out.add(f"templates.{name}.vmid", f"VMID {tpl.vmid} lies inside {path} ({rng.start}-{rng.end})")
    if cfg.management_cluster.external:
        return
    shared = sum(sum(p.count + 1 for p in t.worker_pools) for t in cfg.tenants if t.vmid_range is None)
    capi = cfg.cluster_api.vmid_range
    if capi.start <= capi.end and capi.size < shared:
        out.add("clusterApi.vmidRange", f"holds {capi.size} VMIDs; tenants sharing it need at least {shared}")


def _check_operations(cfg: StackConfig, out: _Problems) -> None:
    backups = cfg.operations.backups
    if backups is None:
        return
    missing = [node.name for node in cfg.nodes if backups.storage not in node.storages]
    if missing:
        out.add(
            "operations.backups.storage",
            f"storage {backups.storage!r} is not on {_join(missing)}; backup jobs need it on every node",
        )
    r = backups.retention
    if not (r.keep_last or r.keep_daily or r.keep_weekly or r.keep_monthly):
        out.add("operations.backups.retention", "keeps nothing; set at least one keep* value above 0")


def _check_versions(cfg: StackConfig, out: _Problems) -> None:
    v = cfg.versions
    matrix = COMPATIBILITY_MATRIX
    capi = matrix.cluster_api.get(_minor_line(v.capi_core))
    if capi is None:
        out.add(
            "versions.capiCore",
            f"{v.capi_core} is not in the compatibility matrix; supported: "
            f"{_join(line + '.x' for line in matrix.cluster_api)}",
        )
    else:
        capi_line = _minor_line(v.capi_core)
        for key, version, lines in (
            ("capmox", v.capmox, capi.capmox),
            ("ipamInCluster", v.ipam_in_cluster, capi.ipam_in_cluster),
            ("kamajiControlPlaneProvider", v.kamaji_control_plane_provider, capi.kamaji_provider),
        ):
            if not any(line_matches(version, line) for line in lines):
                out.add(
                    f"versions.{key}",
                    f"{version} does not pair with Cluster API {capi_line}; allowed: "
                    f"{_join(line + '.x' for line in lines)}",
                )
    kamaji = matrix.kamaji.get(v.kamaji_image_tag.split(".")[0])
    if kamaji is None:
        out.add(
            "versions.kamajiImageTag",
            f"{v.kamaji_image_tag} is not in the compatibility matrix; supported: "
            f"{_join(year + '.x.y-edge' for year in matrix.kamaji)}",
        )
    _check_kubernetes_versions(cfg, out, capi, kamaji)
    cilium_lines = matrix.kube_ovn_cilium.get(_minor_line(v.kube_ovn))
    if cilium_lines is None:
        out.add(
            "versions.kubeOvn",
            f"{v.kube_ovn} is not in the compatibility matrix; supported: "
            f"{_join(line + '.x' for line in matrix.kube_ovn_cilium)}",
        )
    elif not any(line_matches(v.cilium, line) for line in cilium_lines):
        out.add(
            "versions.cilium",
            f"{v.cilium} is not chained with Kube-OVN {_minor_line(v.kube_ovn)}; allowed: "
            f"{_join(line + '.x' for line in cilium_lines)}",
        )
    values = cfg.versions.model_dump(by_alias=True)
    for key, lines in matrix.charts.items():
        version = values[key]
        if not any(line_matches(version, line) for line in lines):
            shown = _join(line if "+" in line else line + ".x" for line in lines)
            out.add(f"versions.{key}", f"{version} is not in the compatibility matrix; supported: {shown}")


def _check_kubernetes_versions(
    cfg: StackConfig, out: _Problems, capi: ClusterApiLine | None, kamaji: KamajiLine | None
) -> None:
    v = cfg.versions
    if not cfg.management_cluster.external:
        low, high = "v1.0", None
        needs: list[str] = []
        if capi is not None:
            low, high = capi.management_kubernetes
            needs.append(f"Cluster API {_minor_line(v.capi_core)} supports {low}-{high}")
        if kamaji is not None:
            if _minor(kamaji.management_kubernetes_min) > _minor(low):
                low = kamaji.management_kubernetes_min
            needs.append(f"Kamaji {v.kamaji_image_tag} needs {kamaji.management_kubernetes_min} or newer")
        if needs and not _in_range(v.kubernetes, low, high):
            out.add(
                "versions.kubernetes",
                f"{v.kubernetes} cannot run the management cluster ({'; '.join(needs)})",
            )
    ranges: list[tuple[str, tuple[str, str]]] = []
    if capi is not None:
        ranges.append((f"Cluster API {_minor_line(v.capi_core)} workload clusters", capi.workload_kubernetes))
    if kamaji is not None:
        ranges.append((f"Kamaji {v.kamaji_image_tag} tenants", kamaji.tenant_kubernetes))
    defaulted: list[str] = []
    for i, tenant in enumerate(cfg.tenants):
        version = cfg.tenant_kubernetes_version(tenant)
        bad = [f"{who}: {lo}-{hi}" for who, (lo, hi) in ranges if not _in_range(version, lo, hi)]
        if not bad:
            continue
        if tenant.kubernetes_version is None:
            defaulted.append(tenant.name)
            continue
        out.add(f"tenants[{i}].kubernetesVersion", f"{version} is not supported ({'; '.join(bad)})")
    if defaulted:
        bad = [f"{who}: {lo}-{hi}" for who, (lo, hi) in ranges if not _in_range(v.kubernetes, lo, hi)]
        out.add(
            "versions.kubernetes",
            f"{v.kubernetes} is the version of tenants {_join(defaulted)} and is not supported for "
            f"tenants ({'; '.join(bad)}); change it or set tenants[].kubernetesVersion",
        )
