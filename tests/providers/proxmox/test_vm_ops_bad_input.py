"""Bad ProxmoxVm inputs are refused with the field they concern, before anything reaches Proxmox.

Each case goes the way the provider goes (``VmSpec.from_inputs`` then ``VmOperations.create``) and checks
that the error names the input path and that the simulator saw no request at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.proxmox.errors import ProxmoxNotFoundError, ProxmoxValidationError
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_plan import PlanError, plan
from providers.proxmox.vm_spec import SpecError, VmSpec
from tests.support.faults import assert_accounted, requests_matching, sim_vms
from tests.support.specs import vm_inputs, vm_spec

IP = {"ipv4": "10.10.0.11/24", "gateway4": "10.10.0.1"}

# (id, input overrides, field path in SpecError.problems, text the reason must contain)
BAD_INPUTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("disk-slot", {"disks": {"scsi99": {"size_gib": 10}}}, "disks", "'scsi99' must be a disk slot"),
    ("nic-slot", {"nics": {"eth0": {"bridge": "vmbr0"}}}, "nics", "'eth0' must be a NIC slot"),
    (
        "ipconfig-slot",
        {"cloud_init": {"ip_configs": {"eth0": {"ipv4": "dhcp"}}}},
        "cloud_init.ip_configs",
        "'eth0' must be a NIC slot",
    ),
    ("cores-zero", {"cpu": {"cores": 0}}, "cpu.cores", "greater than or equal to 1"),
    ("sockets-too-many", {"cpu": {"sockets": 9}}, "cpu.sockets", "less than or equal to 4"),
    ("disk-size-zero", {"disks": {"scsi0": {"size_gib": 0}}}, "disks.scsi0.size_gib", "greater than or equal to 1"),
    ("vlan-out-of-range", {"nics": {"net0": {"bridge": "vmbr0", "vlan": 5000}}}, "nics.net0.vlan", "4094"),
    (
        "bad-cidr",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.300/24"}}}},
        "cloud_init.ip_configs.net0.ipv4",
        "'10.10.0.300/24'",
    ),
    (
        "address-without-prefix",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.11"}}}},
        "cloud_init.ip_configs.net0.ipv4",
        "needs a prefix length",
    ),
    (
        "gateway-outside-subnet",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway4": "10.20.0.1"}}}},
        "cloud_init.ip_configs.net0",
        "gateway4 10.20.0.1 is not inside 10.10.0.0/24",
    ),
    (
        "gateway-not-an-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway4": "10.10.0.256"}}}},
        "cloud_init.ip_configs.net0.gateway4",
        "10.10.0.256",
    ),
    ("unknown-cpu-field", {"cpu": {"cores": 2, "threads": 2}}, "cpu.threads", "is not a known field"),
    ("unknown-disk-field", {"disks": {"scsi0": {"size_gib": 10, "cache": "none"}}}, "disks.scsi0.cache", "known"),
    (
        "linked-clone-with-storage",
        {"clone_mode": "linked", "storage": "local-lvm"},
        "(resource)",
        "storage and disk_format only apply to full clones",
    ),
    ("bad-tag", {"tags": ["k8s", "Bad Tag!"]}, "tags", "tag 'bad tag!' may only hold"),
    ("marker-like-tag", {"tags": ["pulumi-0123456789abcdef"]}, "tags", "prefix pulumi- is reserved"),
    ("balloon-above-memory", {"memory_mib": 1024, "balloon_mib": 2048}, "(resource)", "must not exceed memory_mib"),
    ("vmid-range-reversed", {"vmid_range": {"start": 2000, "end": 1000}}, "vmid_range", "must not be greater"),
    ("template-vmid-too-small", {"template_vmid": 5, "template_tags": []}, "template_vmid", "greater than or equal"),
    ("two-templates", {"template_vmid": 9000}, "(resource)", "exactly one of template_vmid or template_tags"),
    ("node-outside-allowed", {"node": "pve3"}, "(resource)", "not in allowed_nodes"),
    ("bad-ssh-key", {"cloud_init": {"ssh_keys": ["not a key"]}}, "cloud_init.ssh_keys", "not an OpenSSH public key"),
    ("bad-name", {"name": "cp_1"}, "name", "should match pattern"),
]


def _try_create(ops: VmOperations, inputs: dict[str, Any]) -> None:
    ops.create(VmSpec.from_inputs(inputs))


@pytest.mark.parametrize(("overrides", "path", "needle"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_before_any_request(
    pve: Any, ops: VmOperations, overrides: dict[str, Any], path: str, needle: str
) -> None:
    before = len(pve.requests)

    with pytest.raises(SpecError) as raised:
        _try_create(ops, vm_inputs(**overrides))

    problems = raised.value.problems
    assert [p for p, _ in problems] == [path], problems
    assert needle in problems[0][1], problems
    assert f"{path}: " in str(raised.value)
    assert len(pve.requests) == before, "an invalid spec reached Proxmox"
    assert_accounted(pve)


def test_every_bad_field_is_reported_at_once(pve: Any, ops: VmOperations) -> None:
    inputs = vm_inputs(cpu={"cores": 0}, nics={"eth0": {"bridge": "vmbr0"}}, tags=["Bad Tag!"], memory_mib=8)
    before = len(pve.requests)

    with pytest.raises(SpecError) as raised:
        _try_create(ops, inputs)

    assert sorted(p for p, _ in raised.value.problems) == ["cpu.cores", "memory_mib", "nics", "tags"]
    assert len(pve.requests) == before


def test_disk_shrink_is_refused_by_the_plan_before_any_request(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec(disks={"scsi0": {"size_gib": 20}})
    state = ops.create(spec)
    before = len(pve.requests)
    shrunk = vm_spec(marker=spec.marker, disks={"scsi0": {"size_gib": 12}})

    with pytest.raises(PlanError) as raised:
        plan(spec, shrunk, current_node=state.node, current_vmid=state.vmid)

    assert raised.value.field_path == "disks.scsi0.size_gib"
    assert "20 GiB to 12 GiB" in raised.value.reason
    assert len(pve.requests) == before
    assert_accounted(pve, state)


def test_disk_smaller_than_the_template_fails_and_rolls_back(pve: Any, ops: VmOperations) -> None:
    # Only the template's config knows its disk size (10 GiB): this is found after the clone, then undone.
    with pytest.raises(ProxmoxValidationError) as raised:
        ops.create(vm_spec(disks={"scsi0": {"size_gib": 5}}))

    assert "disks.scsi0.size_gib" in raised.value.errors
    assert "shrinking to 5 GiB is not supported" in str(raised.value)
    assert not requests_matching(pve, "PUT", r"/resize$"), "a shrink was sent to Proxmox"
    assert_accounted(pve)


def test_unknown_template_tags_name_the_field(pve: Any, ops: VmOperations) -> None:
    before = len(pve.requests)

    with pytest.raises(ProxmoxNotFoundError, match=r"template_tags: no template carries all of the tags"):
        ops.create(vm_spec(template_tags=["k8s", "debian-13"]))

    assert {m for m, _, _ in pve.requests[before:]} <= {"GET"}, "something was written for a missing template"
    assert_accounted(pve)


def test_template_vmid_of_a_plain_vm_names_the_field(pve: Any, ops: VmOperations) -> None:
    pve.add_vm(1500, "plain-vm", node="pve1")
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError, match=r"template_vmid: VM 1500 on pve1 is not a template") as raised:
        ops.create(vm_spec(template_vmid=1500, template_tags=[]))

    assert raised.value.errors == {"template_vmid": "must name a template"}
    assert {m for m, _, _ in pve.requests[before:]} <= {"GET"}
    assert sim_vms(pve)[1500].config.get("description") is None, "the plain VM was touched"
    assert_accounted(pve, others=[1500])


def test_missing_template_vmid_names_the_field(pve: Any, ops: VmOperations) -> None:
    before = len(pve.requests)

    with pytest.raises(ProxmoxNotFoundError, match=r"template_vmid: no template 9999 is visible"):
        ops.create(vm_spec(template_vmid=9999, template_tags=[]))

    assert {m for m, _, _ in pve.requests[before:]} <= {"GET"}
    assert_accounted(pve)
