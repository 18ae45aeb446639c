"""The whole program under Pulumi mocks: the management cluster's VMs bind the platform's security groups.

``ProxmoxCluster`` creates one group per node network; ``Platform`` hands their names to the
``ManagementCluster`` and their resources to its ``depends_on``. What the guest firewall then holds is
proven against the simulator (``tests/providers/proxmox/test_vm_ops_firewall.py``) and with the real CLI
(``tests/e2e``).
"""

from __future__ import annotations

from typing import Any

from tests.config.support import apply, good
from tests.test_main import run_program
from tools.recording import Recording, Registration


def vms(rec: Recording) -> dict[str, Registration]:
    return {r.inputs["name"]: r for r in rec.registrations if "template_tags" in r.inputs and "vmid_range" in r.inputs}


def security_groups(rec: Recording) -> dict[str, Registration]:
    """The platform's security group registrations by group name (not the tenants' own groups)."""
    return {
        r.inputs["group"]: r
        for r in rec.registrations
        if "group" in r.inputs and "rules" in r.inputs and not r.inputs["group"].startswith("k8s-t-")
    }


def stack(**networks: Any) -> dict[str, Any]:
    """The realistic test stack in render mode (the simulated VMs have no SSH to bootstrap over)."""
    raw = good()
    raw["localRender"] = "rendered/test"
    for name, value in networks.items():
        apply(raw, f"networks.{name}", value)
    return raw


def test_management_vms_bind_the_group_of_each_network_on_its_nic_and_wait_for_the_groups() -> None:
    rec, failure = run_program(stack(data={"bridge": "vmbr2", "vlan": 20, "cidr": "10.10.20.0/24"}))
    assert failure is None
    groups = security_groups(rec)
    assert set(groups) == {"k8s-mgmt", "k8s-data", "k8s-storage"}
    machines = vms(rec)
    assert len(machines) == 6
    for name, vm in machines.items():
        firewall = vm.inputs["firewall"]
        assert firewall["groups"] == {"net0": ["k8s-mgmt"], "net1": ["k8s-data"], "net2": ["k8s-storage"]}, name
        assert firewall["enabled"] is True and firewall["policy_in"] == "DROP", name
        assert set(firewall["groups"]) == set(vm.inputs["nics"]), name
        for group in groups.values():
            assert vm.depends_on(group), f"{name} does not depend on the security group {group.inputs['group']}"


def test_without_a_data_network_there_is_no_data_nic_and_no_data_group() -> None:
    rec, failure = run_program(stack())
    assert failure is None
    assert set(security_groups(rec)) == {"k8s-mgmt", "k8s-storage"}
    for name, vm in vms(rec).items():
        assert vm.inputs["firewall"]["groups"] == {"net0": ["k8s-mgmt"], "net2": ["k8s-storage"]}, name
