"""Shape errors in plain words: key paths, allowed keys, nothing secret echoed, no traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import ConfigProblem, StackConfigError, format_problems, load_stack_config
from tests.config.support import Case, Change, apply, assert_reported, good, problems_of

CASES: list[Case] = [
    ("typo-top-level-key", [("tenant", [])], ("tenant",), "did you mean 'tenants'"),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""

_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_shape_is_reported_at_its_key_path(changes: list[Change], paths: tuple[str, ...], fragment: str) -> None:
    assert_reported(changes, paths, fragment)


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
