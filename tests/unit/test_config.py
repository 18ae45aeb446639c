"""Stack configuration: shape validation, preflight, error text, JSON schema and the Pulumi glue."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pulumi
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config import (
    COMPATIBILITY_MATRIX,
    DEFAULT_VERSIONS,
    ConfigProblem,
    StackConfig,
    StackConfigError,
    VersionsConfig,
    format_problems,
    load_stack_config,
    preflight,
    read_stack_config,
    read_stack_secrets,
    render_stack_config_schema,
    required_secret_keys,
    stack_config_json_schema,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema" / "stack-config.schema.json"

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXJrZXlmb3J0ZXN0aW5nb25seQ platform@example"

# A realistic stack: three nodes with local, Ceph and PBS storage, a built and a tagged template,
# a management cluster on VMs, two tenants on their own VLANs, backups.
GOOD: dict[str, Any] = {
    "proxmox": {
        "endpoint": "https://pve1.example.com:8006",
        "tokenId": "pulumi@pve!platform",
        "clusterName": "pve-lab",
    },
    "nodes": [
        {"name": "pve1", "storages": ["local-lvm", "ceph-vm", "pbs"]},
        {"name": "pve2", "storages": ["local-lvm", "ceph-vm", "pbs"]},
        {"name": "pve3", "storages": ["local-lvm", "ceph-vm", "pbs"], "weight": 2},
    ],
    "templates": {
        "ubuntu-2404-kube": {
            "cloudImageUrl": "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
            "vmid": 9000,
            "node": "pve1",
            "storage": "ceph-vm",
        },
        "ubuntu-2404-tagged": {"tags": ["ubuntu-2404", "k8s-v1.34"]},
    },
    "networks": {
        "management": {
            "bridge": "vmbr0",
            "cidr": "10.10.10.0/24",
            "gateway": "10.10.10.1",
            "dnsServers": ["10.10.10.1"],
        },
        "storage": {"bridge": "vmbr1", "vlan": 30, "cidr": "10.10.30.0/24", "mtu": 9000},
    },
    "managementCluster": {
        "controlPlanes": {"count": 3, "cores": 4, "memoryMiB": 8192, "diskGiB": 60},
        "workers": {"count": 3},
        "ipRange": {"start": "10.10.10.20", "end": "10.10.10.39"},
        "controlPlaneEndpoint": "10.10.10.10",
        "sshPublicKeys": [SSH_KEY],
    },
    "storage": [
        {"storage": "ceph-vm", "storageClass": "ceph", "ssd": True, "default": True, "diskIOPS": 4000},
        {"storage": "local-lvm", "storageClass": "local", "reclaimPolicy": "Retain"},
    ],
    "kamaji": {"loadBalancer": {"ipRange": {"start": "10.10.10.200", "end": "10.10.10.220"}}},
    "tenants": [
        {
            "name": "team-a",
            "workerPools": [{"name": "general", "count": 3, "cores": 4, "memoryMiB": 8192}],
            "podCidr": "10.200.0.0/16",
            "serviceCidr": "10.201.0.0/16",
            "network": {
                "bridge": "vmbr0",
                "vlan": 110,
                "cidr": "10.110.0.0/24",
                "gateway": "10.110.0.1",
                "ipRange": {"start": "10.110.0.100", "end": "10.110.0.150"},
                "dnsServers": ["10.110.0.1"],
            },
            "quota": {"cpu": 8, "memoryGiB": 32, "storageGiB": 200, "pods": 50},
        },
        {
            "name": "team-b",
            "kubernetesVersion": "v1.33.5",
            "controlPlaneReplicas": 3,
            "workerPools": [
                {"name": "small", "count": 2},
                {"name": "pinned", "count": 1, "template": "ubuntu-2404-tagged", "allowedNodes": ["pve2"]},
            ],
            "podCidr": "10.210.0.0/16",
            "serviceCidr": "10.211.0.0/16",
            "network": {
                "bridge": "vmbr0",
                "vlan": 120,
                "cidr": "10.120.0.0/24",
                "gateway": "10.120.0.1",
                "ipRange": {"start": "10.120.0.100", "end": "10.120.0.150"},
                "dnsServers": ["10.120.0.1"],
            },
            "storageClass": "local",
            "vmidRange": {"start": 300000, "end": 300099},
        },
    ],
    "operations": {"backups": {"storage": "pbs", "schedule": "sun 01:30"}},
}

DELETE = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def apply(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE, remove) the value at a YAML key path like ``tenants[1].network.vlan``."""
    parts: list[str | int] = [name if name else int(index) for name, index in _SEGMENT.findall(path)]
    node: Any = raw
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value


def problems_of(raw: Any) -> list[ConfigProblem]:
    try:
        load_stack_config(raw)
    except StackConfigError as exc:
        return list(exc.problems)
    return []


