"""End to end with the real pulumi CLI and kubernetes plugin: up against the simulator and a local API
server, every declared object read back, no-op preview, refresh without drift, drift on both sides
detected and repaired, an API-server rejection surfaced, secrets never in plain text, destroy back to the
templates and the API server's own objects, and a killed up that converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import E2E_TENANT, STACK, Deployment
from tools import kube_api
from tools.kube_inventory import ObjectRef, by_kind, declared_objects, server_objects
from tools.scratch import PROJECT
from tools.simulator import TOKEN_ID, TOKEN_SECRET

pytestmark = pytest.mark.e2e

EXPECTED_VMS = {"mgmt-cp-1", "mgmt-worker-1", "mgmt-worker-2"}


def outputs(d: Deployment) -> dict[str, object]:
    return dict(json.loads(d.cli.run("stack", "output", "--json").stdout))


TENANT_NS = f"tenant-{E2E_TENANT['name']}"
BUILT_IN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
PULUMI_FIELD_MANAGER = "pulumi-kubernetes"
LAYERS = {
    # kind: the layer that declares it; each must reach the API server
    "CustomResourceDefinition": "charts (cert-manager, Kube-OVN, Kamaji, CAPI operator)",
    "Deployment": "charts",
    "DaemonSet": "network (Cilium, Kube-OVN)",
    "ClusterRole": "charts",
    "CoreProvider": "Cluster API",
    "InfrastructureProvider": "Cluster API (CAPMOX)",
    "IPAMProvider": "Cluster API (in-cluster IPAM)",
    "ControlPlaneProvider": "Cluster API (Kamaji)",
    "DataStore": "Kamaji",
    "StorageClass": "Proxmox CSI",
    "Cluster": "tenant",
    "KamajiControlPlane": "tenant",
    "ProxmoxCluster": "tenant",
    "MachineDeployment": "tenant",
    "HelmChartProxy": "tenant",
    "NetworkPolicy": "tenant",
    "ResourceQuota": "tenant",
}


def kind_of(type_token: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``; a patch is of its object's kind
    (``kubernetes:core/v1:NodePatch`` -> ``Node``)."""
    return type_token.rsplit(":", 1)[-1].removesuffix("Patch")


def previewed_objects(d: Deployment) -> tuple[dict[str, int], set[str]]:
    """Kubernetes objects per kind that the program declares in ``pulumi preview --json`` (chart children
    included), and the set of step operations seen."""
    plan = json.loads(d.cli.run("preview", "--json", "--show-sames").stdout)
    counts: dict[str, int] = {}
    ops = set()
    for step in plan.get("steps", []):
        ops.add(str(step.get("op")))
        state = step.get("newState") or {}
        type_ = str(state.get("type", ""))
        if state.get("custom") and type_.startswith("kubernetes:") and not type_.startswith("kubernetes:helm.sh"):
            counts[kind_of(type_)] = counts.get(kind_of(type_), 0) + 1
    return counts, ops


def declared(d: Deployment) -> list[ObjectRef]:
    """The Kubernetes objects in the stack's state."""
    return declared_objects(d.exported_state())


def on_server(d: Deployment, refs: list[ObjectRef]) -> dict[ObjectRef, dict[str, Any]]:
    """The server's copy of each of ``refs`` that exists."""
    client = d.kube.api_client()
    try:
        return server_objects(client, refs)
    finally:
        client.close()


def core(d: Deployment) -> Any:
    """A CoreV1Api with the admin credentials."""
    from kubernetes import client

    return client.CoreV1Api(d.kube.api_client())


def test_up_creates_the_management_cluster_vms(deployment: Deployment) -> None:
    # --skip-preview: a first preview on an empty cluster cannot plan a chart whose objects are of a
    # kind another chart of the same run installs (pulumi-kubernetes#3176; see README).
    deployment.cli.run("up", "--yes", "--skip-preview")
    guests = deployment.guests()
    assert {vm.name for vm in guests.values()} == EXPECTED_VMS
    out = outputs(deployment)
    reported = {vm["name"]: vm for vm in [*out["controlPlanes"], *out["workers"]]}  # type: ignore[misc]
    assert set(reported) == EXPECTED_VMS
    for name, vm in reported.items():
        assert guests[vm["vmid"]].name == name and guests[vm["vmid"]].node == vm["node"]
        assert guests[vm["vmid"]].status == "running"


def test_every_declared_kubernetes_object_is_on_the_api_server(deployment: Deployment) -> None:
    refs = declared(deployment)
    declared_counts = dict(by_kind(refs))
    missing_layers = {kind: layer for kind, layer in LAYERS.items() if not declared_counts.get(kind)}
    assert not missing_layers, f"kinds the program should declare but did not: {missing_layers}"
    previewed, ops = previewed_objects(deployment)
    assert ops == {"same"}, f"a preview right after up plans changes: {ops}"
    assert declared_counts == previewed, "the state does not hold what the program declares"
    server = on_server(deployment, refs)
    assert dict(by_kind(server)) == declared_counts, f"missing on the API server: {set(refs) - set(server)}"
    # Applied by the kubernetes plugin with server-side apply, not created some other way. An apply that
    # owns no field at all (a Namespace declared with its name only) leaves no managedFields entry.
    for ref, obj in server.items():
        entries = obj["metadata"].get("managedFields") or []
        if not entries:
            assert ref.kind == "Namespace" and owns_nothing(obj), f"{ref} has no field manager"
            continue
        ours = {e.get("operation") for e in entries if e.get("manager", "").startswith(PULUMI_FIELD_MANAGER)}
        assert ours == {"Apply"}, f"{ref} was not server-side applied by the plugin: {entries}"


