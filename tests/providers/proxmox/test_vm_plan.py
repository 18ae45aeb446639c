"""Property-based tests of the pure diff planner (no Proxmox involved)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.proxmox.vm_plan import REPLACE_FIELDS, PlanError, plan
from providers.proxmox.vm_spec import DISK_SLOT, NIC_SLOT, VmSpec
from tests.support.specs import vm_inputs

tag = st.from_regex(r"[a-z0-9_][a-z0-9_\-+.]{0,10}", fullmatch=True).filter(lambda t: not t.startswith("pulumi-"))
tags = st.lists(tag, min_size=0, max_size=8, unique=True)
disk_slot = st.sampled_from(["scsi0", "scsi1", "scsi2", "virtio0", "virtio3", "sata1"])
nic_slot = st.sampled_from(["net0", "net1", "net2", "net7"])
size = st.integers(min_value=1, max_value=4096)


def spec(**overrides: Any) -> VmSpec:
    inputs = vm_inputs(marker="a" * 32)
    inputs.update(overrides)
    return VmSpec.from_inputs(inputs)


@given(tags=tags, data=st.data())
def test_tag_order_and_case_never_cause_a_diff(tags: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(tags))
    shouted = [t.upper() if i % 2 else t for i, t in enumerate(shuffled)]
    result = plan(spec(tags=tags), spec(tags=shouted), current_node="pve1", current_vmid=1500)
    assert not result.has_changes


@given(slot=disk_slot, before=size, delta=st.integers(min_value=1, max_value=1000))
def test_shrinking_any_disk_is_refused_naming_it(slot: str, before: int, delta: int) -> None:
    after = max(1, before - delta)
    if after == before:
        return
    old = spec(disks={slot: {"size_gib": before}})
    new = spec(disks={slot: {"size_gib": after}})
    with pytest.raises(PlanError) as err:
        plan(old, new, current_node="pve1", current_vmid=1500)
    assert err.value.field_path == f"disks.{slot}.size_gib"
    assert slot in str(err.value)


@given(slot=disk_slot, before=size, delta=st.integers(min_value=1, max_value=1000))
def test_growing_a_disk_is_an_update_in_place(slot: str, before: int, delta: int) -> None:
    result = plan(
        spec(disks={slot: {"size_gib": before}}),
        spec(disks={slot: {"size_gib": before + delta}}),
        current_node="pve1",
        current_vmid=1500,
    )
    assert result.replaces == ()
    assert result.disk_updates[slot].size_gib == before + delta


IMMUTABLE_CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "template_vmid": ({"template_tags": [], "template_vmid": 9000}, {"template_tags": [], "template_vmid": 9001}),
    "template_tags": ({"template_tags": ["k8s"]}, {"template_tags": ["k8s", "ubuntu-24-04"]}),
    "clone_mode": ({"clone_mode": "full"}, {"clone_mode": "linked"}),
    "storage": ({"storage": "local-lvm"}, {"storage": "ceph-pool"}),
    "disk_format": ({"disk_format": "raw"}, {"disk_format": "qcow2"}),
    "pool": ({"pool": "k8s"}, {"pool": "tenants"}),
}


def test_every_immutable_field_has_a_case() -> None:
    assert set(IMMUTABLE_CHANGES) == set(REPLACE_FIELDS)


@pytest.mark.parametrize("field", sorted(IMMUTABLE_CHANGES))
def test_each_immutable_field_plans_a_replacement(field: str) -> None:
    before, after = IMMUTABLE_CHANGES[field]
    result = plan(spec(**before), spec(**after), current_node="pve1", current_vmid=1500)
    assert field in result.replaces


def test_pinned_node_change_replaces_unless_migration_is_asked_for() -> None:
    old, new = spec(node="pve1", allowed_nodes=[]), spec(node="pve2", allowed_nodes=[])
    assert "node" in plan(old, new, current_node="pve1", current_vmid=1500).replaces
    migrating = spec(node="pve2", allowed_nodes=[], migrate_on_node_change=True)
    result = plan(old, migrating, current_node="pve1", current_vmid=1500)
    assert result.replaces == () and result.migrate_to == "pve2"


def test_vmid_outside_a_new_range_replaces() -> None:
    result = plan(spec(), spec(vmid_range={"start": 2000, "end": 2999}), current_node="pve1", current_vmid=1500)
    assert "vmid_range" in result.replaces


managed_disks = st.dictionaries(disk_slot, st.builds(lambda s: {"size_gib": s}, size), max_size=3)
managed_nics = st.dictionaries(
    nic_slot,
    st.builds(
        lambda b, v: {"bridge": b, "vlan": v},
        st.sampled_from(["vmbr0", "vmbr1"]),
        st.one_of(st.none(), st.integers(1, 4094)),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150)
@given(old_disks=managed_disks, new_disks=managed_disks, old_nics=managed_nics, new_nics=managed_nics)
def test_only_declared_slots_ever_appear_in_a_plan(
    old_disks: dict[str, Any], new_disks: dict[str, Any], old_nics: dict[str, Any], new_nics: dict[str, Any]
) -> None:
    no_ci = {"cloud_init": None}
    old = spec(disks=old_disks, nics=old_nics, **no_ci)
    new = spec(disks=new_disks, nics=new_nics, **no_ci)
    try:
        result = plan(old, new, current_node="pve1", current_vmid=1500)
    except PlanError as err:
        assert re.fullmatch(r"disks\.\w+\.size_gib", err.field_path)
        return
    declared_disks, declared_nics = set(old_disks) | set(new_disks), set(old_nics) | set(new_nics)
    assert set(result.disk_updates) <= set(new_disks)
    assert set(result.nic_updates) <= set(new_nics)
    assert set(result.nic_removals) <= set(old_nics)
    for key in [*result.set_options, *result.delete_options]:
        assert not DISK_SLOT.match(key) and not NIC_SLOT.match(key), key
    # A disk that stops being declared is left alone (its data stays), never detached.
    assert all(slot in declared_disks for slot in result.disk_updates)
    assert all(slot in declared_nics for slot in [*result.nic_updates, *result.nic_removals])


def test_no_change_means_no_plan() -> None:
    assert not plan(spec(), spec(), current_node="pve1", current_vmid=1500).has_changes


def test_password_change_is_an_in_place_cloud_init_update() -> None:
    result = plan(spec(), spec(), current_node="pve1", current_vmid=1500, old_password="a", new_password="b")
    assert result.changed_fields == ("cloud_init_password",)
    assert result.regenerate_cloudinit and result.set_options == {"cipassword": "b"}


# ------------------------------------------------------------------------------------------ firewall

FW_NICS = {"net0": {"bridge": "vmbr0", "vlan": 10}, "net1": {"bridge": "vmbr1"}}
policy = st.sampled_from(["DROP", "ACCEPT", "REJECT"])
group_name = st.sampled_from(["k8s-mgmt", "k8s-data", "k8s-storage", "ops_ssh"])
firewall_input = st.one_of(
    st.none(),
    st.builds(
        lambda enabled, policy_in, policy_out, groups: {
            "enabled": enabled,
            "policy_in": policy_in,
            "policy_out": policy_out,
            "groups": groups,
        },
        st.booleans(),
        policy,
        policy,
        st.dictionaries(st.sampled_from(["net0", "net1"]), st.lists(group_name, max_size=4), max_size=2),
    ),
)


def canonical_firewall(firewall: dict[str, Any] | None) -> Any:
    """What a firewall input means: groups per NIC as sets, NICs without groups dropped."""
    if firewall is None:
        return None
    groups = {slot: frozenset(names) for slot, names in firewall["groups"].items() if names}
    return (firewall["enabled"], firewall["policy_in"], firewall["policy_out"], groups)


@settings(max_examples=200)
@given(before=firewall_input, after=firewall_input)
def test_every_firewall_change_is_in_place_and_touches_nothing_else(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    result = plan(
        spec(nics=FW_NICS, firewall=before), spec(nics=FW_NICS, firewall=after), current_node="pve1", current_vmid=1500
    )
    differs = canonical_firewall(before) != canonical_firewall(after)
    assert result.replaces == ()
    assert result.changed_fields == (("firewall",) if differs else ())
    # Reconciled only when there is a declaration to reconcile with; dropping it only stops managing.
    assert result.firewall is (differs and after is not None)
    assert not (result.set_options or result.delete_options or result.nic_updates or result.nic_removals)
    assert not (result.disk_updates or result.power or result.migrate_to or result.delete_before_replace)


@given(firewall=firewall_input.filter(lambda f: f is not None), data=st.data())
def test_group_order_and_duplicates_never_cause_a_diff(firewall: dict[str, Any], data: st.DataObject) -> None:
    shuffled = {
        slot: data.draw(st.permutations(names)) + names[:1] for slot, names in reversed(firewall["groups"].items())
    }
    result = plan(
        spec(nics=FW_NICS, firewall=firewall),
        spec(nics=FW_NICS, firewall={**firewall, "groups": shuffled}),
        current_node="pve1",
        current_vmid=1500,
    )
    assert not result.has_changes and not result.firewall


@given(firewall=firewall_input)
def test_a_new_marker_re_marks_the_firewall_rules_only_when_they_are_managed(firewall: dict[str, Any] | None) -> None:
    old = spec(nics=FW_NICS, firewall=firewall)
    renewed = VmSpec.from_inputs({**old.to_inputs(), "marker": "b" * 32})
    result = plan(old, renewed, current_node="pve1", current_vmid=1500)
    assert result.replaces == ()
    assert result.firewall is (firewall is not None)


def test_firewall_groups_need_declared_nics_and_valid_group_names() -> None:
    from providers.proxmox.vm_spec import SpecError

    with pytest.raises(SpecError, match=r"not declared in nics: \['net2'\]"):
        spec(nics=FW_NICS, firewall={"groups": {"net2": ["k8s-mgmt"]}})
    with pytest.raises(SpecError) as bad_name:
        spec(nics=FW_NICS, firewall={"groups": {"net0": ["a-name-longer-than-18"]}})
    assert [p for p, _ in bad_name.value.problems] == ["firewall.groups"]
    with pytest.raises(SpecError) as bad_policy:
        spec(nics=FW_NICS, firewall={"policy_in": "drop"})
    assert [p for p, _ in bad_policy.value.problems] == ["firewall.policy_in"]
    defaults = spec(nics=FW_NICS, firewall={}).firewall
    assert defaults is not None
    assert (defaults.enabled, defaults.policy_in, defaults.policy_out, defaults.groups) == (True, "DROP", "ACCEPT", {})


@pytest.mark.parametrize("option", ["ssd", "discard", "iothread"])
def test_changing_drive_options_of_an_existing_disk_is_refused_naming_them(option: str) -> None:
    old = spec(disks={"scsi1": {"size_gib": 20}})
    new = spec(disks={"scsi1": {"size_gib": 20, option: False}})
    with pytest.raises(PlanError) as err:
        plan(old, new, current_node="pve1", current_vmid=1500)
    assert err.value.field_path == f"disks.scsi1.{option}"