def test_good_config_passes_and_resolves_defaults() -> None:
    cfg = load_stack_config(GOOD)
    assert preflight(cfg) == []
    assert cfg.proxmox.endpoint == "https://pve1.example.com:8006"
    assert cfg.proxmox.api_url == "https://pve1.example.com:8006/api2/json"
    assert cfg.proxmox.verify_tls is True
    assert cfg.node_names() == ("pve1", "pve2", "pve3")
    assert [t.name for t in cfg.tenants] == ["team-a", "team-b"]
    assert cfg.tenant_kubernetes_version(cfg.tenants[0]) == DEFAULT_VERSIONS["kubernetes"]
    assert cfg.tenant_kubernetes_version(cfg.tenants[1]) == "v1.33.5"
    assert cfg.tenants[0].pod_cidr == IPv4Network("10.200.0.0/16")
    assert cfg.management_cluster.control_plane_endpoint == IPv4Address("10.10.10.10")
    assert cfg.management_cluster.ip_range is not None
    assert cfg.management_cluster.ip_range.as_capmox() == "10.10.10.20-10.10.10.39"
    assert cfg.resolve_template(cfg.tenants[0].worker_pools[0].template) == "ubuntu-2404-kube"
    assert cfg.pool_nodes(cfg.tenants[1].worker_pools[1]) == ("pve2",)
    assert cfg.pool_nodes(cfg.tenants[1].worker_pools[0]) == ("pve1", "pve2", "pve3")
    default_class = cfg.default_storage_class()
    assert default_class is not None and default_class.storage_class == "ceph"
    assert cfg.storage[0].disk_iops == 4000
    assert cfg.versions.capmox == DEFAULT_VERSIONS["capmox"]
    assert cfg.local_render is None
    assert required_secret_keys(cfg) == ("proxmoxTokenSecret", "sshPrivateKey")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://PVE1.Example.com:8006/", "https://pve1.example.com:8006"),
        ("https://pve1.example.com", "https://pve1.example.com"),
        (" https://10.0.0.5:8006 ", "https://10.0.0.5:8006"),
    ],
)
def test_endpoint_is_normalised_to_the_base_url(given: str, stored: str) -> None:
    raw = good()
    apply(raw, "proxmox.endpoint", given)
    cfg = load_stack_config(raw)
    assert cfg.proxmox.endpoint == stored
    assert cfg.proxmox.api_url == stored + "/api2/json"


def test_models_are_frozen_and_accept_python_names() -> None:
    cfg = load_stack_config(GOOD)
    with pytest.raises(ValidationError):
        cfg.proxmox.verify_tls = False
    by_name = StackConfig.model_validate(cfg.model_dump())
    assert by_name == cfg
    assert StackConfig.model_validate(cfg.model_dump(by_alias=True, mode="json")) == cfg


def test_versions_defaults_come_from_the_constant() -> None:
    dumped = VersionsConfig().model_dump(by_alias=True)
    assert dumped == dict(DEFAULT_VERSIONS)


def test_default_versions_are_inside_the_matrix() -> None:
    assert DEFAULT_VERSIONS["capiCore"].startswith(tuple(COMPATIBILITY_MATRIX.cluster_api))
    raw = good()
    raw["versions"] = dict(DEFAULT_VERSIONS)
    assert problems_of(raw) == []


# --------------------------------------------------------------------------------------------------
# One bad configuration per row: the changes, the exact key path(s) reported, a message fragment.
# --------------------------------------------------------------------------------------------------

