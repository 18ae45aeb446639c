"""``python -m tools.orphans`` against fakepve: it lists exactly the stack's VMs no state holds, and removes
only those, and only with ``--delete``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from providers.proxmox.vm_config import description_with_marker
from providers.proxmox.vm_ops import VmOperations, VmState
from providers.proxmox.vm_spec import VmSpec
from tests.support.faults import assert_accounted, sim_vms
from tests.support.specs import vm_spec
from tools import orphans

PROJECT = "proxmox-k8s-platform"


def _export(*states: tuple[str, VmSpec, VmState], stack: str = "test") -> dict[str, Any]:
    """A ``pulumi stack export`` document holding these ProxmoxVm resources (and the stack itself)."""
    resources: list[dict[str, Any]] = [
        {"urn": f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}", "type": "pulumi:pulumi:Stack"}
    ]
    for name, spec, state in states:
        resources.append(
            {
                "urn": f"urn:pulumi:{stack}::{PROJECT}::pulumi-python:dynamic:Resource::{name}",
                "type": "pulumi-python:dynamic:Resource",
                "id": f"{state.node}/{state.vmid}",
                "outputs": {**spec.to_inputs(), **state.outputs()},
            }
        )
    return {"version": 3, "deployment": {"manifest": {}, "resources": resources}}


def _half_made(ops: VmOperations, spec: VmSpec, vmid: int) -> None:
    ops.client.call_task(
        "POST",
        "/nodes/pve1/qemu/9000/clone",
        {"newid": vmid, "name": spec.name, "description": description_with_marker(spec), "full": True},
        timeout=30,
    )


@pytest.fixture
def cluster(pve: Any, ops: VmOperations) -> dict[str, Any]:
    """Two VMs of stack ``test`` in its state, two of its VMs that are not, and VMs nobody must touch."""
    kept_spec, other_spec = vm_spec("cp-1"), vm_spec("worker-1")
    kept, unheld = ops.create(kept_spec), ops.create(other_spec)
    lost = vm_spec("cp-2")
    _half_made(ops, lost, 1500)  # a create killed after its clone, whose resource was then removed
    prod = vm_spec("cp-1", owner=f"{PROJECT}/prod/cp-1")
    _half_made(ops, prod, 1600)  # another stack's
    pve.add_vm(1700, "hand-made", node="pve1")  # no marker at all
    return {
        "state": _export(("cp-1", kept_spec, kept)),
        "kept": kept,
        "orphans": sorted([unheld.vmid, 1500]),
        "others": [kept.vmid, 1600, 1700],
    }


def test_lists_the_stacks_vms_that_the_state_does_not_hold(
    pve: Any, ops: VmOperations, cluster: dict[str, Any]
) -> None:
    keep = orphans.held(cluster["state"], PROJECT, "test")

    found = orphans.find_orphans(ops, orphans.owner_prefix(PROJECT, "test"), keep)

    assert [o.vmid for o in found] == cluster["orphans"]
    assert {o.owner for o in found} == {f"{PROJECT}/test/worker-1", f"{PROJECT}/test/cp-2"}


def test_dry_run_changes_nothing(
    pve: Any, ops: VmOperations, cluster: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(cluster["state"]))
    before = {vmid: dict(vm.config) for vmid, vm in sim_vms(pve).items()}
    writes = len([r for r in pve.requests if r[0] != "GET"])

    code = orphans.main(["--stack", "test", "--state", str(state), "--project", PROJECT], ops=ops)

    out = capsys.readouterr().out
    assert code == 0
    assert "2 VM(s) carry the owner markers" in out and "dry run" in out
    for vmid in cluster["orphans"]:
        assert f"{vmid:>10}" in out
    assert {vmid: dict(vm.config) for vmid, vm in sim_vms(pve).items()} == before
    assert len([r for r in pve.requests if r[0] != "GET"]) == writes, "a dry run wrote to Proxmox"


def test_delete_removes_only_the_orphans(
    pve: Any, ops: VmOperations, cluster: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(cluster["state"]))

    code = orphans.main(["--stack", "test", "--state", str(state), "--project", PROJECT, "--delete"], ops=ops)

    assert code == 0, capsys.readouterr().err
    assert not set(cluster["orphans"]) & set(sim_vms(pve))
    assert_accounted(pve, cluster["kept"], others=[1600, 1700])
    again = orphans.main(["--stack", "test", "--state", str(state), "--project", PROJECT], ops=ops)
    assert again == 0 and "no orphaned VMs" in capsys.readouterr().out


def test_a_state_of_another_stack_is_refused(
    pve: Any, ops: VmOperations, cluster: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deleting against the wrong stack's state would take every live VM of this one for an orphan.
    state = tmp_path / "state.json"
    state.write_text(json.dumps(_export(stack="prod")))
    count = len(sim_vms(pve))

    code = orphans.main(["--stack", "test", "--state", str(state), "--project", PROJECT, "--delete"], ops=ops)

    assert code == 2 and "not of stack" in capsys.readouterr().err
    assert len(sim_vms(pve)) == count


def test_the_command_line_reads_the_connection_from_the_environment(
    pve: Any,
    cluster: dict[str, Any],
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(cluster["state"]))
    monkeypatch.setenv("PROXMOX_ENDPOINT", settings.endpoint)
    monkeypatch.setenv("PROXMOX_TOKEN_ID", settings.token_id)
    monkeypatch.setenv("PROXMOX_TOKEN_SECRET", settings.token_secret)
    monkeypatch.setenv("PROXMOX_CA_BUNDLE", settings.ca_bundle)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the project root: Pulumi.yaml names the project

    assert orphans.main(["--stack", "test", "--state", str(state)]) == 0
    assert "2 VM(s)" in capsys.readouterr().out
