"""ProxmoxVm's ``firewall`` input against fakepve over verified HTTPS: security groups bound to the VM's NICs.

The simulator keeps a guest's firewall statefully (``firewall_config("vm", vmid=...)``: its ``rules`` in
order and its ``options``), and drops it when the VM is destroyed, as PVE does. It does not filter
packets, and it does not check that a group named in a ``type=group`` rule exists (PVE does): what is
proven here is what the guest firewall *holds* and the order of the requests that put it there. Whether
traffic is then filtered also depends on the datacenter firewall (``/cluster/firewall/options enable``),
which an operator switches on; neither the provider nor these tests touch it.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.dynamic.vm import ProxmoxVmProvider
from providers.proxmox.errors import ProxmoxError
from providers.proxmox.firewall import FirewallApi, FirewallRule, SecurityGroupSpec, VmGroupBinding
from providers.proxmox.vm_config import firewall_comment, firewall_marker
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_plan import plan
from providers.proxmox.vm_spec import VmSpec
from tests.support.faults import assert_accounted, requests_matching
from tests.support.specs import vm_spec

NICS = {"net0": {"bridge": "vmbr0", "vlan": 10}, "net1": {"bridge": "vmbr1", "vlan": 30}}
GROUPS = {"net0": ["k8s-mgmt"], "net1": ["k8s-storage"]}
# Someone else's rules on the guest: an operator's monitoring rule and a hand-made binding of a group.
FOREIGN = [
    {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "9100", "enable": 1, "comment": "ops: node exporter"},
    {"type": "group", "action": "k8s-storage", "iface": "net1", "enable": 1, "comment": "ops: by hand"},
]


@pytest.fixture
def groups(pve: Any, client: Any) -> FirewallApi:
    """The platform's security groups, as ProxmoxCluster creates them."""
    api = FirewallApi(client)
    for name, cidr in (("k8s-mgmt", "10.10.0.0/24"), ("k8s-data", "10.20.0.0/24"), ("k8s-storage", "10.30.0.0/24")):
        api.create_group(SecurityGroupSpec(name, "", (FirewallRule(source=cidr, comment="own network"),)))
    return api


def fw_spec(marker: str | None = None, **firewall: Any) -> VmSpec:
    """A two-NIC VM with the management group on net0 and the storage group on net1 unless overridden."""
    overrides: dict[str, Any] = {"nics": NICS, "firewall": {"groups": GROUPS, **firewall}}
    if marker is not None:
        overrides["marker"] = marker
    return vm_spec(**overrides)


def guest(pve: Any, vmid: int) -> dict[str, Any]:
    conf: dict[str, Any] = pve.firewall_config("vm", vmid=vmid)
    return conf


def bound(pve: Any, vmid: int, marker: str) -> list[tuple[str, str, int]]:
    """(group, iface, enable) of the guest's group rules that carry this resource's marker, in rule order."""
    comment = firewall_comment(marker)
    return [
        (r["action"], r.get("iface"), r["enable"])
        for r in guest(pve, vmid)["rules"]
        if r.get("type") == "group" and r.get("comment") == comment
    ]


def sent(pve: Any, since: int) -> list[tuple[str, str]]:
    """(method, path) of the writes since index ``since``, without the API prefix."""
    return [(m, p.removeprefix("/api2/json")) for m, p, _ in pve.requests[since:] if m != "GET"]


def first(requests: list[tuple[str, str]], method: str, suffix: str) -> int:
    return next(i for i, (m, p) in enumerate(requests) if m == method and p.endswith(suffix))


def last(requests: list[tuple[str, str]], method: str, suffix: str) -> int:
    return max(i for i, (m, p) in enumerate(requests) if m == method and p.endswith(suffix))


# =========================================================================== create