Change = tuple[str, Any]
CASES: list[tuple[str, list[Change], tuple[str, ...], str]] = [
    # --- shape (pydantic), converted to YAML key paths -----------------------------------------
    ("http-endpoint", [("proxmox.endpoint", "http://pve1:8006")], ("proxmox.endpoint",), "must use https"),
    (
        "endpoint-with-api-path",
        [("proxmox.endpoint", "https://pve1:8006/api2/json")],
        ("proxmox.endpoint",),
        "without /api2/json",
    ),
    ("token-id-pattern", [("proxmox.tokenId", "capmox")], ("proxmox.tokenId",), "user@realm!tokenname"),
    ("timeout-too-small", [("proxmox.httpTimeoutSeconds", 10)], ("proxmox.httpTimeoutSeconds",), "at least 30"),
    ("verify-tls-not-bool", [("proxmox.verifyTls", "maybe")], ("proxmox.verifyTls",), "true or false"),
    ("missing-cluster-name", [("proxmox.clusterName", DELETE)], ("proxmox.clusterName",), "required key"),
    (
        "even-control-planes",
        [("managementCluster.controlPlanes.count", 4)],
        ("managementCluster.controlPlanes.count",),
        "1, 3 or 5",
    ),
    (
        "typo-nested-key",
        [("managementCluster.podCidrr", "10.244.0.0/16")],
        ("managementCluster.podCidrr",),
        "did you mean 'podCidr'",
    ),
    ("typo-top-level-key", [("tenant", [])], ("tenant",), "did you mean 'tenants'"),
    ("tenant-name-pattern", [("tenants[0].name", "Team_A")], ("tenants[0].name",), "DNS-1123 label"),
    ("tenant-name-length", [("tenants[0].name", "t" * 31)], ("tenants[0].name",), "at most 30 characters"),
    ("cidr-host-bits", [("tenants[0].podCidr", "10.200.0.1/16")], ("tenants[0].podCidr",), "host bits set"),
    ("cidr-not-cidr", [("tenants[0].serviceCidr", "10.201.0.0")], ("tenants[0].serviceCidr",), "CIDR notation"),
    ("vlan-out-of-range", [("networks.management.vlan", 4095)], ("networks.management.vlan",), "at most 4094"),
    (
        "memory-not-multiple-of-8",
        [("tenants[0].workerPools[0].memoryMiB", 4100)],
        ("tenants[0].workerPools[0].memoryMiB",),
        "multiple of 8",
    ),
    ("csi-cache-mode", [("storage[0].cache", "unsafe")], ("storage[0].cache",), "must be one of"),
    ("template-name", [("templates.Bad_Name", {"tags": ["x"]})], ("templates.Bad_Name",), "invalid name"),
    ("no-worker-pools", [("tenants[0].workerPools", [])], ("tenants[0].workerPools",), "must not be empty"),
    ("bad-ip", [("networks.management.gateway", "10.10.10.300")], ("networks.management.gateway",), "IPv4"),
    ("version-without-v", [("versions.kubernetes", "1.34.8")], ("versions.kubernetes",), "leading 'v'"),
    (
        "ssh-key-format",
        [("managementCluster.sshPublicKeys", ["not a key"])],
        ("managementCluster.sshPublicKeys[0]",),
        "OpenSSH public key",
    ),
    (
        "vmid-below-100",
        [("managementCluster.vmidRange", {"start": 50, "end": 100999})],
        ("managementCluster.vmidRange.start",),
        "at least 100",
    ),
    ("nodes-empty", [("nodes", [])], ("nodes",), "must not be empty"),
    (
        "one-dns-server-minimum",
        [("networks.management.dnsServers", [])],
        ("networks.management.dnsServers",),
        "must not be empty",
    ),
    # --- preflight: CIDR overlaps ---------------------------------------------------------------
    (
        "tenant-pod-cidrs-overlap",
        [("tenants[1].podCidr", "10.200.128.0/17")],
        ("tenants[1].podCidr",),
        "overlaps tenants[0].podCidr (10.200.0.0/16)",
    ),
    (
        "tenant-service-overlaps-management-pods",
        [("tenants[0].serviceCidr", "10.244.8.0/24")],
        ("tenants[0].serviceCidr",),
        "overlaps managementCluster.podCidr",
    ),
    (
        "join-cidr-overlaps-node-network",
        [("managementCluster.joinCidr", "10.10.0.0/16")],
        ("managementCluster.joinCidr",),
        "overlaps networks.management.cidr",
    ),
    (
        "storage-network-overlaps-management",
        [("networks.storage.cidr", "10.10.0.0/16")],
        ("networks.storage.cidr",),
        "overlaps networks.management.cidr",
    ),
    # --- preflight: IP ranges, gateways, endpoints ----------------------------------------------
    (
        "ip-range-outside-subnet",
        [("managementCluster.ipRange.end", "10.10.11.5")],
        ("managementCluster.ipRange.end",),
        "outside networks.management.cidr",
    ),
    (
        "ip-range-reversed",
        [("managementCluster.ipRange", {"start": "10.10.10.39", "end": "10.10.10.20"})],
        ("managementCluster.ipRange",),
        "start 10.10.10.39 is after end 10.10.10.20",
    ),
    (
        "gateway-inside-range",
        [("tenants[0].network.gateway", "10.110.0.120")],
        ("tenants[0].network.gateway",),
        "inside tenants[0].network.ipRange",
    ),
    (
        "gateway-outside-subnet",
        [("tenants[0].network.gateway", "10.111.0.1")],
        ("tenants[0].network.gateway",),
        "outside tenants[0].network.cidr",
    ),
    (
        "gateway-is-network-address",
        [("tenants[0].network.gateway", "10.110.0.0")],
        ("tenants[0].network.gateway",),
        "network address",
    ),
    (
        "vip-inside-vm-range",
        [("managementCluster.controlPlaneEndpoint", "10.10.10.25")],
        ("managementCluster.controlPlaneEndpoint",),
        "inside managementCluster.ipRange",
    ),
    (
        "vip-outside-subnet",
        [("managementCluster.controlPlaneEndpoint", "10.10.99.10")],
        ("managementCluster.controlPlaneEndpoint",),
        "outside networks.management.cidr",
    ),
    (
        "management-range-too-small",
        [("managementCluster.ipRange.end", "10.10.10.23")],
        ("managementCluster.ipRange",),
        "needs at least 6",
    ),
    (
        "tenant-range-too-small",
        [("tenants[0].network.ipRange.end", "10.110.0.102")],
        ("tenants[0].network.ipRange",),
        "needs at least 4",
    ),
    # --- preflight: management cluster modes ----------------------------------------------------
    (
        "ip-range-required",
        [("managementCluster.ipRange", DELETE)],
        ("managementCluster.ipRange",),
        "required unless external is true",
    ),
    (
        "vm-keys-with-external",
        [("managementCluster", {"external": True, "ipRange": {"start": "10.10.10.20", "end": "10.10.10.39"}})],
        ("managementCluster.ipRange",),
        "only used when the program builds the management cluster",
    ),
    (
        "ssh-keys-required",
        [("managementCluster.sshPublicKeys", [])],
        ("managementCluster.sshPublicKeys",),
        "at least one key",
    ),
    # --- preflight: references to nodes, storages, templates, storage classes -------------------
    (
        "unknown-pool-node",
        [("tenants[1].workerPools[1].allowedNodes", ["pve9"])],
        ("tenants[1].workerPools[1].allowedNodes[0]",),
        "unknown node 'pve9'",
    ),
    (
        "unknown-cluster-api-node",
        [("clusterApi", {"allowedNodes": ["pve1", "pve4"]})],
        ("clusterApi.allowedNodes[1]",),
        "declared nodes: pve1, pve2, pve3",
    ),
    (
        "unknown-template-node",
        [("templates.ubuntu-2404-kube.node", "pve7")],
        ("templates.ubuntu-2404-kube.node",),
        "unknown node 'pve7'",
    ),
    (
        "template-storage-not-on-node",
        [
            ("nodes[0].storages", ["local-lvm", "ceph-vm", "pbs", "nfs-iso"]),
            ("templates.ubuntu-2404-kube.node", "pve2"),
            ("templates.ubuntu-2404-kube.storage", "nfs-iso"),
        ],
        ("templates.ubuntu-2404-kube.storage",),
        "not on node pve2",
    ),
    (
        "storage-on-no-node",
        [("storage", [*GOOD["storage"], {"storage": "zfs-fast", "storageClass": "zfs"}])],
        ("storage[2].storage",),
        "not on any node",
    ),
    (
        "unknown-storage-class",
        [("tenants[0].storageClass", "gold")],
        ("tenants[0].storageClass",),
        "unknown StorageClass 'gold'",
    ),
    (
        "storage-missing-where-pool-runs",
        [("nodes[1].storages", ["ceph-vm", "pbs"])],
        ("tenants[1].storageClass", "tenants[1].storageClass"),
        "uses storage 'local-lvm', which is not on pve2",
    ),
    ("two-default-classes", [("storage[1].default", True)], ("storage[1].default",), "only one StorageClass"),
    ("duplicate-class-name", [("storage[0].storageClass", "local")], ("storage[1].storageClass",), "duplicate"),
    (
        "vm-template-default-undeclared",
        [("versions.vmTemplate", "debian-13")],
        (
            "managementCluster.template",
            "tenants[0].workerPools[0].template",
            "tenants[1].workerPools[0].template",
        ),
        "versions.vmTemplate 'debian-13', which is not declared",
    ),
    (
        "unknown-pool-template",
        [("tenants[1].workerPools[1].template", "rocky")],
        ("tenants[1].workerPools[1].template",),
        "unknown template 'rocky'",
    ),
    ("template-without-source", [("templates.empty", {})], ("templates.empty",), "needs exactly one source"),
    (
        "template-two-sources",
        [("templates.ubuntu-2404-tagged.vmid", 9001)],
        ("templates.ubuntu-2404-tagged.tags",),
        "cannot be combined",
    ),
    (
        "cloud-image-without-storage",
        [("templates.ubuntu-2404-kube.storage", DELETE)],
        ("templates.ubuntu-2404-kube.storage",),
        "required with cloudImageUrl",
    ),
    # --- preflight: names ---------------------------------------------------------------------------
    ("duplicate-tenant", [("tenants[1].name", "team-a")], ("tenants[1].name",), "duplicate tenant 'team-a'"),
    ("reserved-tenant", [("tenants[0].name", "kamaji-system")], ("tenants[0].name",), "reserved"),
    (
        "duplicate-pool",
        [("tenants[1].workerPools[1].name", "small")],
        ("tenants[1].workerPools[1].name",),
        "duplicate pool 'small'",
    ),
    ("duplicate-node", [("nodes[2].name", "pve2")], ("nodes[2].name",), "duplicate node 'pve2'"),
    # --- preflight: network separation --------------------------------------------------------------
    (
        "node-networks-share-segment",
        [("networks.data", {"bridge": "vmbr0", "cidr": "10.10.20.0/24"})],
        ("networks.data.vlan",),
        "already used by networks.management",
    ),
    (
        "tenants-share-vlan",
        [("tenants[1].network.vlan", 110)],
        ("tenants[1].network.vlan",),
        "already used by tenants[0].network",
    ),
    # --- preflight: VMID ranges ---------------------------------------------------------------------
    (
        "vmid-ranges-overlap",
        [("tenants[1].vmidRange", {"start": 200500, "end": 200600})],
        ("tenants[1].vmidRange",),
        "overlaps clusterApi.vmidRange (200000-299999)",
    ),
    (
        "vmid-range-holds-csi-vmid",
        [("clusterApi", {"vmidRange": {"start": 9500, "end": 20000}})],
        ("clusterApi.vmidRange",),
        "reserved for the Proxmox CSI controller",
    ),
    (
        "vmid-range-reversed",
        [("managementCluster.vmidRange", {"start": 100500, "end": 100400})],
        ("managementCluster.vmidRange",),
        "start 100500 is after end 100400",
    ),
    (
        "template-vmid-in-range",
        [("templates.ubuntu-2404-kube.vmid", 100005)],
        ("templates.ubuntu-2404-kube.vmid",),
        "inside managementCluster.vmidRange",
    ),
    (
        "tenant-vmid-range-too-small",
        [("tenants[1].vmidRange", {"start": 300000, "end": 300002})],
        ("tenants[1].vmidRange",),
        "needs at least 5",
    ),
    # --- preflight: Kamaji ----------------------------------------------------------------------------
    ("lb-required", [("kamaji", {})], ("kamaji.loadBalancer",), "required when serviceType is LoadBalancer"),
    (
        "lb-overlaps-vm-range",
        [("kamaji.loadBalancer.ipRange", {"start": "10.10.10.30", "end": "10.10.10.50"})],
        ("kamaji.loadBalancer.ipRange",),
        "overlaps managementCluster.ipRange",
    ),
    (
        "lb-too-small",
        [("kamaji.loadBalancer.ipRange", {"start": "10.10.10.200", "end": "10.10.10.200"})],
        ("kamaji.loadBalancer.ipRange",),
        "needs one per tenant (2)",
    ),
    (
        "lb-pool-with-node-port",
        [("kamaji.serviceType", "NodePort")],
        ("kamaji.loadBalancer",),
        "only used with serviceType LoadBalancer",
    ),
    ("etcd-even-replicas", [("kamaji.datastore", {"replicas": 2})], ("kamaji.datastore.replicas",), "odd"),
    (
        "postgres-without-endpoints",
        [("kamaji.datastore", {"driver": "postgresql"})],
        ("kamaji.datastore.endpoints",),
        "required with driver postgresql",
    ),
    (
        "etcd-without-storage-class",
        [("storage[0].default", False)],
        ("kamaji.datastore.storageClass",),
        "kamaji-etcd needs a StorageClass",
    ),
    # --- preflight: operations and Proxmox ------------------------------------------------------------
    (
        "backup-storage-not-everywhere",
        [("nodes[2].storages", ["local-lvm", "ceph-vm"])],
        ("operations.backups.storage",),
        "not on pve3",
    ),
    (
        "backup-keeps-nothing",
        [("operations.backups.retention", {"keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0})],
        ("operations.backups.retention",),
        "keeps nothing",
    ),
    (
        "ca-bundle-without-verification",
        [("proxmox.verifyTls", False), ("proxmox.caBundle", "/etc/ssl/pve-ca.pem")],
        ("proxmox.caBundle",),
        "only used when verifyTls is true",
    ),
    # --- preflight: compatibility matrix --------------------------------------------------------------
    ("capmox-mismatch", [("versions.capmox", "v0.8.1")], ("versions.capmox",), "does not pair with Cluster API v1.12"),
    (
        "management-kubernetes-too-old",
        [("versions.kubernetes", "v1.32.4")],
        ("versions.kubernetes",),
        "Kamaji 26.8.2-edge needs v1.33 or newer",
    ),
    (
        "tenant-kubernetes-too-old",
        [("tenants[1].kubernetesVersion", "v1.28.3")],
        ("tenants[1].kubernetesVersion",),
        "v1.28.3 is not supported",
    ),
    ("cilium-not-chained", [("versions.cilium", "1.17.3")], ("versions.cilium",), "not chained with Kube-OVN v1.16"),
    ("capi-unknown", [("versions.capiCore", "v1.13.0")], ("versions.capiCore",), "supported: v1.12.x, v1.11.x"),
    (
        "kamaji-unknown",
        [("versions.kamajiImageTag", "25.12.5-edge")],
        ("versions.kamajiImageTag",),
        "not in the compatibility matrix",
    ),
    ("cert-manager-old", [("versions.certManager", "v1.14.0")], ("versions.certManager",), "v1.18.x"),
]


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    raw = good()
    for path, value in changes:
        apply(raw, path, value)
    problems = problems_of(raw)
    assert [p.path for p in problems] == list(paths), format_problems(problems)
    assert all(fragment in p.message for p in problems), format_problems(problems)


def test_table_has_enough_distinct_cases() -> None:
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len({json.dumps(c[1], default=str) for c in CASES}) == len(CASES)


def test_several_preflight_problems_are_reported_at_once() -> None:
    raw = good()
    apply(raw, "tenants[1].podCidr", "10.200.5.0/24")
    apply(raw, "tenants[1].name", "team-a")
    apply(raw, "versions.capmox", "v0.8.1")
    apply(raw, "storage[1].default", True)
    apply(raw, "operations.backups.storage", "pbs2")
    with pytest.raises(StackConfigError) as info:
        load_stack_config(raw)
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == sorted(
        [
            "tenants[1].podCidr",
            "tenants[1].name",
            "versions.capmox",
            "storage[1].default",
            "operations.backups.storage",
        ]
    )
    message = str(info.value)
    assert message.startswith("Stack configuration is invalid (5 problems):")
    for problem in info.value.problems:
        assert f"  - {problem.path}: {problem.message}" in message


def test_several_shape_problems_are_reported_at_once_without_a_traceback() -> None:
    raw = good()
    apply(raw, "proxmox.endpoint", "http://pve1:8006")
    apply(raw, "managementCluster.controlPlanes.count", 2)
    apply(raw, "tenants[0].network.ipRange.start", "nope")
    apply(raw, "kamaji.datastor", {})
    with pytest.raises(StackConfigError) as info:
        load_stack_config(raw)
    assert [p.path for p in info.value.problems] == [
        "proxmox.endpoint",
        "managementCluster.controlPlanes.count",
        "kamaji.datastor",
        "tenants[0].network.ipRange.start",
    ]
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "pydantic" not in str(info.value) and "Traceback" not in str(info.value)


def test_root_must_be_a_mapping() -> None:
    assert problems_of(["not", "a", "mapping"]) == [
        ConfigProblem("<root>", "must be a mapping of config keys (got list)")
    ]


def test_secret_like_values_are_not_echoed() -> None:
    raw = good()
    apply(raw, "proxmox.tokenId", "0b6f2a4e-secret-uuid-value")
    (problem,) = problems_of(raw)
    assert problem.path == "proxmox.tokenId"
    assert "0b6f2a4e" not in problem.message and "proxmoxTokenSecret" in problem.message


def test_format_problems_singular() -> None:
    text = format_problems([ConfigProblem("a.b", "is wrong")])
    assert text == "Stack configuration is invalid (1 problem):\n  - a.b: is wrong"


def test_external_management_cluster_needs_only_cidrs() -> None:
    raw = good()
    raw["managementCluster"] = {"external": True}
    cfg = load_stack_config(raw)
    assert cfg.management_cluster.external
    assert required_secret_keys(cfg) == ("proxmoxTokenSecret", "managementKubeconfig")


def test_encrypted_storage_needs_the_passphrase_secret() -> None:
    raw = good()
    apply(raw, "storage[1].encrypted", True)
    assert "csiEncryptionPassphrase" in required_secret_keys(load_stack_config(raw))


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

_FREE_SPACE = IPv4Network("172.16.0.0/12")  # not used by GOOD


@st.composite
def networks_in(draw: st.DrawFn, space: IPv4Network = _FREE_SPACE) -> IPv4Network:
    prefix = draw(st.integers(min_value=space.prefixlen, max_value=28))
    count = 2 ** (prefix - space.prefixlen)
    index = draw(st.integers(min_value=0, max_value=count - 1))
    size = 2 ** (32 - prefix)
    return IPv4Network((int(space.network_address) + index * size, prefix))


@st.composite
def overlapping_pairs(draw: st.DrawFn) -> tuple[IPv4Network, IPv4Network]:
    first = draw(networks_in())
    inner = draw(networks_in(first)) if first.prefixlen < 28 else first
    return (first, inner) if draw(st.booleans()) else (inner, first)


_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPS
@given(overlapping_pairs())
def test_any_two_overlapping_tenant_cidrs_are_rejected(pair: tuple[IPv4Network, IPv4Network]) -> None:
    first, second = pair
    raw = good()
    apply(raw, "tenants[0].podCidr", str(first))
    apply(raw, "tenants[1].podCidr", str(second))
    problems = problems_of(raw)
    assert [p.path for p in problems] == ["tenants[1].podCidr"]
    assert f"overlaps tenants[0].podCidr ({first})" in problems[0].message


@_PROPS
@given(networks_in(), networks_in())
def test_disjoint_tenant_cidrs_are_accepted(first: IPv4Network, second: IPv4Network) -> None:
    assume(not first.overlaps(second))
    raw = good()
    apply(raw, "tenants[0].serviceCidr", str(first))
    apply(raw, "tenants[1].serviceCidr", str(second))
    assert problems_of(raw) == []


@st.composite
def vmid_range_pairs(draw: st.DrawFn) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two VMID ranges (start, end), often touching or one apart at a boundary."""
    start_a = draw(st.integers(min_value=400_000, max_value=401_000))
    end_a = start_a + draw(st.integers(min_value=10, max_value=500))
    length_b = draw(st.integers(min_value=10, max_value=500))
    start_b = draw(
        st.one_of(
            st.integers(min_value=400_000, max_value=401_000),
            st.integers(min_value=-2, max_value=2).map(lambda gap: end_a + gap),
            st.integers(min_value=-2, max_value=2).map(lambda gap: start_a - length_b + gap),
        )
    )
    return (start_a, end_a), (start_b, start_b + length_b)


@_PROPS
@given(vmid_range_pairs())
def test_vmid_ranges_clash_exactly_when_they_intersect(pair: tuple[tuple[int, int], tuple[int, int]]) -> None:
    (start_a, end_a), (start_b, end_b) = pair
    raw = good()
    apply(raw, "tenants[0].vmidRange", {"start": start_a, "end": end_a})
    apply(raw, "tenants[1].vmidRange", {"start": start_b, "end": end_b})
    intersect = start_a <= end_b and start_b <= end_a
    problems = problems_of(raw)
    if intersect:
        assert [p.path for p in problems] == ["tenants[1].vmidRange"]
        assert "overlaps tenants[0].vmidRange" in problems[0].message
    else:
        assert problems == []


_EDGE_ADDRESSES = [
    "10.10.9.255",
    "10.10.10.0",
    "10.10.10.1",
    "10.10.10.2",
    "10.10.10.19",
    "10.10.10.20",
    "10.10.10.39",
    "10.10.10.40",
    "10.10.10.199",
    "10.10.10.200",
    "10.10.10.220",
    "10.10.10.221",
    "10.10.10.254",
    "10.10.10.255",
    "10.10.11.0",
]


@_PROPS
@given(
    st.one_of(
        st.sampled_from(_EDGE_ADDRESSES).map(IPv4Address),
        st.integers(min_value=int(IPv4Address("10.10.8.0")), max_value=int(IPv4Address("10.10.12.255"))).map(
            IPv4Address
        ),
    )
)
def test_control_plane_endpoint_is_accepted_only_where_free(ip: IPv4Address) -> None:
    raw = good()
    apply(raw, "managementCluster.controlPlaneEndpoint", str(ip))
    net = IPv4Network("10.10.10.0/24")
    last = int(ip) & 0xFF
    free = ip in net and last not in (0, 255, 1) and not 20 <= last <= 39 and not 200 <= last <= 220
    problems = problems_of(raw)
    assert (problems == []) == free, format_problems(problems)
    assert all(p.path == "managementCluster.controlPlaneEndpoint" for p in problems)


_MAPPING_PATHS = [
    "",
    "proxmox",
    "nodes[1]",
    "templates.ubuntu-2404-kube",
    "networks.management",
    "managementCluster",
    "managementCluster.controlPlanes",
    "managementCluster.ipRange",
    "storage[0]",
    "kamaji.loadBalancer.ipRange",
    "tenants[1]",
    "tenants[1].workerPools[1]",
    "tenants[0].network",
    "tenants[0].quota",
    "operations.backups",
]


@_PROPS
@given(st.sampled_from(_MAPPING_PATHS), st.from_regex(r"zz[a-z]{1,8}", fullmatch=True))
def test_an_unknown_key_anywhere_is_reported_at_its_path(parent: str, key: str) -> None:
    raw = good()
    target = f"{parent}.{key}" if parent else key
    apply(raw, target, 1)
    problems = problems_of(raw)
    assert [p.path for p in problems] == [target]
    assert problems[0].message.startswith("unknown key")
    assert "allowed keys here:" in problems[0].message


# --------------------------------------------------------------------------------------------------
# JSON schema
# --------------------------------------------------------------------------------------------------


def test_stored_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_stack_config_schema(), (
        "schema/stack-config.schema.json is stale: run python scripts/export_config_schema.py"
    )


def test_export_script_check_mode_and_output(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "export_config_schema.py"
    ok = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "s.json"
    subprocess.run([sys.executable, str(script), "-o", str(out)], capture_output=True, check=True)
    assert out.read_text(encoding="utf-8") == render_stack_config_schema()
    out.write_text("{}\n", encoding="utf-8")
    stale = subprocess.run(
        [sys.executable, str(script), "--check", "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1 and "out of date" in stale.stderr


def test_schema_is_draft_2020_12_and_validates_the_good_config() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(GOOD)) == []
    assert "memoryMiB" in schema["$defs"]["WorkerPoolConfig"]["properties"]
    assert stack_config_json_schema() == schema


@pytest.mark.parametrize("path", ["surprise", "proxmox.insecureSkipVerify", "tenants[0].network.ipRange.step"])
@pytest.mark.parametrize("source", ["stored", "generated"])
def test_schema_rejects_unknown_keys(path: str, source: str) -> None:
    stored = source == "stored"
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) if stored else stack_config_json_schema()
    raw = good()
    apply(raw, path, True)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(raw))
    assert errors and all("Additional properties are not allowed" in e.message for e in errors)


# --------------------------------------------------------------------------------------------------
# Pulumi glue
# --------------------------------------------------------------------------------------------------

PROJECT = "proxmox-k8s-platform"


@pytest.fixture
def stack_config() -> Iterator[dict[str, str]]:
    """A mutable Pulumi config map for PROJECT, restored afterwards."""
    values = {f"{PROJECT}:{key}": json.dumps(value) for key, value in GOOD.items()}
    values[f"{PROJECT}:proxmoxTokenSecret"] = "3f0a1f52-0000-4000-8000-000000000000"
    values[f"{PROJECT}:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----"
    token = runtime_config.CONFIG.set(values)  # the same dict, so a test's edits are visible
    yield values
    runtime_config.CONFIG.reset(token)


def test_read_stack_config_reads_every_domain_key(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:localRender"] = "rendered/local"
    cfg = read_stack_config(pulumi.Config(PROJECT))
    assert cfg == load_stack_config({**GOOD, "localRender": "rendered/local"})
    assert cfg.local_render == "rendered/local"


def test_read_stack_config_raises_a_clean_run_error(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:tenants"] = json.dumps([{**GOOD["tenants"][0], "podCidr": "10.244.0.0/16"}])
    stack_config[f"{PROJECT}:kamaji"] = "not-json"
    del stack_config[f"{PROJECT}:proxmoxTokenSecret"]
    with pytest.raises(pulumi.RunError) as info:
        read_stack_config(pulumi.Config(PROJECT))
    message = str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert "  - kamaji: must be a YAML mapping or list" in message
    assert "  - tenants[0].podCidr: 10.244.0.0/16 overlaps managementCluster.podCidr" in message
    assert message.count("  - ") == 2  # the secret check needs a valid config, so it comes on the next run


def test_read_stack_config_reports_missing_secrets(stack_config: dict[str, str]) -> None:
    del stack_config[f"{PROJECT}:proxmoxTokenSecret"]
    del stack_config[f"{PROJECT}:sshPrivateKey"]
    with pytest.raises(pulumi.RunError) as info:
        read_stack_config(pulumi.Config(PROJECT))
    message = str(info.value)
    assert "  - proxmoxTokenSecret: secret config key is missing" in message
    assert "pulumi config set --secret sshPrivateKey" in message


def test_read_stack_secrets_returns_secret_outputs(stack_config: dict[str, str]) -> None:
    async def run() -> tuple[Any, ...]:
        config = pulumi.Config(PROJECT)
        secrets = read_stack_secrets(config, read_stack_config(config))
        assert secrets.ssh_private_key is not None
        return (
            await secrets.proxmox_token_secret.future(),
            await secrets.proxmox_token_secret.is_secret(),
            await secrets.ssh_private_key.is_secret(),
            secrets.management_kubeconfig,
            secrets.csi_encryption_passphrase,
        )

    token, token_is_secret, key_is_secret, kubeconfig, passphrase = asyncio.run(run())
    assert token == "3f0a1f52-0000-4000-8000-000000000000"
    assert token_is_secret and key_is_secret
    assert kubeconfig is None and passphrase is None


def test_read_stack_secrets_requires_the_secrets_the_config_needs(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:managementCluster"] = json.dumps({"external": True})
    config = pulumi.Config(PROJECT)
    cfg = load_stack_config({**GOOD, "managementCluster": {"external": True}})

    async def run() -> None:  # Outputs are created on a running event loop, as in a Pulumi program
        read_stack_secrets(config, cfg)

    with pytest.raises(pulumi.ConfigMissingError, match="managementKubeconfig"):
        asyncio.run(run())
    with pytest.raises(pulumi.RunError, match="managementKubeconfig: secret config key is missing"):
        read_stack_config(config)


def test_rendering_needs_no_ssh_key_and_postgres_needs_its_password() -> None:
    assert required_secret_keys(load_stack_config({**good(), "localRender": "rendered/local"})) == (
        "proxmoxTokenSecret",
    )
    raw = good()
    raw["kamaji"] = {**raw.get("kamaji", {}), "datastore": {"driver": "postgresql", "endpoints": ["pg.example:5432"]}}
    assert "kamajiDatastorePassword" in required_secret_keys(load_stack_config(raw))
