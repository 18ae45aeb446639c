"""Preflight of clusterApi and kamaji: worker placement, the DataStore, the LoadBalancer pool."""

from __future__ import annotations

import pytest

from tests.config.support import Case, Change, assert_reported

CASES: list[Case] = [
    (
        "unknown-cluster-api-node",
        [("clusterApi", {"allowedNodes": ["pve1", "pve4"]})],
        ("clusterApi.allowedNodes[1]",),
        "declared nodes: pve1, pve2, pve3",
    ),
    (
        "vmid-range-holds-csi-vmid",
        [("clusterApi", {"vmidRange": {"start": 9500, "end": 20000}})],
        ("clusterApi.vmidRange",),
        "reserved for the Proxmox CSI controller",
    ),
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
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cluster_api_or_kamaji_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)
