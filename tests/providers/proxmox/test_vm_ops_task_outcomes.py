"""Task outcomes against fakepve: "already done" succeeds at once, permanent failures fail fast and typed.

Each scenario runs twice: with the fast retry timings of the other fault tests, and with the production
defaults (``RetryPolicy()``, 1 s polls), because what these tests guard against is time: before task
outcomes were classified, an "already running" start or a failing QEMU cost about 15 s of backoff with
the production timings and was hidden by the fast ones. The production runs are marked
``production_timing`` (``pytest -m production_timing`` selects them) and take a few seconds in all.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fakepve.model import PveError

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import (
    ProxmoxError,
    ProxmoxGuestStartError,
    ProxmoxPermanentError,
    ProxmoxPermanentTaskError,
    ProxmoxStorageUnavailableError,
    is_kind,
)
from providers.proxmox.vm_config import description_with_marker
from providers.proxmox.vm_ops import CloneSlots, VmOperations
from tests.conftest import FAST
from tests.support.faults import assert_accounted, body_field, finished_tasks, requests_matching, sim_vms
from tests.support.specs import vm_spec

START = r"/qemu/\d+/status/start$"
CLONE = r"/qemu/\d+/clone$"


@pytest.fixture(
    params=[
        pytest.param("fast", id="fast"),
        pytest.param("production", id="production", marks=pytest.mark.production_timing),
    ]
)
def timed_ops(request: pytest.FixtureRequest, settings: ConnectionSettings) -> VmOperations:
    """VM operations with the fast test timings, or with the defaults a real deployment runs with."""
    if request.param == "fast":
        return VmOperations(
            ProxmoxClient(settings, retry=FAST, task_poll_interval=0.05), clone_slots=CloneSlots(2), poll_interval=0.02
        )
    return VmOperations(ProxmoxClient(settings), clone_slots=CloneSlots(2))


def _started_by_a_killed_run(ops: VmOperations, pve: Any, name: str = "cp-1") -> Any:
    """What a ``pulumi up`` killed after the start leaves: a cloned, configured, running VM not in state."""
    spec = vm_spec(name)
    state = ops.create(spec)
    assert sim_vms(pve)[state.vmid].status == "running"
    return spec, state


def test_starting_a_running_vm_succeeds_with_one_request(pve: Any, ops: VmOperations, timed_ops: VmOperations) -> None:
    spec, state = _started_by_a_killed_run(ops, pve)
    before = len(pve.requests)
    started = time.monotonic()

    timed_ops.power(state.node, state.vmid, "start", spec)

    elapsed = time.monotonic() - started
    assert len(requests_matching(pve, "POST", START, since=before)) == 1, "an 'already running' start was repeated"
    assert elapsed < 2.0, f"'already running' took {elapsed:.1f}s"
    assert finished_tasks(pve, "qmstart")[-1]["exitstatus"] == f"VM {state.vmid} already running"
    assert_accounted(pve, state)


def test_rerun_adopting_a_running_vm_starts_it_once(pve: Any, ops: VmOperations, timed_ops: VmOperations) -> None:
    spec, first = _started_by_a_killed_run(ops, pve)
    before = len(pve.requests)
    started = time.monotonic()

    state = timed_ops.create(spec)

    assert state.vmid == first.vmid and state.status == "running"
    assert len(requests_matching(pve, "POST", START, since=before)) == 1
    assert not requests_matching(pve, "POST", CLONE, since=before)
    assert time.monotonic() - started < 4.0
    assert_accounted(pve, state)


def test_qemu_refusing_to_start_fails_fast_and_typed(pve: Any, timed_ops: VmOperations) -> None:
    pve.fail("POST", "/nodes/{node}/qemu/{vmid}/status/start", error="qemu_exited_code", times=1000)
    started = time.monotonic()

    with pytest.raises(ProxmoxPermanentTaskError) as raised:
        timed_ops.create(vm_spec())

    elapsed = time.monotonic() - started
    err = raised.value
    assert is_kind(err, ProxmoxGuestStartError), repr(err)
    assert "(permanent)" in str(err) and "QEMU exited with code 1" in str(err)
    vmid = int(err.upid.split(":")[6])
    assert err.resource == f"VM {vmid} on node '{err.upid.split(':')[1]}'"
    assert err.task_log and err.task_log[-1].startswith("TASK ERROR"), err.task_log
    assert len(finished_tasks(pve, "qmstart")) == 1, "a permanent start failure was dispatched again"
    assert elapsed < 4.0, f"a permanent start failure took {elapsed:.1f}s"
    assert_accounted(pve)


def test_unknown_task_wording_is_permanent(pve: Any, ops: VmOperations, timed_ops: VmOperations) -> None:
    spec = vm_spec(started=False)
    state = ops.create(spec)
    sim_vms(pve)[state.vmid].start_error = "kvm: something nobody has classified"
    started = time.monotonic()

    with pytest.raises(ProxmoxPermanentTaskError, match="something nobody has classified") as raised:
        timed_ops.power(state.node, state.vmid, "start", spec)

    assert raised.value.kind is ProxmoxPermanentError
    assert len(finished_tasks(pve, "qmstart")) == 1
    assert time.monotonic() - started < 2.0
    assert_accounted(pve, state)


def test_clone_failing_for_good_is_not_retried_and_names_the_storage(
    pve: Any, timed_ops: VmOperations, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The storage goes offline after the pre-flight read saw it online: the clone worker then fails the
    # way pve-storage words it, inside the task.
    def offline(sid: str, *args: Any, **kwargs: Any) -> Any:
        raise PveError(500, f"storage '{sid}' is not online")

    monkeypatch.setattr(pve, "_qm_alloc", offline)
    volumes = dict(pve.storages["local-lvm"]["volumes"])
    started = time.monotonic()

    with pytest.raises(ProxmoxError) as raised:
        timed_ops.create(vm_spec())

    elapsed = time.monotonic() - started
    err = raised.value
    assert isinstance(err, ProxmoxPermanentTaskError), repr(err)
    assert is_kind(err, ProxmoxStorageUnavailableError)
    assert err.resource == "storage 'local-lvm'"
    text = str(err)
    assert "storage 'local-lvm' is not online" in text
    assert "clone of template 900" in text and "to node pve" in text, text
    assert "nothing was left behind" in text, text
    assert len(requests_matching(pve, "POST", CLONE)) == 1, "a permanent clone failure was retried"
    assert elapsed < 4.0, f"a permanent clone failure took {elapsed:.1f}s"
    assert pve.storages["local-lvm"]["volumes"] == volumes
    assert_accounted(pve)


def test_clone_vmid_collision_is_still_retried_with_a_fresh_id(pve: Any, timed_ops: VmOperations) -> None:
    pve.fail("POST", "/nodes/{node}/qemu/{vmid}/clone", error="unable_create_config_file_already", times=1)
    spec = vm_spec()

    state = timed_ops.create(spec)

    ids = [int(body_field(body, "newid") or 0) for _, _, body in requests_matching(pve, "POST", CLONE)]
    assert len(ids) == 2 and ids[0] != ids[1], ids
    assert state.vmid == ids[1]
    assert sim_vms(pve)[state.vmid].config["description"] == description_with_marker(spec)
    assert_accounted(pve, state)