def test_create_binds_the_groups_and_enables_drop_before_the_first_start(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    spec = fw_spec()
    before = len(pve.requests)

    state = ops.create(spec)

    assert sorted(bound(pve, state.vmid, spec.marker)) == [("k8s-mgmt", "net0", 1), ("k8s-storage", "net1", 1)]
    options = guest(pve, state.vmid)["options"]
    assert (options["enable"], options["policy_in"], options["policy_out"]) == (1, "DROP", "ACCEPT")
    vm = next(v for v in pve.vms if v.vmid == state.vmid)
    assert "firewall=1" in vm.config["net0"] and "firewall=1" in vm.config["net1"]
    assert vm.status == "running"
    # Config, then the group rules, then the switch, then the start: the VM never boots unprotected.
    writes = sent(pve, before)
    config = first(writes, "POST", f"/qemu/{state.vmid}/config")
    rules = [i for i, (m, p) in enumerate(writes) if m == "POST" and p.endswith(f"/qemu/{state.vmid}/firewall/rules")]
    switch = first(writes, "PUT", f"/qemu/{state.vmid}/firewall/options")
    start = first(writes, "POST", f"/qemu/{state.vmid}/status/start")
    assert len(rules) == 2
    assert config < min(rules) and max(rules) < switch < start, writes


def test_a_vm_without_a_firewall_input_sends_no_firewall_request(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    before = len(pve.requests)
    state = ops.create(spec)
    found = ops.read(state.vmid, spec)
    assert found is not None and found[1].firewall is None
    assert not [p for _, p, _ in pve.requests[before:] if "/firewall" in p]
    assert guest(pve, state.vmid)["rules"] == [] and guest(pve, state.vmid)["options"] == {}


def test_a_failed_binding_rolls_the_vm_back_before_it_ever_started(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    pve.fail("PUT", "/firewall/options", 403, "Permission check failed (/vms/1000, VM.Config.Network)")
    before = len(pve.requests)

    with pytest.raises(ProxmoxError, match="Permission check failed"):
        ops.create(fw_spec())

    assert not requests_matching(pve, "POST", r"/status/start$", since=before)
    assert requests_matching(pve, "DELETE", r"/qemu/\d+$", since=before), "the half-made VM was not destroyed"
    assert_accounted(pve)


# =========================================================================== update


def test_update_adds_new_bindings_first_then_removes_stale_ones_and_never_a_foreign_rule(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    rules = guest(pve, state.vmid)["rules"]
    rules[len(rules) : len(rules)] = [dict(r) for r in FOREIGN]  # someone else's, below ours
    foreign_before = [r for r in rules if not str(r.get("comment", "")).startswith("managed by pulumi")]

    # net1 moves from the storage group to the data group; net0 gets the data group as well.
    new = fw_spec(spec.marker, groups={"net0": ["k8s-mgmt", "k8s-data"], "net1": ["k8s-data"]})
    change = plan(spec, new, current_node=state.node, current_vmid=state.vmid)
    assert change.replaces == () and change.changed_fields == ("firewall",) and change.firewall
    before = len(pve.requests)

    ops.update(state.vmid, spec, new, change)

    assert sorted(bound(pve, state.vmid, spec.marker)) == [
        ("k8s-data", "net0", 1),
        ("k8s-data", "net1", 1),
        ("k8s-mgmt", "net0", 1),
    ]
    after = guest(pve, state.vmid)["rules"]
    foreign_after = [r for r in after if not str(r.get("comment", "")).startswith("managed by pulumi")]
    assert foreign_after == foreign_before, "a rule someone else added was changed or removed"
    writes = sent(pve, before)
    adds = [i for i, (m, p) in enumerate(writes) if m == "POST" and p.endswith("/firewall/rules")]
    deletes = [i for i, (m, p) in enumerate(writes) if m == "DELETE" and "/firewall/rules/" in p]
    assert len(adds) == 2 and len(deletes) == 1
    assert max(adds) < first(writes, "PUT", "/firewall/options") < min(deletes), writes
    # Only the firewall changed: the VM's config is not written.
    assert not [w for w in writes if w[1].endswith("/config")]


def test_an_unchanged_firewall_is_not_touched_by_an_update(pve: Any, ops: VmOperations, groups: FirewallApi) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    new = fw_spec(spec.marker, groups=GROUPS)
    new = new.model_copy(update={"memory_mib": 8192})
    change = plan(spec, new, current_node=state.node, current_vmid=state.vmid)
    assert not change.firewall
    before = len(pve.requests)
    ops.update(state.vmid, spec, new, change)
    assert not [p for _, p, _ in pve.requests[before:] if "/firewall" in p]


def test_policies_and_the_switch_change_in_place(pve: Any, ops: VmOperations, groups: FirewallApi) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    off = fw_spec(spec.marker, enabled=False, policy_in="REJECT", policy_out="DROP")
    change = plan(spec, off, current_node=state.node, current_vmid=state.vmid)
    assert change.replaces == () and change.changed_fields == ("firewall",)

    ops.update(state.vmid, spec, off, change)

    options = guest(pve, state.vmid)["options"]
    assert (options["enable"], options["policy_in"], options["policy_out"]) == (0, "REJECT", "DROP")
    # Switching the firewall off keeps the bindings.
    assert len(bound(pve, state.vmid, spec.marker)) == 2


def test_a_new_marker_re_marks_the_rules_in_place(pve: Any, ops: VmOperations, groups: FirewallApi) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    guest(pve, state.vmid)["rules"].append(dict(FOREIGN[1]))
    renewed = fw_spec("b" * 32)
    change = plan(spec, renewed, current_node=state.node, current_vmid=state.vmid)
    assert change.replaces == () and change.firewall

    ops.update(state.vmid, spec, renewed, change)

    assert bound(pve, state.vmid, spec.marker) == []
    assert sorted(bound(pve, state.vmid, renewed.marker)) == [("k8s-mgmt", "net0", 1), ("k8s-storage", "net1", 1)]
    assert FOREIGN[1] in guest(pve, state.vmid)["rules"]


def test_dropping_the_input_stops_managing_and_leaves_the_guest_firewall_alone(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    unmanaged = vm_spec(marker=spec.marker, nics=NICS)
    change = plan(spec, unmanaged, current_node=state.node, current_vmid=state.vmid)
    assert change.changed_fields == ("firewall",) and not change.firewall
    rules_before = [dict(r) for r in guest(pve, state.vmid)["rules"]]
    before = len(pve.requests)

    ops.update(state.vmid, spec, unmanaged, change)

    assert not [p for _, p, _ in pve.requests[before:] if "/firewall" in p]
    assert guest(pve, state.vmid)["rules"] == rules_before


# =========================================================================== read


def test_read_reports_a_group_removed_out_of_band_and_update_repairs_it(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    rules = guest(pve, state.vmid)["rules"]
    comment = firewall_comment(spec.marker)
    storage = next(r for r in rules if r.get("comment") == comment and r["action"] == "k8s-storage")
    rules.remove(storage)  # an operator deletes the binding by hand
    rules.extend(dict(r) for r in FOREIGN)  # and adds rules of their own, which are not ours to report

    found = ops.read(state.vmid, spec)

    assert found is not None
    _, refreshed = found
    assert refreshed.firewall is not None
    assert refreshed.firewall.groups == {"net0": ["k8s-mgmt"]}
    drift = plan(refreshed, spec, current_node=state.node, current_vmid=state.vmid)
    assert drift.changed_fields == ("firewall",) and drift.firewall and drift.replaces == ()

    ops.update(state.vmid, refreshed, spec, drift)

    assert sorted(bound(pve, state.vmid, spec.marker)) == [("k8s-mgmt", "net0", 1), ("k8s-storage", "net1", 1)]
    assert all(r in guest(pve, state.vmid)["rules"] for r in FOREIGN)
    again = ops.read(state.vmid, spec)
    assert again is not None
    assert not plan(again[1], spec, current_node=state.node, current_vmid=state.vmid).has_changes


def test_read_reports_a_disabled_rule_and_a_switched_off_firewall(
    pve: Any, ops: VmOperations, groups: FirewallApi
) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    comment = firewall_comment(spec.marker)
    mgmt = next(r for r in guest(pve, state.vmid)["rules"] if r.get("comment") == comment and r["action"] == "k8s-mgmt")
    mgmt["enable"] = 0
    guest(pve, state.vmid)["options"]["enable"] = 0

    found = ops.read(state.vmid, spec)

    assert found is not None
    refreshed = found[1].firewall
    assert refreshed is not None and refreshed.enabled is False and refreshed.groups == {"net1": ["k8s-storage"]}
    drift = plan(found[1], spec, current_node=state.node, current_vmid=state.vmid)
    ops.update(state.vmid, found[1], spec, drift)
    assert guest(pve, state.vmid)["options"]["enable"] == 1
    # The disabled rule is replaced by an enabled one, not left behind.
    assert sorted(bound(pve, state.vmid, spec.marker)) == [("k8s-mgmt", "net0", 1), ("k8s-storage", "net1", 1)]


def test_unbind_keeps_one_enabled_marked_rule_per_binding_and_nothing_it_does_not_own(
    pve: Any, groups: FirewallApi
) -> None:
    """FirewallApi.unbind_vm on its own: the rule kept is the enabled one, wherever it sits."""
    ours, old = firewall_comment("a" * 32), firewall_comment("c" * 32)
    pve.add_vm(100, "cp-1", node="pve1", config={"net0": "virtio=BC:24:11:00:00:10,bridge=vmbr0,firewall=1"})
    guest(pve, 100)["rules"] = [
        {"type": "group", "action": "k8s-mgmt", "iface": "net0", "enable": 0, "comment": ours},
        {"type": "group", "action": "k8s-mgmt", "iface": "net0", "enable": 1, "comment": ours},
        {"type": "group", "action": "k8s-mgmt", "iface": "net0", "enable": 1, "comment": ours},
        {"type": "group", "action": "k8s-data", "iface": "net0", "enable": 1, "comment": old},
        *[dict(r) for r in FOREIGN],
    ]
    markers = {"a" * 32, "c" * 32}

    removed = groups.unbind_vm(
        "pve1",
        100,
        keep=[VmGroupBinding("k8s-mgmt", "net0")],
        owned=lambda rule: firewall_marker(rule.comment) in markers,
        comment=ours,
    )

    assert removed == 3
    assert guest(pve, 100)["rules"] == [
        {"type": "group", "action": "k8s-mgmt", "iface": "net0", "enable": 1, "comment": ours},
        *FOREIGN,
    ]


# =========================================================================== delete


def test_delete_needs_nothing_special(pve: Any, ops: VmOperations, groups: FirewallApi) -> None:
    spec = fw_spec()
    state = ops.create(spec)
    assert bound(pve, state.vmid, spec.marker)
    before = len(pve.requests)

    ops.delete(state.vmid, spec)

    assert not [p for _, p, _ in pve.requests[before:] if "/firewall" in p]
    # Destroying the VM dropped its firewall config with it (PVE does the same): a VMID reused later
    # starts with an empty guest firewall.
    assert guest(pve, state.vmid)["rules"] == [] and guest(pve, state.vmid)["options"] == {}
    assert_accounted(pve)
    # The groups themselves belong to their own resources and stay.
    assert set(groups.list_groups()) == {"k8s-mgmt", "k8s-data", "k8s-storage"}


# =========================================================================== the resource


def test_check_refuses_groups_on_undeclared_or_unfiltered_nics_and_bad_group_names() -> None:
    provider = ProxmoxVmProvider()
    inputs = vm_spec(nics=NICS).to_inputs()

    def failures(firewall: dict[str, Any], nics: dict[str, Any] = NICS) -> list[tuple[str, str]]:
        result = provider.check({}, {**inputs, "nics": nics, "firewall": firewall})
        return [(f.property, f.reason) for f in result.failures]

    assert failures({"groups": GROUPS}) == []
    assert any("net5" in reason for _, reason in failures({"groups": {"net5": ["k8s-mgmt"]}}))
    assert [p for p, _ in failures({"groups": {"eth0": ["k8s-mgmt"]}})] == ["firewall.groups"]
    assert [p for p, _ in failures({"groups": {"net0": ["9-not-a-group"]}})] == ["firewall.groups"]
    assert [p for p, _ in failures({"policy_in": "ALLOW"})] == ["firewall.policy_in"]
    unfiltered = {**NICS, "net1": {**NICS["net1"], "firewall": False}}
    assert failures({"groups": GROUPS}, unfiltered) == [
        ("firewall.groups.net1", "nics.net1.firewall is false: the security groups bound to net1 would filter nothing")
    ]
    checked = provider.check({}, {**inputs, "firewall": {"groups": {"net1": ["k8s-b", "k8s-a", "k8s-b"], "net0": []}}})
    assert checked.inputs["firewall"] == {
        "enabled": True,
        "policy_in": "DROP",
        "policy_out": "ACCEPT",
        "groups": {"net1": ["k8s-a", "k8s-b"]},
    }


def test_the_provider_diff_is_in_place_for_every_firewall_change() -> None:
    provider = ProxmoxVmProvider()
    olds = {**fw_spec("a" * 32).to_inputs(), "current_node": "pve1"}
    for firewall in (
        {"groups": {"net0": ["k8s-mgmt"]}},
        {"groups": GROUPS, "enabled": False},
        {"groups": GROUPS, "policy_in": "ACCEPT"},
        None,
    ):
        news = {**fw_spec("a" * 32).to_inputs(), "firewall": firewall}
        diff = provider.diff("pve1/1500", olds, news)
        assert diff.changes is True and diff.replaces == [], firewall
    assert provider.diff("pve1/1500", olds, fw_spec("a" * 32).to_inputs()).changes is False
