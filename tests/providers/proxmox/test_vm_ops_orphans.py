"""No VM that no state accounts for: rollbacks that meet a busy VM, and half-made VMs of changed inputs.

Against fakepve over verified HTTPS. Every test ends with ``assert_accounted``: each non-template VM the
simulator holds is one a returned state names (none after a failed create), or a foreign one the test
put there and expects untouched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fakepve.model import TaskError

from providers.proxmox.errors import ProxmoxTimeoutError
from providers.proxmox.vm_config import description_with_marker
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_spec import Timeouts, VmSpec
from tests.support.faults import assert_accounted, finished_tasks, requests_matching, sim_vms
from tests.support.specs import vm_spec


def _clone_by_hand(ops: VmOperations, spec: VmSpec, vmid: int, *, node: str = "pve1", template: int = 9000) -> None:
    """What a create killed right after its clone leaves: the marker and owner in the description, no tags."""
    ops.client.call_task(
        "POST",
        f"/nodes/{node}/qemu/{template}/clone",
        {"newid": vmid, "name": spec.name, "description": description_with_marker(spec), "full": True},
        timeout=30,
    )


def _destroy_checks_running_under_the_lock(pve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the simulator's destroy worker refuse a running VM once it holds the lock, as PVE's does.

    qemu-server's destroy checks "is running" again inside the worker; fakepve checks only before it, so a
    destroy task queued behind a start would delete the VM that start just booted.
    """
    task = pve.task

    async def checked_task(node: str, ttype: str, tid: Any, user: str, body: Any, vm: Any = None, **kw: Any) -> Any:
        if ttype != "qmdestroy" or vm is None:
            return await task(node, ttype, tid, user, body, vm=vm, **kw)

        async def refuse_running() -> Any:
            if vm.status == "running":
                raise TaskError(f"VM {vm.vmid} is running - destroy failed")
            return await body()

        return await task(node, ttype, tid, user, refuse_running, vm=vm, **kw)

    monkeypatch.setattr(pve, "task", checked_task)


def test_rollback_outwaits_a_start_that_outlasted_its_timeout(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guest takes 20 PVE seconds to start (1 s here) and holds the VM's lock meanwhile; the create waits
    # 0.3 s. Before, the rollback's delete met the lock (or, later, the VM the start left running) and gave
    # up, leaving a VM that only a re-run of the same resource would ever adopt.
    pve.time_scale = 0.05
    slow_start = pve._do_start

    async def slowly(vm: Any, user: Any, p: Any) -> Any:
        vm.start_secs = 20
        return await slow_start(vm, user, p)

    monkeypatch.setattr(pve, "_do_start", slowly)
    _destroy_checks_running_under_the_lock(pve, monkeypatch)
    # Timeouts below the inputs' minimum of 10 s, so the scenario lasts a second or two.
    short = Timeouts.model_construct(clone=60, config=30, start=0.3, shutdown=30, delete=20)
    spec = vm_spec().model_copy(update={"timeouts": short})
    started = time.monotonic()

    with pytest.raises(ProxmoxTimeoutError, match=r"did not finish within 0\.3s") as raised:
        ops.create(spec)

    assert "could not be removed" not in str(raised.value), raised.value
    starts = finished_tasks(pve, "qmstart")
    assert [t["exitstatus"] for t in starts] == ["OK"], "the start task was expected to finish by itself"
    assert requests_matching(pve, "DELETE", r"/tasks/"), "the rollback did not ask PVE to stop the start task"
    assert time.monotonic() - started < 15
    assert_accounted(pve)


def test_half_made_vm_of_other_placement_inputs_is_replaced(pve: Any, ops: VmOperations) -> None:
    # A killed run with the VMID range 1000-1999 cloned VM 1234; the next run has another range, so another
    # marker. Before, the half-made VM was never found again: adopted by nobody, deleted by nobody.
    old = vm_spec(vmid_range={"start": 1000, "end": 1999})
    _clone_by_hand(ops, old, 1234)
    new = vm_spec(marker="f" * 32, vmid_range={"start": 3000, "end": 3999})
    assert new.owner == old.owner and new.marker != old.marker

    state = ops.create(new)

    assert 3000 <= state.vmid <= 3999
    assert 1234 not in sim_vms(pve), "the half-made VM of the earlier run was left behind"
    assert finished_tasks(pve, "qmdestroy"), "the half-made VM was not destroyed through PVE"
    assert_accounted(pve, state)


def test_a_namesake_of_another_owner_or_with_an_ownership_tag_is_left_alone(pve: Any, ops: VmOperations) -> None:
    # Someone else's VM of the same name (another stack), and a finished VM of this owner under another
    # marker (a state may hold it: a create-before-delete replacement) are not half-made VMs of this run.
    other_stack = vm_spec(owner="proxmox-k8s-platform/prod/cp-1")
    _clone_by_hand(ops, other_stack, 1500)
    finished = vm_spec(marker="e" * 32)
    done = ops.create(finished)
    new = vm_spec(marker="f" * 32, vmid_range={"start": 3000, "end": 3999})

    state = ops.create(new)

    assert sim_vms(pve)[1500].config["description"] == description_with_marker(other_stack)
    assert done.vmid in sim_vms(pve)
    assert_accounted(pve, state, done, others=[1500])
