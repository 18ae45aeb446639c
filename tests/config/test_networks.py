"""Preflight of networks and of the platform-wide CIDR checks (Cilium chaining needs unique pod IPs)."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.config.support import Case, Change, apply, assert_reported, good, problems_of

CASES: list[Case] = [
    ("vlan-out-of-range", [("networks.management.vlan", 4095)], ("networks.management.vlan",), "at most 4094"),
    ("bad-ip", [("networks.management.gateway", "10.10.10.300")], ("networks.management.gateway",), "IPv4"),
    (
        "one-dns-server-minimum",
        [("networks.management.dnsServers", [])],
        ("networks.management.dnsServers",),
        "must not be empty",
    ),
    (
        "storage-network-overlaps-management",
        [("networks.storage.cidr", "10.10.0.0/16")],
        ("networks.storage.cidr",),
        "overlaps networks.management.cidr",
    ),
    (
        "node-networks-share-segment",
        [("networks.data", {"bridge": "vmbr0", "cidr": "10.10.20.0/24"})],
        ("networks.data.vlan",),
        "already used by networks.management",
    ),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""

_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_network_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


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
