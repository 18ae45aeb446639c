"""Parallel creates and deletes through one shared VmOperations, as the Pulumi engine runs them.

Eight VMs from one template: every create succeeds with its own VMID, the simulator ends up with exactly
those eight VMs, and no more than ``CloneSlots.per_node`` clones ever run at once on the template's node.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.vm_ops import CloneSlots, VmOperations, VmState
from tests.support.faults import assert_accounted, body_field, requests_matching, sim_vms
from tests.support.specs import vm_spec

PARALLEL = 8


class RecordingSlots(CloneSlots):
    """CloneSlots that record how many holders each node had at once (and keep each hold open briefly).

    The short dwell inside the slot makes the clones overlap even though fakepve clones instantly, so a
    broken bound would show up as more than ``per_node`` concurrent holders.
    """

    def __init__(self, per_node: int, dwell: float = 0.05) -> None:
        super().__init__(per_node)
        self.dwell = dwell
        self._guard = threading.Lock()
        self.current: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.holds: dict[str, int] = defaultdict(int)

    @contextmanager
    def hold(self, node: str) -> Iterator[None]:
        with super().hold(node):
            with self._guard:
                self.current[node] += 1
                self.holds[node] += 1
                self.peak[node] = max(self.peak[node], self.current[node])
            try:
                time.sleep(self.dwell)
                yield
            finally:
                with self._guard:
                    self.current[node] -= 1


def test_eight_parallel_creates_from_one_template(pve: Any, client: ProxmoxClient) -> None:
    slots = RecordingSlots(2)
    ops = VmOperations(client, clone_slots=slots, poll_interval=0.02)
    specs = [vm_spec(f"worker-{i}") for i in range(PARALLEL)]
    assert len({s.marker for s in specs}) == PARALLEL
    started = time.monotonic()

    with ThreadPoolExecutor(PARALLEL) as pool:
        states: list[VmState] = list(pool.map(ops.create, specs))

    elapsed = time.monotonic() - started
    assert len({s.vmid for s in states}) == PARALLEL, [s.vmid for s in states]
    vms = sim_vms(pve)
    assert len(vms) == PARALLEL
    for state, spec in zip(states, specs, strict=True):
        vm = vms[state.vmid]
        assert vm.name == spec.name
        assert spec.marker in vm.config["description"]
        assert spec.marker_tag in vm.config["tags"].split(";")
        assert vm.status == "running"
    assert_accounted(pve, *states)

    # Every clone came from the one template on pve1, never more than two at a time, and the bound was reached.
    clones = requests_matching(pve, "POST", r"/qemu/\d+/clone$")
    assert {path.rsplit("/", 2)[-2] for _, path, _ in clones} == {"9000"}
    assert slots.holds["pve1"] == len(clones) >= PARALLEL
    assert slots.peak["pve1"] == 2, dict(slots.peak)
    # Four rounds of two clones, each held for the dwell: more parallelism would have been faster.
    assert elapsed >= (PARALLEL / 2) * slots.dwell


def test_parallel_creates_that_race_for_vmids_all_succeed(pve: Any, client: ProxmoxClient) -> None:
    # Exactly as many VMIDs as VMs: random probes collide, and a lost race ("already exists") must end in
    # another free VMID until the range is full, never in an error or a second VM under one id.
    ops = VmOperations(client, clone_slots=CloneSlots(4), poll_interval=0.02)
    specs = [vm_spec(f"tight-{i}", vmid_range={"start": 1000, "end": 1000 + PARALLEL - 1}) for i in range(PARALLEL)]

    with ThreadPoolExecutor(PARALLEL) as pool:
        states = list(pool.map(ops.create, specs))

    assert sorted(s.vmid for s in states) == list(range(1000, 1000 + PARALLEL))
    newids = [int(body_field(b, "newid") or 0) for _, _, b in requests_matching(pve, "POST", r"/clone$")]
    assert len(newids) >= PARALLEL
    assert_accounted(pve, *states)


def test_parallel_deletes_leave_nothing(pve: Any, ops: VmOperations) -> None:
    specs = [vm_spec(f"gone-{i}") for i in range(PARALLEL)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        states = list(pool.map(ops.create, specs))
    assert_accounted(pve, *states)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda pair: ops.delete(pair[0].vmid, pair[1]), zip(states, specs, strict=True)))

    assert_accounted(pve)
