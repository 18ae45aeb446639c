"""Fault scenarios of ProxmoxVm create/update/delete against fakepve over verified HTTPS.

Every scenario ends either in success (after retries) or in a clear, typed error, and every test checks the
no-orphan invariant with ``assert_accounted``: each non-template VM the simulator holds is one that the
returned state names, and after a failed create there is none.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fakepve.model import PveError

from providers.proxmox.client import ProxmoxClient, RetryPolicy
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import (
    ProxmoxConnectionError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNodeUnavailableError,
    ProxmoxPermissionError,
    ProxmoxQuorumError,
    ProxmoxStorageFullError,
    ProxmoxTaskError,
    ProxmoxValidationError,
    is_kind,
)
from providers.proxmox.vm_config import description_with_marker
from providers.proxmox.vm_ops import CloneSlots, VmOperations
from providers.proxmox.vm_plan import plan
from providers.proxmox.vm_spec import VmSpec
from tests.conftest import FAST
from tests.support.faults import (
    Lose,
    assert_accounted,
    body_field,
    finished_tasks,
    lose_answers,
    on_sim,
    requests_matching,
    sim_vms,
    wait_until,
)
from tests.support.simulator import TOKEN_ID
from tests.support.specs import vm_spec

GIB = 1024**3
CLONE = r"/qemu/\d+/clone$"
CONFIG_TEMPLATE = "/nodes/{node}/qemu/{vmid}/config"
CLONE_TEMPLATE = "/nodes/{node}/qemu/{vmid}/clone"

# Lock waits short enough that "left locked" scenarios end within a second or two.
SHORT_LOCK = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, lock_wait=1.0)


def make_ops(
    settings: ConnectionSettings,
    *,
    retry: RetryPolicy = FAST,
    sleep: Callable[[float], None] = time.sleep,
    clone_slots: CloneSlots | None = None,
    rng: random.Random | None = None,
) -> VmOperations:
    client = ProxmoxClient(settings, retry=retry, task_poll_interval=0.05)
    return VmOperations(client, clone_slots=clone_slots or CloneSlots(2), poll_interval=0.02, sleep=sleep, rng=rng)


def newids(pve: Any, since: int = 0) -> list[int]:
    """The ``newid`` of every clone request, in order."""
    return [int(body_field(b, "newid") or 0) for _, _, b in requests_matching(pve, "POST", CLONE, since=since)]


def configured_like(vm: Any, spec: VmSpec) -> None:
    """The VM carries the spec's identity and settings (config or pending: a running VM takes some at boot)."""
    effective = {**vm.config, **{k: v for k, v in vm.pending.items() if v is not None}}
    assert spec.marker in effective["description"]
    assert set(effective["tags"].split(";")) == {*spec.tags, spec.marker_tag}
    assert effective["cores"] == str(spec.cpu.cores)
    assert effective["memory"] == str(spec.memory_mib)


# ====================================================================== locks


def test_update_waits_out_a_snapshot_lock(pve: Any, settings: ConnectionSettings, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    vm = sim_vms(pve)[state.vmid]
    pve.snapshot_lock(state.vmid)
    seen_locks: list[str | None] = []

    def sleep_then_unlock(secs: float) -> None:
        # The first back-off of the provider is when "the snapshot finishes".
        seen_locks.append(vm.lock)
        pve.unlock(state.vmid)
        time.sleep(secs)

    waiting = make_ops(settings, sleep=sleep_then_unlock)
    new = vm_spec(marker=spec.marker, memory_mib=8192)
    updated = waiting.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))

    assert seen_locks and seen_locks[0] == "snapshot", "the update never met the lock"
    assert vm.pending.get("memory") == "8192"
    assert updated.vmid == state.vmid
    assert_accounted(pve, updated)


