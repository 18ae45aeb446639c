"""Preflight of managementCluster: VM sizes, addresses, the API VIP, an existing cluster."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import format_problems, load_stack_config, required_secret_keys
from tests.config.support import DELETE, Case, Change, apply, assert_reported, good, problems_of

CASES: list[Case] = [
    (
        "bootstrap-unknown",
        [("managementCluster.bootstrap", "ansible")],
        ("managementCluster.bootstrap",),
        "'kubeadm' or 'external'",
    ),
    (
        "bootstrap-with-a-cluster-brought-in",
        [("managementCluster", {"external": True, "bootstrap": "external"})],
        ("managementCluster.bootstrap",),
        "only used when the program builds the management cluster",
    ),
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
    (
        "join-cidr-overlaps-node-network",
        [("managementCluster.joinCidr", "10.10.0.0/16")],
        ("managementCluster.joinCidr",),
        "overlaps networks.management.cidr",
    ),
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
        "vmid-range-reversed",
        [("managementCluster.vmidRange", {"start": 100500, "end": 100400})],
        ("managementCluster.vmidRange",),
        "start 100500 is after end 100400",
    ),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""

_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_management_cluster_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


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


def test_external_management_cluster_needs_only_cidrs() -> None:
    raw = good()
    raw["managementCluster"] = {"external": True}
    cfg = load_stack_config(raw)
    assert cfg.management_cluster.external
    assert required_secret_keys(cfg) == ("proxmoxTokenSecret", "managementKubeconfig")


def test_vms_bootstrapped_elsewhere_need_the_kubeconfig_and_no_ssh_key() -> None:
    raw = good()
    apply(raw, "managementCluster.bootstrap", "external")
    apply(raw, "managementCluster.sshPublicKeys", [])
    cfg = load_stack_config(raw)
    assert cfg.management_cluster.bootstrap == "external" and not cfg.management_cluster.external
    assert required_secret_keys(cfg) == ("proxmoxTokenSecret", "managementKubeconfig")


def test_kubeadm_still_needs_a_public_key() -> None:
    raw = good()
    apply(raw, "managementCluster.sshPublicKeys", [])
    assert [p.path for p in problems_of(raw)] == ["managementCluster.sshPublicKeys"]


def test_await_readiness_defaults_to_waiting() -> None:
    assert load_stack_config(good()).management_cluster.await_readiness is True
    raw = good()
    apply(raw, "managementCluster.awaitReadiness", False)
    assert load_stack_config(raw).management_cluster.await_readiness is False
