"""ProxmoxVm operations against the fakepve simulator over verified HTTPS: the full lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_plan import plan
from tests.support.specs import vm_spec


def vms_of(pve: Any) -> dict[int, Any]:
    """Non-template VMs in the simulator, by VMID."""
    return {vm.vmid: vm for vm in pve.vms if not vm.template}


def test_full_lifecycle(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)

    assert 1000 <= state.vmid <= 1999
    vm = vms_of(pve)[state.vmid]
    assert vm.status == "running"
    assert state.status == "running"
    assert state.ip_addresses == ["10.10.0.11"]
    assert set(vm.config["tags"].split(";")) == {"k8s", "control-plane", spec.marker_tag}
    assert vm.config["cores"] == "2" and vm.config["memory"] == "4096"
    assert "bridge=vmbr0" in vm.config["net0"] and "tag=10" in vm.config["net0"]
    assert vm.config["ipconfig0"] == "ip=10.10.0.11/24,gw=10.10.0.1"
    assert spec.marker in vm.config["description"]
    assert state.macs["net0"] == vm.config["net0"].split(",")[0].split("=")[1].upper()

    # Update in place: cores, memory, tags, disk grow, a second NIC.
    new = vm_spec(
        marker=spec.marker,
        cpu={"cores": 4, "sockets": 1, "type": "x86-64-v2-AES"},
        memory_mib=8192,
        tags=["k8s", "control-plane", "prod"],
        disks={"scsi0": {"size_gib": 20}},
        nics={"net0": {"bridge": "vmbr0", "vlan": 10}, "net1": {"bridge": "vmbr1", "vlan": 20, "mtu": 9000}},
    )
    change = plan(spec, new, current_node=state.node, current_vmid=state.vmid)
    assert not change.replaces
    assert set(change.changed_fields) == {"cpu", "memory_mib", "tags", "disks", "nics"}
    before = len(pve.requests)
    updated = ops.update(state.vmid, spec, new, change)
    sent = [(m, p, b) for m, p, b in pve.requests[before:]]
    # The simulator does not apply resizes (a known gap): prove the request instead.
    resizes = [b for m, p, b in sent if m == "PUT" and p.endswith(f"/qemu/{state.vmid}/resize")]
    assert len(resizes) == 1 and b"size=20G" in resizes[0] and b"disk=scsi0" in resizes[0]
    assert vm.config["tags"].split(";") == sorted(["k8s", "control-plane", "prod", spec.marker_tag])
    # A running VM takes CPU, memory and NIC changes at the next boot: they are pending.
    assert vm.pending["cores"] == "4" and vm.pending["memory"] == "8192"
    assert "bridge=vmbr1" in vm.pending["net1"] and "mtu=9000" in vm.pending["net1"]
    assert updated.reboot_pending is True

    # Out-of-band change, then read shows the drift.
    vm.apply_pending()
    # What PVE does on resize and fakepve does not (a known gap): the disk now has its new size.
    vm.config["scsi0"] = vm.config["scsi0"].replace("size=10G", "size=20G")
    vm.config["cores"] = "6"
    vm.config["tags"] = vm.config["tags"].replace("prod", "manual")
    found = ops.read(state.vmid, new)
    assert found is not None
    now_state, refreshed = found
    assert refreshed.cpu.cores == 6
    assert "manual" in refreshed.tags and "prod" not in refreshed.tags
    drift = plan(refreshed, new, current_node=now_state.node, current_vmid=state.vmid)
    assert set(drift.changed_fields) == {"cpu", "tags"}
    assert now_state.reboot_pending is False

    ops.delete(state.vmid, new)
    assert state.vmid not in vms_of(pve)
    assert ops.read(state.vmid, new) is None


def test_read_of_a_vm_that_someone_else_reused_is_gone(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    other = vm_spec(marker="0" * 32)
    assert ops.read(state.vmid, other) is None
    # Delete with the wrong identity leaves the VM alone.
    ops.delete(state.vmid, other)
    assert state.vmid in vms_of(pve)


def test_tag_order_and_case_never_differ(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec(tags=["Zeta", "alpha", "k8s"])
    state = ops.create(spec)
    found = ops.read(state.vmid, spec)
    assert found is not None
    _, refreshed = found
    assert refreshed.tags == ["alpha", "k8s", "zeta"]
    assert not plan(refreshed, spec, current_node=state.node, current_vmid=state.vmid).has_changes


def test_disk_shrink_is_refused_naming_the_disk(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec(disks={"scsi0": {"size_gib": 10}})
    state = ops.create(spec)
    from providers.proxmox.vm_plan import PlanError

    with pytest.raises(PlanError, match=r"disks\.scsi0\.size_gib"):
        plan(
            spec,
            vm_spec(marker=spec.marker, disks={"scsi0": {"size_gib": 5}}),
            current_node=state.node,
            current_vmid=state.vmid,
        )


def test_foreign_scsi_disks_are_never_touched(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    vm = vms_of(pve)[state.vmid]
    vm.config["scsi5"] = "local-lvm:vm-9999-pvc-abc,size=8G,wwn=0x5000c500"  # hot-plugged by the CSI driver
    found = ops.read(state.vmid, spec)
    assert found is not None
    _, refreshed = found
    assert "scsi5" not in refreshed.disks
    new = vm_spec(marker=spec.marker, memory_mib=6144)
    before = len(pve.requests)
    ops.update(state.vmid, refreshed, new, plan(refreshed, new, current_node=state.node, current_vmid=state.vmid))
    bodies = b" ".join(b for _, _, b in pve.requests[before:])
    assert b"scsi5" not in bodies
    assert vm.config["scsi5"].startswith("local-lvm:vm-9999-pvc-abc")


def test_stop_and_start_follow_started(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    stopped = vm_spec(marker=spec.marker, started=False)
    after = ops.update(state.vmid, spec, stopped, plan(spec, stopped, current_node=state.node, current_vmid=state.vmid))
    assert after.status == "stopped"
    assert vms_of(pve)[state.vmid].status == "stopped"