def test_delete_waits_out_a_backup(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    vm = sim_vms(pve)[state.vmid]
    pve.time_scale = 0.01  # the backup below lasts 30 PVE seconds = 0.3 s
    on_sim(pve, pve.backup(state.vmid, secs=30))
    wait_until(lambda: vm.lock == "backup", what="the backup to lock the VM")

    ops.delete(state.vmid, spec)

    backups = finished_tasks(pve, "vzdump")
    assert [t["exitstatus"] for t in backups] == ["OK"], "the delete broke into the backup"
    assert all(t["exitstatus"] == "OK" for t in finished_tasks(pve, "qmdestroy"))
    assert_accounted(pve)


def test_create_waits_out_a_backup_of_the_template(pve: Any, ops: VmOperations) -> None:
    template = pve.vm(9000)
    pve.time_scale = 0.01
    on_sim(pve, pve.backup(9000, secs=30))
    wait_until(lambda: template.lock == "backup", what="the backup to lock the template")
    before = len(pve.requests)

    spec = vm_spec()
    state = ops.create(spec)

    assert len(newids(pve, before)) >= 2, "the clone was never refused while the template was locked"
    assert finished_tasks(pve, "vzdump")[0]["exitstatus"] == "OK"
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


def test_template_left_locked_is_a_clear_lock_error(pve: Any, settings: ConnectionSettings) -> None:
    pve.snapshot_lock(9000, "backup")
    quick = make_ops(settings, retry=SHORT_LOCK)
    before = len(pve.requests)
    started = time.monotonic()

    with pytest.raises(ProxmoxLockedError, match=r"VM is locked \(backup\)"):
        quick.create(vm_spec())

    # One lock wait of the client, not one per fresh VMID.
    assert time.monotonic() - started < 3 * SHORT_LOCK.lock_wait
    assert len(set(newids(pve, before))) == 1
    assert_accounted(pve)


def test_vm_left_locked_is_a_clear_lock_error(pve: Any, settings: ConnectionSettings, ops: VmOperations) -> None:
    spec = vm_spec(timeouts={"clone": 60, "config": 10, "start": 30, "shutdown": 30, "delete": 10})
    state = ops.create(spec)
    pve.snapshot_lock(state.vmid)
    new = vm_spec(marker=spec.marker, memory_mib=8192, timeouts=spec.timeouts.model_dump())
    started = time.monotonic()

    with pytest.raises(ProxmoxError) as raised:
        ops.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))

    assert isinstance(raised.value, ProxmoxLockedError), repr(raised.value)
    assert "snapshot" in str(raised.value)
    assert time.monotonic() - started < spec.timeouts.config + 5
    assert sim_vms(pve)[state.vmid].pending == {}, "a locked VM was changed"

    # A lock an operator must clear (an interrupted suspend) fails a delete at once.
    pve.snapshot_lock(state.vmid, "suspended")
    started = time.monotonic()
    with pytest.raises(ProxmoxLockedError, match=r"suspended.*qm unlock"):
        ops.delete(state.vmid, spec)
    assert time.monotonic() - started < 2
    assert_accounted(pve, state)


def test_config_lock_timeout_is_retried(pve: Any, ops: VmOperations) -> None:
    pve.fail("POST", CONFIG_TEMPLATE, error="config_lock_timeout", times=2)
    spec = vm_spec()

    state = ops.create(spec)

    configs = requests_matching(pve, "POST", rf"/qemu/{state.vmid}/config$")
    assert len(configs) == 3, "two lock timeouts, then the write"
    assert ("POST", CONFIG_TEMPLATE) not in pve.failures
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


# ====================================================================== task errors


