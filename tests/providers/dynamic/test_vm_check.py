"""ProxmoxVm ``check()``: inputs Proxmox would refuse are refused by the engine's first call, naming the field."""

from __future__ import annotations

from typing import Any

from providers.dynamic.vm import OUTPUT_FIELDS, PASSWORD_FIELD, ProxmoxVmProvider
from providers.proxmox.vm_spec import VmSpec
from tests.support.specs import vm_inputs


def _program_inputs(**overrides: Any) -> dict[str, Any]:
    """Inputs as ``ProxmoxVm.__init__`` sends them: the spec, the password, and the outputs set to None."""
    inputs = vm_inputs(marker=None, **overrides)
    inputs[PASSWORD_FIELD] = None
    inputs.update({out: None for out in OUTPUT_FIELDS})
    return inputs


def _failures(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.property, f.reason) for f in ProxmoxVmProvider().check({}, inputs).failures]


def test_the_inputs_the_program_sends_pass() -> None:
    assert _failures(_program_inputs()) == []


def test_an_unknown_top_level_key_is_refused() -> None:
    inputs = _program_inputs()
    inputs["memory_gib"] = 8  # a typo of memory_mib: before, it was dropped and the VM got 4 GiB

    assert _failures(inputs) == [("memory_gib", "is not a known field")]


def test_unknown_keys_are_reported_with_the_other_bad_fields() -> None:
    inputs = _program_inputs(cpu={"cores": 0})
    inputs["stroage"] = "local-lvm"

    assert sorted(p for p, _ in _failures(inputs)) == ["cpu.cores", "stroage"]


def test_state_with_a_key_an_older_version_wrote_still_loads() -> None:
    # Read, diff and delete load the stored state, which may hold keys a later version removed.
    stored = {**vm_inputs(), "some_removed_field": 1, "vmid": 1001, "current_node": "pve1"}
    assert VmSpec.from_inputs(stored).name == "cp-1"


def test_ipv6_gateway_without_ipv6_names_the_field() -> None:
    ci = vm_inputs()["cloud_init"]
    ci = {**ci, "ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway4": "10.10.0.1", "gateway6": "fd00::1"}}}

    failures = _failures(_program_inputs(cloud_init=ci))

    assert [p for p, _ in failures] == ["cloud_init.ip_configs.net0.gateway6"], failures
