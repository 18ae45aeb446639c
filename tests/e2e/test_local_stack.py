"""End to end with the real pulumi CLI: up, no-op preview, refresh without drift, drift detection,
secrets never in plain text, destroy back to the templates, and a killed up that converges."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.e2e.conftest import Deployment
from tools.simulator import TOKEN_SECRET

pytestmark = pytest.mark.e2e

EXPECTED_VMS = {"mgmt-cp-1", "mgmt-worker-1", "mgmt-worker-2"}


def outputs(d: Deployment) -> dict[str, object]:
    return dict(json.loads(d.cli.run("stack", "output", "--json").stdout))


def test_up_creates_the_management_cluster_vms(deployment: Deployment) -> None:
    deployment.cli.run("up", "--yes", "--skip-preview")
    guests = deployment.guests()
    assert {vm.name for vm in guests.values()} == EXPECTED_VMS
    out = outputs(deployment)
    reported = {vm["name"]: vm for vm in [*out["controlPlanes"], *out["workers"]]}  # type: ignore[misc]
    assert set(reported) == EXPECTED_VMS
    for name, vm in reported.items():
        assert guests[vm["vmid"]].name == name and guests[vm["vmid"]].node == vm["node"]
        assert guests[vm["vmid"]].status == "running"


def test_preview_after_up_reports_no_changes(deployment: Deployment) -> None:
    deployment.cli.run("preview", "--expect-no-changes")


def test_refresh_reports_no_drift(deployment: Deployment) -> None:
    deployment.cli.run("refresh", "--yes", "--expect-no-changes", "--skip-preview")


def test_vms_bind_the_management_group_and_a_binding_removed_by_hand_is_drift(deployment: Deployment) -> None:
    pve = deployment.pve
    mgmt = [g for g in pve.firewall_config("cluster")["groups"] if g.endswith("-mgmt")]
    assert len(mgmt) == 1, "the management security group was not created"

    def bindings(vmid: int) -> list[tuple[str, str]]:
        rules = pve.firewall_config("vm", vmid=vmid)["rules"]
        return [(r["action"], r.get("iface")) for r in rules if r.get("type") == "group" and r.get("enable") == 1]

    for vmid, vm in deployment.guests().items():
        assert bindings(vmid) == [(mgmt[0], "net0")], vm.name
        options = pve.firewall_config("vm", vmid=vmid)["options"]
        assert options["enable"] == 1 and options["policy_in"] == "DROP", vm.name
    vmid = next(v for v, vm in deployment.guests().items() if vm.name == "mgmt-worker-2")
    pve.firewall_config("vm", vmid=vmid)["rules"].clear()
    drift = deployment.cli.run("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert drift.returncode != 0
    assert "firewall" in drift.stdout
    deployment.cli.run("up", "--refresh", "--yes", "--skip-preview")
    assert bindings(vmid) == [(mgmt[0], "net0")]
    deployment.cli.run("preview", "--refresh", "--expect-no-changes")


def test_out_of_band_change_shows_as_drift_and_up_repairs_it(deployment: Deployment) -> None:
    vm = next(vm for vm in deployment.guests().values() if vm.name == "mgmt-worker-1")
    vm.config["memory"] = "1024"
    drift = deployment.cli.run("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert drift.returncode != 0
    assert "memory_mib" in drift.stdout and "1024" in drift.stdout
    deployment.cli.run("up", "--refresh", "--yes", "--skip-preview")
    assert str(vm.pending.get("memory", vm.config["memory"])) == "4096"


def test_secrets_never_appear_in_state_or_cli_output(deployment: Deployment) -> None:
    secrets = {TOKEN_SECRET}
    # Tokens the program created for CAPMOX, CSI and the exporter (the simulator records their values).
    secrets |= {value for tokenid, value in deployment.pve.apitokens.items() if not tokenid.startswith("pulumi@")}
    deployment.cli.run("stack", "output", "--json")
    state = deployment.state_text()
    transcript = "\n".join(deployment.cli.transcript)
    for secret in secrets:
        assert secret not in state, "a secret is stored in plain text in the checkpoint"
        assert secret not in transcript, "a secret was printed by the CLI"
    assert "ciphertext" in state  # secrets are there, encrypted


def test_destroy_leaves_only_the_templates(deployment: Deployment) -> None:
    deployment.cli.run("destroy", "--yes", "--skip-preview")
    assert deployment.guests() == {}
    assert {vm.vmid for vm in deployment.pve.vms} == {9000, 9001}


def test_killed_up_converges_without_duplicates_or_orphans(deployment: Deployment) -> None:
    pve = deployment.pve
    pve.time_scale = 1.0
    pve.slow_network(0.03)  # every API answer takes 30 ms: a window to kill the CLI mid-way
    try:
        proc = deployment.cli.popen("up", "--yes", "--skip-preview")
        deadline = time.monotonic() + 120
        while not deployment.guests() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert deployment.guests(), "no VM appeared before the up finished or timed out"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        pve.slow_network(0.0)
        pve.time_scale = 0.0
    deployment.cli.run("cancel", "--yes", check=False)  # a killed update may leave the stack locked
    deployment.cli.run("up", "--yes", "--skip-preview", "--refresh")
    guests = deployment.guests()
    names = [vm.name for vm in guests.values()]
    assert sorted(names) == sorted(EXPECTED_VMS), f"duplicates or orphans: {names}"
    out = outputs(deployment)
    assert {vm["vmid"] for vm in [*out["controlPlanes"], *out["workers"]]} == set(guests)  # type: ignore[misc]
    deployment.cli.run("destroy", "--yes", "--skip-preview")
    assert deployment.guests() == {}