def test_clone_task_lock_timeout_is_retried_with_the_same_vmid(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fakepve's catalogue has no in-task error for a qemu clone, so make the worker fail the way PVE's does
    # under parallel clones: the storage allocation lock times out (reference 2.9), once.
    real_alloc = pve._qm_alloc
    calls: list[int] = []

    def alloc_once_locked(sid: str, vmid: int, *args: Any, **kwargs: Any) -> Any:
        calls.append(vmid)
        if len(calls) == 1:
            raise PveError(500, f"can't lock file '/var/lock/pve-manager/pve-storage-{sid}' - got timeout")
        return real_alloc(sid, vmid, *args, **kwargs)

    monkeypatch.setattr(pve, "_qm_alloc", alloc_once_locked)
    spec = vm_spec()

    state = ops.create(spec)

    clones = finished_tasks(pve, "qmclone")
    assert [t["exitstatus"].startswith("clone failed: can't lock file") for t in clones] == [True, False]
    ids = newids(pve)
    # A temporary failure is not a VMID collision: the failed worker released the id, so it is reused.
    assert len(ids) == 2 and ids[0] == ids[1], f"not retried as the same clone: {ids}"
    assert state.vmid == ids[1]
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


@pytest.mark.parametrize(
    ("error", "fresh_vmid"),
    [
        ("unable_create_config_file_already", True),
        ("clone_failed", False),
        ("config_lock_timeout", False),
        ("locked", False),
    ],
)
def test_refused_clone_is_retried_once(pve: Any, ops: VmOperations, error: str, fresh_vmid: bool) -> None:
    pve.fail("POST", CLONE_TEMPLATE, error=error, times=1)
    spec = vm_spec()

    state = ops.create(spec)

    ids = newids(pve)
    assert len(ids) == 2
    assert (ids[0] != ids[1]) is fresh_vmid
    assert ("POST", CLONE_TEMPLATE) not in pve.failures
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


def test_persistent_config_failure_rolls_the_clone_back(pve: Any, ops: VmOperations) -> None:
    pve.fail("POST", CONFIG_TEMPLATE, error="failed_update", times=1000)

    with pytest.raises(ProxmoxError, match="failed to update VM"):
        ops.create(vm_spec())

    cloned = newids(pve)
    assert len(cloned) == 1
    assert requests_matching(pve, "DELETE", rf"/qemu/{cloned[0]}$"), "the half-made VM was not destroyed"
    assert_accounted(pve)


def test_config_task_error_rolls_the_clone_back_without_retrying(pve: Any, ops: VmOperations) -> None:
    # The token may do everything except change NICs; fakepve checks config privileges inside the qmconfig
    # worker, so the write ends as a task error.
    from fakepve.shapes import PRIVILEGES

    pve.grant(TOKEN_ID, "/", *[p for p in PRIVILEGES if p != "VM.Config.Network"])
    started = time.monotonic()

    with pytest.raises(ProxmoxError) as raised:
        ops.create(vm_spec())

    assert is_kind(raised.value, ProxmoxPermissionError), repr(raised.value)
    assert "VM.Config.Network" in str(raised.value)
    assert len(finished_tasks(pve, "qmconfig")) == 1, "a permission failure was retried"
    assert time.monotonic() - started < 5
    assert_accounted(pve)


def test_start_failure_rolls_back_quickly(pve: Any, ops: VmOperations) -> None:
    pve.fail("POST", "/nodes/{node}/qemu/{vmid}/status/start", error="qemu_exited_code")
    started = time.monotonic()

    with pytest.raises(ProxmoxTaskError, match="QEMU exited with code 1"):
        ops.create(vm_spec())

    starts = finished_tasks(pve, "qmstart")
    assert 1 <= len(starts) <= FAST.attempts, f"a failing start was dispatched {len(starts)} times"
    assert time.monotonic() - started < 5
    assert_accounted(pve)


# ====================================================================== cluster trouble


def test_lost_quorum_fails_fast_and_leaves_nothing(pve: Any, ops: VmOperations) -> None:
    pve.lose_quorum()
    before = len(pve.requests)
    started = time.monotonic()

    with pytest.raises(ProxmoxQuorumError, match="no quorum"):
        ops.create(vm_spec())

    assert time.monotonic() - started < 1
    assert len(newids(pve, before)) == 1, "a quorum failure was retried"
    assert len(pve.requests) - before <= 8
    assert_accounted(pve)


def test_quorum_lost_after_the_clone_rolls_back(pve: Any, ops: VmOperations) -> None:
    pve.fail("POST", CONFIG_TEMPLATE, error="no_quorum")

    with pytest.raises(ProxmoxQuorumError):
        ops.create(vm_spec())

    assert len(requests_matching(pve, "POST", r"/qemu/\d+/config$")) == 1
    assert_accounted(pve)


def test_quorum_loss_stops_update_and_delete_cleanly(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    pve.lose_quorum()
    new = vm_spec(marker=spec.marker, memory_mib=8192)

    with pytest.raises(ProxmoxQuorumError):
        ops.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))
    with pytest.raises(ProxmoxQuorumError):
        ops.delete(state.vmid, spec)
    assert_accounted(pve, state)

    pve.regain_quorum()
    ops.delete(state.vmid, spec)
    assert_accounted(pve)


