"""Preflight of tenants: names, pools, references, networks, capacity."""

from __future__ import annotations

import pytest

from tests.config.support import Case, Change, assert_reported

CASES: list[Case] = [
    ("tenant-name-pattern", [("tenants[0].name", "Team_A")], ("tenants[0].name",), "DNS-1123 label"),
    ("tenant-name-length", [("tenants[0].name", "t" * 31)], ("tenants[0].name",), "at most 30 characters"),
    ("cidr-host-bits", [("tenants[0].podCidr", "10.200.0.1/16")], ("tenants[0].podCidr",), "host bits set"),
    ("cidr-not-cidr", [("tenants[0].serviceCidr", "10.201.0.0")], ("tenants[0].serviceCidr",), "CIDR notation"),
    (
        "memory-not-multiple-of-8",
        [("tenants[0].workerPools[0].memoryMiB", 4100)],
        ("tenants[0].workerPools[0].memoryMiB",),
        "multiple of 8",
    ),
    ("no-worker-pools", [("tenants[0].workerPools", [])], ("tenants[0].workerPools",), "must not be empty"),
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
        "tenant-range-too-small",
        [("tenants[0].network.ipRange.end", "10.110.0.102")],
        ("tenants[0].network.ipRange",),
        "needs at least 4",
    ),
    (
        "unknown-pool-node",
        [("tenants[1].workerPools[1].allowedNodes", ["pve9"])],
        ("tenants[1].workerPools[1].allowedNodes[0]",),
        "unknown node 'pve9'",
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
    (
        "unknown-pool-template",
        [("tenants[1].workerPools[1].template", "rocky")],
        ("tenants[1].workerPools[1].template",),
        "unknown template 'rocky'",
    ),
    ("duplicate-tenant", [("tenants[1].name", "team-a")], ("tenants[1].name",), "duplicate tenant 'team-a'"),
    ("reserved-tenant", [("tenants[0].name", "kamaji-system")], ("tenants[0].name",), "reserved"),
    (
        "duplicate-pool",
        [("tenants[1].workerPools[1].name", "small")],
        ("tenants[1].workerPools[1].name",),
        "duplicate pool 'small'",
    ),
    (
        "tenants-share-vlan",
        [("tenants[1].network.vlan", 110)],
        ("tenants[1].network.vlan",),
        "already used by tenants[0].network",
    ),
    (
        "vmid-ranges-overlap",
        [("tenants[1].vmidRange", {"start": 200500, "end": 200600})],
        ("tenants[1].vmidRange",),
        "overlaps clusterApi.vmidRange (200000-299999)",
    ),
    (
        "tenant-vmid-range-too-small",
        [("tenants[1].vmidRange", {"start": 300000, "end": 300002})],
        ("tenants[1].vmidRange",),
        "needs at least 5",
    ),
    (
        "tenant-kubernetes-too-old",
        [("tenants[1].kubernetesVersion", "v1.28.3")],
        ("tenants[1].kubernetesVersion",),
        "v1.28.3 is not supported",
    ),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_tenant_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)
