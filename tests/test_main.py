"""The whole program (``__main__.py``) under Pulumi mocks: a good stack builds, a bad one registers nothing."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from tests.config.support import apply, good
from tests.config.test_stack import ALL_CASES as CASES
from tests.support.kube import LOCAL_KUBECONFIG
from tests.support.paths import REPO
from tools.recording import Recording, record

PROJECT = "proxmox-k8s-platform"
SECRETS = {
    "proxmoxTokenSecret": "3f0a1f52-0000-4000-8000-000000000000",
    "sshPrivateKey": "-----BEGIN KEY-----",
    "managementKubeconfig": LOCAL_KUBECONFIG,
}


def run_program(domains: dict[str, Any]) -> tuple[Recording, BaseException | None]:
    """Run __main__.py with these config keys (plus the secrets) and record what it registers."""
    values = {
        f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value) for key, value in domains.items()
    }
    values.update({f"{PROJECT}:{key}": value for key, value in SECRETS.items()})
    pulumi.runtime.set_all_config(values, [f"{PROJECT}:{key}" for key in SECRETS])
    failure: list[BaseException] = []

    def program() -> None:
        try:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        except pulumi.RunError as exc:
            failure.append(exc)

    recording = record(program, project=PROJECT)
    return recording, (failure[0] if failure else None)


def test_the_local_stack_config_builds_the_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]
    domains = {k.split(":", 1)[1]: v for k, v in stack.items() if not isinstance(v, dict) or "secure" not in v}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    domains["proxmox"] = {**domains["proxmox"], "caBundle": str(ca)}
    recording, failure = run_program(domains)
    assert failure is None
    vms = [r for r in recording.registrations if "template_tags" in r.inputs and "vmid_range" in r.inputs]
    assert sorted(r.inputs["name"] for r in vms) == ["mgmt-cp-1", "mgmt-worker-1", "mgmt-worker-2"]
    # bootstrap: external: the Kubernetes side goes to the cluster of managementKubeconfig, through one provider.
    providers = [r for r in recording.registrations if r.type == "pulumi:providers:kubernetes"]
    assert len(providers) == 1
    kinds = {r.type for r in recording.registrations if r.type.startswith("kubernetes:")}
    assert {"kubernetes:helm.sh/v4:Chart", "kubernetes:core/v1:Namespace"} <= kinds
    assert "kubernetes:helm.sh/v3:Release" not in kinds  # charts.installer: chart
    # awaitReadiness: false, and nothing in the platform waits for a condition no controller sets.
    awaited = [r.name for r in recording.registrations if "pulumi.com/waitFor" in json.dumps(r.inputs)]
    assert awaited == []
    # No kubeadm over SSH: the program creates the VMs, the kubeconfig comes from the secret.
    assert not [r for r in recording.registrations if r.type.startswith("command:")]


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_configuration_stops_the_program_before_anything_is_registered(
    changes: list[tuple[str, Any]], paths: tuple[str, ...], fragment: str
) -> None:
    raw = good()
    for path, value in changes:
        apply(raw, path, value)
    recording, failure = run_program(raw)
    assert failure is not None, "the program ran with a bad configuration"
    assert all(path in str(failure) for path in paths)
    assert fragment in str(failure)
    assert recording.registrations == [], [r.name for r in recording.registrations]