def test_only_allowed_node_offline_is_a_clear_error(pve: Any, ops: VmOperations) -> None:
    pve.set_node_offline("pve2")
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError, match=r"allowed_nodes: none of \['pve2'\] is an online node"):
        ops.create(vm_spec(allowed_nodes=["pve2"]))

    assert not newids(pve, before)
    assert_accounted(pve)


def test_pinned_node_offline_fails_fast(pve: Any, ops: VmOperations) -> None:
    pve.set_node_offline("pve2")

    with pytest.raises(ProxmoxNodeUnavailableError, match="No route to host"):
        ops.create(vm_spec(node="pve2", allowed_nodes=[]))

    assert len(newids(pve)) <= 1
    assert_accounted(pve)


@pytest.mark.parametrize(("offline", "expected"), [("pve2", "pve1"), ("pve1", "pve2")])
def test_create_goes_to_the_online_allowed_node(pve: Any, ops: VmOperations, offline: str, expected: str) -> None:
    pve.set_node_offline(offline)
    spec = vm_spec(allowed_nodes=["pve1", "pve2"])

    state = ops.create(spec)

    assert state.node == expected
    assert sim_vms(pve)[state.vmid].node == expected
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


@pytest.mark.parametrize("guest", ["slow", "no-acpi"])
def test_delete_stops_a_guest_that_does_not_shut_down(pve: Any, ops: VmOperations, guest: str) -> None:
    spec = vm_spec()
    state = ops.create(spec)
    vm = sim_vms(pve)[state.vmid]
    if guest == "slow":
        vm.shutdown_secs = 100_000
    else:
        vm.acpi = False
    pve.time_scale = 0.001  # the 30 PVE-second shutdown timeout of the spec lasts 30 ms
    started = time.monotonic()

    ops.delete(state.vmid, spec)

    shutdowns = finished_tasks(pve, "qmshutdown")
    assert len(shutdowns) == 1 and shutdowns[0]["exitstatus"] == "OK"
    assert any("terminating now" in line for line in shutdowns[0]["log"]), shutdowns[0]["log"]
    assert time.monotonic() - started < 5
    assert_accounted(pve)


@pytest.mark.parametrize("seed", [40, 59, 83])
def test_flaky_network_create_read_update_delete(
    pve: Any, settings: ConnectionSettings, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # Seeds whose drops hit writes too (a clone, config, start, shutdown or delete whose answer is lost),
    # not only reads that any retry covers.
    timeouts = {"clone": 10, "config": 30, "start": 30, "shutdown": 30, "delete": 60}
    spec = vm_spec(timeouts=timeouts)
    flaky = make_ops(settings, rng=random.Random(11))
    lost: list[tuple[str, str]] = []
    send = flaky.client._send

    def recording_send(method: str, path: str, params: dict[str, Any]) -> Any:
        try:
            return send(method, path, params)
        except ProxmoxConnectionError:
            lost.append((method, path))
            raise

    monkeypatch.setattr(flaky.client, "_send", recording_send)
    pve.flaky_network(drop_rate=0.2, seed=seed)
    pve._random.seed(seed)  # fakepve applies the seed when it starts; this simulator is already serving

    state = flaky.create(spec)
    assert_accounted(pve, state)
    configured_like(sim_vms(pve)[state.vmid], spec)

    found = flaky.read(state.vmid, spec)
    assert found is not None and found[0].vmid == state.vmid

    new = vm_spec(marker=spec.marker, memory_mib=8192, timeouts=timeouts)
    updated = flaky.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))
    assert sim_vms(pve)[state.vmid].pending.get("memory") == "8192"
    assert_accounted(pve, updated)

    flaky.delete(state.vmid, new)
    assert_accounted(pve)
    lost_writes = [f"{m} {p}" for m, p in lost if m != "GET"]
    assert lost_writes, f"no write lost its answer ({len(lost)} reads did): the scenario proved too little"


