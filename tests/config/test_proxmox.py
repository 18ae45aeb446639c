"""Preflight of the Proxmox keys: proxmox, nodes, templates, and the VMID ranges of every domain."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import load_stack_config
from tests.config.support import DELETE, Case, Change, apply, assert_reported, good, problems_of

CASES: list[Case] = [
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
    ("template-name", [("templates.Bad_Name", {"tags": ["x"]})], ("templates.Bad_Name",), "invalid name"),
    ("nodes-empty", [("nodes", [])], ("nodes",), "must not be empty"),
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
    ("duplicate-node", [("nodes[2].name", "pve2")], ("nodes[2].name",), "duplicate node 'pve2'"),
    (
        "template-vmid-in-range",
        [("templates.ubuntu-2404-kube.vmid", 100005)],
        ("templates.ubuntu-2404-kube.vmid",),
        "inside managementCluster.vmidRange",
    ),
    (
        "ca-bundle-without-verification",
        [("proxmox.verifyTls", False), ("proxmox.caBundle", "/etc/ssl/pve-ca.pem")],
        ("proxmox.caBundle",),
        "only used when verifyTls is true",
    ),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""

_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_proxmox_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


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
