"""Bad ProxmoxVm inputs are refused with the field they concern, before anything reaches Proxmox.

Each case goes the way the provider goes (``VmSpec.from_inputs`` then ``VmOperations.create``) and checks
that the error names the input path and that the simulator saw no request at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.proxmox.errors import ProxmoxNotFoundError, ProxmoxStorageUnavailableError, ProxmoxValidationError
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_plan import PlanError, plan
from providers.proxmox.vm_spec import SpecError, VmSpec
from tests.support.faults import assert_accounted, sim_vms
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
    # What Proxmox or the guest would refuse later, refused at check() (issue: "input checks too late").
    (
        "ipv6-gateway-without-ipv6",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway6": "2001:db8::1"}}}},
        "cloud_init.ip_configs.net0.gateway6",
        "gateway6 needs a static ipv6 address",
    ),
    (
        "ipv6-gateway-with-slaac",
        {"cloud_init": {"ip_configs": {"net0": {"ipv6": "auto", "gateway6": "2001:db8::1"}}}},
        "cloud_init.ip_configs.net0.gateway6",
        "needs a static ipv6",
    ),
    (
        "ipv6-gateway-off-link",
        {"cloud_init": {"ip_configs": {"net0": {"ipv6": "2001:db8:1::5/64", "gateway6": "2001:db8:2::1"}}}},
        "cloud_init.ip_configs.net0.gateway6",
        "neither inside 2001:db8:1::/64 nor link-local",
    ),
    (
        "ipv4-network-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.0/24"}}}},
        "cloud_init.ip_configs.net0.ipv4",
        "10.10.0.0 is the network address of 10.10.0.0/24",
    ),
    (
        "ipv4-broadcast-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.255/24", "gateway4": "10.10.0.1"}}}},
        "cloud_init.ip_configs.net0.ipv4",
        "10.10.0.255 is the broadcast address of 10.10.0.0/24",
    ),
    (
        "ipv6-subnet-router-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv6": "2001:db8::/64"}}}},
        "cloud_init.ip_configs.net0.ipv6",
        "subnet-router anycast address",
    ),
    (
        "ipv4-gateway-is-own-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway4": "10.10.0.11"}}}},
        "cloud_init.ip_configs.net0.gateway4",
        "is the VM's own address",
    ),
    (
        "ipv6-gateway-is-own-address",
        {"cloud_init": {"ip_configs": {"net0": {"ipv6": "2001:db8::5/64", "gateway6": "2001:db8::5"}}}},
        "cloud_init.ip_configs.net0.gateway6",
        "is the VM's own address",
    ),
    (
        "mtu-on-a-non-virtio-nic",
        {"nics": {"net0": {"bridge": "vmbr0", "model": "e1000", "mtu": 9000}}},
        "nics.net0.mtu",
        "only virtio NICs take an MTU",
    ),
    (
        "cicustom-not-a-volume",
        {"cloud_init": {"custom_snippet": "user=user-data.yaml"}},
        "cloud_init.custom_snippet",
        "should match pattern",
    ),
    ("storage-id-trailing-dash", {"storage": "local-"}, "storage", "should match pattern"),
    (
        "description-too-long",
        {"description": "\u20ac" * 3000},  # 3000 characters, 9000 bytes
        "description",
        "is 9000 bytes as UTF-8; with the ownership",
    ),
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


def _writes(pve: Any, since: int) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in pve.requests[since:] if m != "GET"]


def test_disk_smaller_than_the_template_is_refused_before_the_clone(pve: Any, ops: VmOperations) -> None:
    # Only the template's config knows its disk size (10 GiB): it is read before the clone.
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError) as raised:
        ops.create(vm_spec(disks={"scsi0": {"size_gib": 5}}))

    assert "disks.scsi0.size_gib" in raised.value.errors
    assert "the template's scsi0 is 10 GiB" in str(raised.value)
    assert _writes(pve, before) == [], "something was written for a disk that cannot fit"
    assert_accounted(pve)


# (id, input overrides, simulator change, field path in the error, text of its reason)
PLACEMENT: list[tuple[str, dict[str, Any], Any, str, str]] = [
    ("unknown-node", {"node": "pve3", "allowed_nodes": []}, None, "node", "'pve3' is not a node of this cluster"),
    (
        "unknown-allowed-node",
        {"allowed_nodes": ["pve1", "pve9"]},
        None,
        "allowed_nodes",
        "'pve9' is not a node of this cluster",
    ),
    ("unknown-storage", {"storage": "ceph-pool"}, None, "storage", "no storage 'ceph-pool' in this cluster"),
    (
        "storage-without-images",
        {"storage": "local"},
        None,
        "storage",
        "storage 'local' does not take VM disk images",
    ),
    (
        "unknown-disk-storage",
        {"disks": {"scsi0": {"size_gib": 10}, "scsi1": {"size_gib": 20, "storage": "nvme"}}},
        None,
        "disks.scsi1.storage",
        "no storage 'nvme'",
    ),
    ("unknown-pool", {"pool": "k8s-vms"}, None, "pool", "no pool 'k8s-vms' is visible"),
    (
        "unknown-bridge",
        {"nics": {"net0": {"bridge": "vmbr0"}, "net1": {"bridge": "vmbr7"}}},
        None,
        "nics.net1.bridge",
        "node pve1 has no bridge or SDN vnet 'vmbr7'",
    ),
    (
        "bridge-missing-on-the-chosen-node",
        {"node": "pve2", "allowed_nodes": []},
        lambda pve: pve.host_bridges["pve2"].remove("vmbr0"),
        "nics.net0.bridge",
        "node pve2 has no bridge or SDN vnet 'vmbr0'",
    ),
    (
        "more-vcpus-than-the-node-has",
        {"cpu": {"cores": 4, "sockets": 2, "type": "host"}},
        None,
        "cpu",
        "2 socket(s) x 4 cores = 8 vCPUs; node pve1 has 4",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "change", "path", "needle"), [c[1:] for c in PLACEMENT], ids=[c[0] for c in PLACEMENT]
)
def test_placement_the_cluster_refuses_is_found_before_any_write(
    pve: Any, ops: VmOperations, overrides: dict[str, Any], change: Any, path: str, needle: str
) -> None:
    if change is not None:
        change(pve)
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError) as raised:
        ops.create(vm_spec(**{"node": "pve1", "allowed_nodes": [], **overrides}))

    assert list(raised.value.errors) == [path], raised.value.errors
    assert needle in raised.value.errors[path], raised.value.errors
    assert f"{path}: " in str(raised.value)
    assert _writes(pve, before) == [], "something was written for a placement Proxmox would refuse"
    assert_accounted(pve)


def test_offline_storage_is_found_before_the_clone(pve: Any, ops: VmOperations) -> None:
    pve.storages["local-lvm"]["active"] = 0
    before = len(pve.requests)

    with pytest.raises(ProxmoxStorageUnavailableError) as raised:
        ops.create(vm_spec(storage="local-lvm"))

    assert raised.value.errors == {"storage": "storage 'local-lvm' on node pve1 is not online (status: unknown)"}
    assert _writes(pve, before) == []
    assert_accounted(pve)


def test_placement_checks_take_one_read_of_each_kind(pve: Any, ops: VmOperations) -> None:
    ops.client.post("/pools", poolid="k8s-vms")
    before = len(pve.requests)

    state = ops.create(vm_spec(node="pve1", allowed_nodes=[], pool="k8s-vms", storage="local-lvm"))

    reads_before_clone: list[str] = []
    for method, path, _ in pve.requests[before:]:
        if method != "GET":
            break
        reads_before_clone.append(path.removeprefix("/api2/json"))
    assert sorted(reads_before_clone) == sorted(
        ["/cluster/resources", "/nodes/pve1/qemu/9000/config", "/pools", "/nodes/pve1/network", "/cluster/nextid"]
    ), reads_before_clone
    assert_accounted(pve, state)


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


@pytest.mark.parametrize(
    ("change", "path", "needle"),
    [
        ({"nics": {"net0": {"bridge": "vmbr0", "vlan": 10}, "net1": {"bridge": "vmbr9"}}}, "nics.net1.bridge", "vmbr9"),
        (
            {"disks": {"scsi0": {"size_gib": 10}, "scsi1": {"size_gib": 5, "storage": "nvme"}}},
            "disks.scsi1.storage",
            "no storage 'nvme'",
        ),
        ({"cpu": {"cores": 8, "sockets": 1, "type": "host"}}, "cpu", "8 vCPUs; node pve1 has 4"),
    ],
    ids=["new-nic-on-a-missing-bridge", "new-disk-on-a-missing-storage", "more-vcpus-than-the-node"],
)
def test_an_update_the_cluster_would_refuse_writes_nothing(
    pve: Any, ops: VmOperations, change: dict[str, Any], path: str, needle: str
) -> None:
    spec = vm_spec(node="pve1", allowed_nodes=[])
    state = ops.create(spec)
    new = vm_spec(marker=spec.marker, node="pve1", allowed_nodes=[], **change)
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError) as raised:
        ops.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))

    assert list(raised.value.errors) == [path] and needle in raised.value.errors[path], raised.value.errors
    assert _writes(pve, before) == []
    assert_accounted(pve, state)