def test_lost_clone_answer_adopts_the_clone_it_made(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clone ran but its answer was lost, and the network stays bad for longer than one request's retries.
    clone = Lose("POST", r"/clone$", executed=True)
    listing = Lose("GET", r"^/cluster/resources$", times=FAST.attempts + 1, executed=False, when=lambda: clone.lost > 0)
    lose_answers(monkeypatch, ops.client, clone, listing)
    spec = vm_spec()

    state = ops.create(spec)

    assert clone.lost == 1 and listing.lost == FAST.attempts + 1
    assert newids(pve) == [state.vmid], "cloned a second time after a lost answer"
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


def test_clone_request_lost_before_it_ran_is_retried_promptly(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = Lose("POST", r"/clone$", executed=False)
    lose_answers(monkeypatch, ops.client, clone)
    spec = vm_spec(timeouts={"clone": 30, "config": 30, "start": 30, "shutdown": 30, "delete": 60})
    started = time.monotonic()

    state = ops.create(spec)

    assert clone.lost == 1
    assert time.monotonic() - started < 5, "waited out the whole clone timeout for a clone that never ran"
    assert newids(pve) == [state.vmid]
    assert_accounted(pve, state)


def test_config_answer_lost_after_the_write_is_written_again(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Lose("POST", r"/config$", executed=True)
    lose_answers(monkeypatch, ops.client, config)
    spec = vm_spec()

    state = ops.create(spec)

    assert config.lost == 1
    configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, state)


@pytest.mark.parametrize("executed", [True, False], ids=["answer-lost", "request-lost"])
def test_delete_survives_lost_answers(
    pve: Any, ops: VmOperations, monkeypatch: pytest.MonkeyPatch, executed: bool
) -> None:
    spec = vm_spec(timeouts={"clone": 60, "config": 30, "start": 30, "shutdown": 30, "delete": 10})
    state = ops.create(spec)
    shutdown = Lose("POST", r"/status/shutdown$", executed=executed)
    delete = Lose("DELETE", rf"/qemu/{state.vmid}$", executed=executed)
    lose_answers(monkeypatch, ops.client, shutdown, delete)

    ops.delete(state.vmid, spec)

    assert shutdown.lost == 1 and delete.lost == 1
    assert len(requests_matching(pve, "DELETE", rf"/qemu/{state.vmid}$")) == 1
    assert_accounted(pve)


def test_lifecycle_survives_expired_tickets(pve: Any, settings: ConnectionSettings) -> None:
    password = ConnectionSettings(
        endpoint=settings.endpoint,
        username="root@pam",
        password="secret",
        allow_password_login=True,
        ca_bundle=settings.ca_bundle,
        http_timeout=30,
    )
    ops = make_ops(password)
    spec = vm_spec()

    state = ops.create(spec)
    pve.revoke_tickets()
    found = ops.read(state.vmid, spec)
    assert found is not None
    pve.revoke_tickets()
    new = vm_spec(marker=spec.marker, memory_mib=8192)
    updated = ops.update(state.vmid, spec, new, plan(spec, new, current_node=state.node, current_vmid=state.vmid))
    assert_accounted(pve, updated)
    pve.revoke_tickets()
    ops.delete(state.vmid, new)

    logins = requests_matching(pve, "POST", r"/access/ticket$")
    assert len(logins) == 4, "one login, then exactly one per revocation"
    assert_accounted(pve)


def test_full_storage_fails_the_clone_and_leaves_nothing(pve: Any, ops: VmOperations) -> None:
    lvm = pve.storages["local-lvm"]
    lvm["avail"] = 1 * GIB
    volumes = dict(lvm["volumes"])

    with pytest.raises(ProxmoxError) as raised:
        ops.create(vm_spec())

    assert is_kind(raised.value, ProxmoxStorageFullError), repr(raised.value)
    assert "No space left on device" in str(raised.value)
    assert len(newids(pve)) == 1, "a full storage was retried with fresh VMIDs"
    assert lvm["avail"] == 1 * GIB and lvm["volumes"] == volumes, "the failed clone leaked a volume"
    assert_accounted(pve)


# ====================================================================== races and interrupted runs


class _MeetBeforeCloning(CloneSlots):
    """Clone slots that hold the first clone of each party until every party has its VMID."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__(2)
        self._barrier = barrier
        self._met = False

    @contextmanager
    def hold(self, node: str) -> Iterator[None]:
        if not self._met:
            self._met = True
            self._barrier.wait(timeout=10)
        with super().hold(node):
            yield


def test_nextid_race_between_two_runs(pve: Any, settings: ConnectionSettings) -> None:
    barrier = threading.Barrier(2)
    # Same random sequence: both runs probe, and are granted, the same VMID before either clones.
    parties = [
        make_ops(settings, clone_slots=_MeetBeforeCloning(barrier), rng=random.Random(5)),
        make_ops(settings, clone_slots=_MeetBeforeCloning(barrier), rng=random.Random(5)),
    ]
    specs = [vm_spec("race-a"), vm_spec("race-b")]
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        try:
            results[i] = parties[i].create(specs[i])
        except BaseException as exc:  # surfaced by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not any(isinstance(r, BaseException) for r in results), results
    ids = newids(pve)
    assert len(ids) == 3 and len(set(ids)) == 2, f"expected one lost race and a fresh VMID: {ids}"
    assert results[0].vmid != results[1].vmid
    for state, spec in zip(results, specs, strict=True):
        configured_like(sim_vms(pve)[state.vmid], spec)
    assert_accounted(pve, *results)


def _clone_by_hand(ops: VmOperations, spec: VmSpec, vmid: int, *, node: str = "pve1", template: int = 9000) -> None:
    """What a create that died right after its clone leaves: a VM with the marker in its description."""
    ops.client.call_task(
        "POST",
        f"/nodes/{node}/qemu/{template}/clone",
        {"newid": vmid, "name": spec.name, "description": description_with_marker(spec), "full": True},
        timeout=30,
    )


def test_create_adopts_the_vm_of_a_killed_run(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec()
    _clone_by_hand(ops, spec, 1234)
    before = len(pve.requests)

    state = ops.create(spec)

    assert state.vmid == 1234
    assert not newids(pve, before), "cloned again instead of adopting"
    vm = sim_vms(pve)[1234]
    assert vm.status == "running"
    configured_like(vm, spec)
    assert_accounted(pve, state)


def test_create_refuses_to_adopt_a_marked_vm_outside_its_nodes(pve: Any, ops: VmOperations) -> None:
    spec = vm_spec(allowed_nodes=["pve1"])
    _clone_by_hand(ops, spec, 1234, node="pve2", template=9001)
    before = len(pve.requests)

    with pytest.raises(ProxmoxValidationError, match=r"VM 1234 on pve2 carries this resource's ownership marker"):
        ops.create(spec)

    assert not newids(pve, before)
    assert not [r for r in pve.requests[before:] if r[0] != "GET"], "the marked VM was touched"
    assert_accounted(pve, others=[1234])