def owns_nothing(namespace: dict[str, Any]) -> bool:
    """A Namespace carrying only what the API server sets itself (no label or annotation of anyone)."""
    metadata = namespace["metadata"]
    labels = set(metadata.get("labels") or {}) - {"kubernetes.io/metadata.name"}
    return not labels and not metadata.get("annotations")


def test_the_chart_objects_carry_the_programs_values(deployment: Deployment) -> None:
    # Kube-OVN fills its database addresses from a lookup of nodes unless MASTER_NODES is set; without a
    # cluster to ask (and here, with no Node objects) the lookup is empty: the values must never be.
    control_plane_ip = deployment.outputs()["controlPlanes"][0]["ip"]
    wanted = {"ovn-central": "NODE_IPS", "kube-ovn-controller": "OVN_DB_IPS"}
    refs = [r for r in declared(deployment) if r.kind == "Deployment" and r.name in wanted]
    assert {r.name for r in refs} == set(wanted), "the Kube-OVN chart did not render its Deployments"
    for ref, obj in on_server(deployment, refs).items():
        containers = obj["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for c in containers for e in c.get("env") or []}
        assert env.get(wanted[ref.name]) == control_plane_ip, (ref.name, env.get(wanted[ref.name]))
        assert obj["spec"]["replicas"] == 1, ref.name


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


def test_a_tenant_namespace_label_changed_by_hand_is_drift_and_up_repairs_it(deployment: Deployment) -> None:
    api = core(deployment)
    label = "pod-security.kubernetes.io/enforce"
    assert api.read_namespace(TENANT_NS).metadata.labels[label] == "baseline"
    api.patch_namespace(TENANT_NS, {"metadata": {"labels": {label: "privileged"}}}, field_manager="someone-by-hand")
    drift = deployment.cli.run("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert drift.returncode != 0, "a weakened Pod Security label went unnoticed"
    assert label in drift.stdout and "privileged" in drift.stdout, drift.stdout
    deployment.cli.run("up", "--refresh", "--yes", "--skip-preview")
    assert api.read_namespace(TENANT_NS).metadata.labels[label] == "baseline"
    deployment.cli.run("preview", "--refresh", "--expect-no-changes")


def test_a_network_policy_rule_removed_by_hand_is_drift_and_up_repairs_it(deployment: Deployment) -> None:
    from kubernetes import client

    net = client.NetworkingV1Api(deployment.kube.api_client())
    policy = net.read_namespaced_network_policy("default-deny", TENANT_NS)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    net.patch_namespaced_network_policy(
        "default-deny", TENANT_NS, {"spec": {"policyTypes": ["Ingress"]}}, field_manager="someone-by-hand"
    )
    drift = deployment.cli.run("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert drift.returncode != 0, "a tenant's egress opened by hand went unnoticed"
    assert "policyTypes" in drift.stdout, drift.stdout
    deployment.cli.run("up", "--refresh", "--yes", "--skip-preview")
    restored = net.read_namespaced_network_policy("default-deny", TENANT_NS)
    assert restored.spec.policy_types == ["Ingress", "Egress"]


def test_a_value_the_api_server_rejects_names_the_object_and_the_field(deployment: Deployment) -> None:
    # Kamaji's DataStore CRD makes spec.driver immutable with a CEL rule (self == oldSelf): switching an
    # existing platform from etcd to PostgreSQL passes preflight (a new stack may pick either) and must
    # stop at the API server, naming the DataStore and the field, before anything is changed.
    original = deployment.stack_file.read_text()
    document = yaml.safe_load(original)
    kamaji = document["config"].get(f"{PROJECT}:kamaji") or {}
    kamaji["datastore"] = {"driver": "postgresql", "endpoints": ["db.example.internal:5432"]}
    document["config"][f"{PROJECT}:kamaji"] = kamaji
    deployment.stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        deployment.cli.run("config", "set", "--secret", "kamajiDatastorePassword", "e2e-only-password")
        before = deployment.exported_state()["deployment"]["resources"]
        proc = deployment.cli.run("preview", "--diff", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, "the API server accepted a DataStore driver change"
        assert "DataStore" in output and "spec.driver" in output, output
        assert "Datastore driver is immutable" in output, output
        assert deployment.exported_state()["deployment"]["resources"] == before
    finally:
        deployment.stack_file.write_text(original)
    deployment.cli.run("preview", "--expect-no-changes")


def orphans(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tools.orphans --stack e2e`` in the project copy, with the CLI's environment."""
    env = {
        **d.cli.env,
        "PROXMOX_ENDPOINT": d.pve.url,
        "PROXMOX_TOKEN_ID": TOKEN_ID,
        "PROXMOX_TOKEN_SECRET": TOKEN_SECRET,
        "PROXMOX_CA_BUNDLE": d.sim.cafile,
    }
    return subprocess.run(
        [sys.executable, "-m", "tools.orphans", "--stack", STACK, *args],
        cwd=d.cli.cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_orphans_command_reads_the_state_with_the_cli_and_finds_none(deployment: Deployment) -> None:
    proc = orphans(deployment)
    assert proc.returncode == 0, proc.stderr
    assert f"no orphaned VMs of {PROJECT}/{STACK} (the state holds 3)" in proc.stdout, proc.stdout


def test_a_vm_the_state_lost_is_listed_as_an_orphan_and_left_alone_in_a_dry_run(
    deployment: Deployment, tmp_path: Path
) -> None:
    state = deployment.exported_state()
    worker = next(vm for vm in deployment.guests().values() if vm.name == "mgmt-worker-2")
    resources = state["deployment"]["resources"]
    kept = [r for r in resources if (r.get("outputs") or {}).get("vmid") != worker.vmid]
    assert len(kept) == len(resources) - 1, "the worker VM is not one resource of the state"
    state["deployment"]["resources"] = kept
    export = tmp_path / "export.json"
    export.write_text(json.dumps(state))
    proc = orphans(deployment, "--state", str(export))
    assert proc.returncode == 0, proc.stderr
    # The table's rows: vmid node status name owner (the line above it starts with a count, too).
    rows = [line.split() for line in proc.stdout.splitlines()]
    listed = [row for row in rows if len(row) == 5 and row[0].isdigit()]
    assert [(int(row[0]), row[3]) for row in listed] == [(worker.vmid, "mgmt-worker-2")], proc.stdout
    assert "dry run: nothing was changed" in proc.stdout
    assert worker.vmid in deployment.guests()


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


def left_after_destroy(d: Deployment, refs: list[ObjectRef], bound: float = 120.0) -> dict[ObjectRef, dict[str, Any]]:
    """What of ``refs`` is still on the server once the deletions destroy requested have finished.

    A chart installed with skipAwait (Cilium's, or any chart with ``awaitReadiness: false``) marks all
    its objects, its Namespaces too, so the provider does not wait for their deletion: destroy returns
    while the namespace controller is still emptying such a Namespace. Objects being deleted (a
    deletionTimestamp, set by destroy) are waited for within ``bound``; anything else is left as it is.
    """
    deadline = time.monotonic() + bound
    while True:
        left = on_server(d, refs)
        terminating = [ref for ref, obj in left.items() if obj["metadata"].get("deletionTimestamp")]
        if not terminating:
            return left
        still = sorted(map(str, terminating))
        assert time.monotonic() < deadline, f"still terminating {bound:g}s after destroy: {still}"
        time.sleep(1)


def test_destroy_leaves_only_the_templates_and_the_api_servers_own_objects(deployment: Deployment) -> None:
    from kubernetes import client

    refs = declared(deployment)
    # Upstream charts mark some CRDs helm.sh/resource-policy: keep (cert-manager with crds.keep, the
    # cluster-api-operator's provider CRDs), so that removing the chart never deletes every custom
    # resource of those kinds; the kubernetes provider honours it and leaves them on destroy.
    kept = {
        ref
        for ref, obj in on_server(deployment, refs).items()
        if (obj["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"
    }
    assert kept and all(ref.kind == "CustomResourceDefinition" for ref in kept), sorted(map(str, kept))
    deployment.cli.run("destroy", "--yes", "--skip-preview")
    assert deployment.guests() == {}
    assert {vm.vmid for vm in deployment.pve.vms} == {9000, 9001}
    # The Nodes were only patched (topology labels): they stay, without the program's labels.
    nodes = [r for r in refs if r.kind == "Node"]
    assert len(nodes) == 3
    for obj in on_server(deployment, nodes).values():
        labels = obj["metadata"].get("labels") or {}
        assert not any(k.startswith("topology.kubernetes.io/") for k in labels), labels
    assert set(left_after_destroy(deployment, [r for r in refs if r.kind != "Node"])) == kept
    names = {ns.metadata.name for ns in core(deployment).list_namespace().items}
    assert names == BUILT_IN_NAMESPACES
    crds = client.ApiextensionsV1Api(deployment.kube.api_client()).list_custom_resource_definition().items
    preloaded = {
        doc["metadata"]["name"]
        for doc in kube_api.crd_documents(kube_api.crd_files(patterns=kube_api.CRD_PRELOAD_PATTERNS))
    }
    kept_names = {ref.name for ref in kept}
    remaining = {crd.metadata.name for crd in crds}
    assert remaining == preloaded | kept_names, "CRDs other than the preloaded scaffolding and the kept ones remain"


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
