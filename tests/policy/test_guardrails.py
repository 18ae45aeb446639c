"""The guardrails of ``policy/``: each policy's check with a passing and a failing resource, called directly
with pulumi_policy's own argument classes; the program's own resources (the local stack, recorded under
mocks) passing every guardrail; and the pack served over its gRPC Analyzer protocol, as the engine talks
to it.

``pulumi preview --policy-pack policy`` with the real CLI is the e2e tier's job
(``tests/e2e/test_policy_pack.py``); the gRPC test below drives the same server the engine does.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from config import SECRET_KEYS
from policy import guardrails
from policy.guardrails import (
    TENANT_LABEL,
    StackContext,
    check_config,
    empty_options,
    parse_stack_context,
    plaintext_secret_findings,
)
from providers.dynamic.vm import ProxmoxVmProvider
from tests.support.kube import LOCAL_KUBECONFIG
from tests.support.paths import REPO
from tools.recording import Registration, record_stack

PROJECT = "proxmox-k8s-platform"
DYNAMIC = "pulumi-python:dynamic:Resource"
MARKER = "0123456789abcdef0123456789abcdef"

STACK_TEXT = f"""\
config:
  {PROJECT}:proxmox:
    endpoint: https://pve-dev.example.com:8006
    tokenId: pulumi@pve!iac
    verifyTls: true
    clusterName: pve-dev
  {PROJECT}:nodes:
    - name: pve1
      storages: [local-lvm, local]
  {PROJECT}:proxmoxTokenSecret:
    secure: v1:abc:def
encryptionsalt: v1:salt:x
"""


def context(text: str = STACK_TEXT, stack: str = "dev") -> StackContext:
    return parse_stack_context(text, stack=stack, project=PROJECT, path=Path(f"Pulumi.{stack}.yaml"))


def loader_for(ctx: StackContext) -> Any:
    return lambda _config: ctx


def policy_named(name: str, ctx: StackContext | None = None) -> Any:
    found = [p for p in guardrails.policies(loader_for(ctx or context())) if p.name == name]
    assert len(found) == 1
    return found[0]


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::{PROJECT}::{type_}::{name}"


def check_resource(
    name: str, type_: str, props: Mapping[str, Any], *, config: Mapping[str, Any] | None = None, **kw: Any
) -> list[str]:
    """Violations of one resource policy for one resource."""
    policy = policy_named(name, kw.get("ctx"))
    assert isinstance(policy, ResourceValidationPolicy)
    args = ResourceValidationArgs(type_, props, urn(type_, "r"), "r", empty_options(), None, dict(config or {}))
    out: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        out.append(message)

    policy.validate(args, report)
    return out


def resource(type_: str, props: Mapping[str, Any], name: str = "r") -> PolicyResource:
    return PolicyResource(type_, props, urn(type_, name), name, empty_options(), None, None, [], {})


def check_stack(
    name: str, resources: list[PolicyResource], *, config: Mapping[str, Any] | None = None, **kw: Any
) -> list[tuple[str, str | None]]:
    """Violations (message, urn) of one stack policy."""
    policy = policy_named(name, kw.get("ctx"))
    assert isinstance(policy, StackValidationPolicy)
    out: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        out.append((message, urn))

    policy.validate(StackValidationArgs(resources, dict(config or {})), report)
    return out


# ----------------------------------------------------------------------------------------- the pack


def test_the_pack_registers_six_distinct_policies() -> None:
    names = [p.name for p in guardrails.policies()]
    assert names == [
        "proxmox-tls-verified",
        "no-plaintext-secrets-in-config",
        "tenant-namespace-isolation",
        "proxmox-vm-ownership-and-placement",
        "proxmox-token-least-privilege",
        "helm-chart-version-pinned",
    ]


def test_the_pack_knows_the_programs_secret_keys() -> None:
    assert set(SECRET_KEYS) == guardrails.SECRET_CONFIG_KEYS


def test_the_tenant_label_is_the_one_the_platform_sets() -> None:
    tenant_objects = REPO / "components" / "tenants" / "objects.py"
    assert f'TENANT_LABEL: Final = "{TENANT_LABEL}"' in tenant_objects.read_text()


# --------------------------------------------------------------------------- proxmox-tls-verified


def test_tls_passes_with_verification_on() -> None:
    assert check_stack("proxmox-tls-verified", []) == []


def test_tls_fails_when_the_stack_file_turns_verification_off() -> None:
    ctx = context(STACK_TEXT.replace("verifyTls: true", "verifyTls: false"))
    found = check_stack("proxmox-tls-verified", [], ctx=ctx)
    assert len(found) == 1
    assert "proxmox.verifyTls is false in stack 'dev'" in found[0][0]


def test_tls_exempt_stacks_may_turn_it_off() -> None:
    ctx = context(STACK_TEXT.replace("verifyTls: true", "verifyTls: false"), stack="local")
    assert check_stack("proxmox-tls-verified", [], ctx=ctx) == []
    assert check_stack("proxmox-tls-verified", [], ctx=ctx, config={"exemptStacks": []}) != []


def capmox(insecure: str) -> PolicyResource:
    env = [{"name": "PROXMOX_INSECURE", "value": insecure}]
    props = {"spec": {"version": "v0.9.0", "deployment": {"containers": [{"name": "manager", "env": env}]}}}
    return resource("kubernetes:operator.cluster.x-k8s.io/v1alpha2:InfrastructureProvider", props, "capmox")


def csi_secret(config_yaml: str) -> PolicyResource:
    return resource("kubernetes:core/v1:Secret", {"stringData": {"config.yaml": config_yaml}}, "csi-config")


def test_tls_fails_on_the_settings_the_program_derives_from_it() -> None:
    assert check_stack("proxmox-tls-verified", [capmox("false")]) == []
    found = check_stack("proxmox-tls-verified", [capmox("true")])
    assert [u for _, u in found] == [
        urn("kubernetes:operator.cluster.x-k8s.io/v1alpha2:InfrastructureProvider", "capmox")
    ]
    assert "PROXMOX_INSECURE=true" in found[0][0]

    safe = "clusters:\n- url: https://pve:8006/api2/json\n  insecure: false\n"
    assert check_stack("proxmox-tls-verified", [csi_secret(safe)]) == []
    found = check_stack("proxmox-tls-verified", [csi_secret(safe.replace("insecure: false", "insecure: true"))])
    assert len(found) == 1
    assert "insecure: true" in found[0][0]


def test_tls_skips_a_csi_config_that_is_not_known_yet() -> None:
    props = unknown_checking_proxy({"stringData": {"config.yaml": UNKNOWN_STRING_VALUE}})
    assert check_stack("proxmox-tls-verified", [resource("kubernetes:core/v1:Secret", props)]) == []


# ------------------------------------------------------------------ no-plaintext-secrets-in-config


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_the_repositorys_stack_files_hold_no_plaintext_secrets(stack: str) -> None:
    ctx = context((REPO / f"Pulumi.{stack}.yaml").read_text(), stack=stack)
    assert plaintext_secret_findings(ctx) == []
    assert check_stack("no-plaintext-secrets-in-config", [], ctx=ctx) == []


PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        (f"{PROJECT}:proxmoxTokenSecret", "0f3c2a1e-1111-2222-3333-444455556666", "proxmoxTokenSecret"),
        (f"{PROJECT}:managementCluster", {"sshUser": "ubuntu", "bootstrapKey": PEM}, "managementCluster.bootstrapKey"),
        ("kubernetes:kubeconfig", "users:\n- user:\n    client-key-data: LS0tLS1CRUdJTg==\n", "kubernetes:kubeconfig"),
        (f"{PROJECT}:backupPassword", "hunter2-but-longer", "backupPassword"),
        (
            f"{PROJECT}:kamaji",
            {"datastore": {"url": "postgres://kamaji:s3cr3t@db:5432/kamaji"}},
            "kamaji.datastore.url",
        ),
        (f"{PROJECT}:ci", {"token": "ghp_" + "a" * 36}, "ci.token"),
    ],
)
def test_plaintext_secrets_are_found_without_echoing_them(key: str, value: Any, path: str) -> None:
    ctx = StackContext("dev", PROJECT, Path("Pulumi.dev.yaml"), {key: value})
    found = check_stack("no-plaintext-secrets-in-config", [], ctx=ctx)
    assert len(found) == 1, found
    message = found[0][0]
    assert f": {path} " in message
    for secret in ("0f3c2a1e", "b3BlbnNzaC1", "LS0tLS1", "hunter2", "s3cr3t", "ghp_"):
        assert secret not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kubernetes:kubeconfig", "~/.kube/config"),  # a path, not the content
        (f"{PROJECT}:proxmox", {"tokenId": "capmox@pve!capi", "caBundle": "-----BEGIN CERTIFICATE-----\nMII\n"}),
        (f"{PROJECT}:managementCluster", {"sshPublicKeys": ["ssh-ed25519 AAAAC3Nza user@example.com"]}),
        (f"{PROJECT}:proxmoxTokenSecret", None),  # not set at all (YAML null) is not a leak
    ],
)
def test_public_or_path_values_are_not_secrets(key: str, value: Any) -> None:
    if value is None:
        ctx = StackContext("dev", PROJECT, Path("Pulumi.dev.yaml"), {})
    else:
        ctx = StackContext("dev", PROJECT, Path("Pulumi.dev.yaml"), {key: value})
    assert check_stack("no-plaintext-secrets-in-config", [], ctx=ctx) == []


def test_without_the_stack_file_the_secret_check_is_not_applicable() -> None:
    ctx = StackContext("dev", PROJECT, None, None, problem="Pulumi.dev.yaml does not exist")
    with pytest.raises(Exception) as raised:
        check_stack("no-plaintext-secrets-in-config", [], ctx=ctx)
    assert type(raised.value).__name__ == "_NotApplicableError"
    assert "does not exist" in raised.value.reason  # type: ignore[attr-defined]


# --------------------------------------------------------------------- tenant-namespace-isolation


def namespace(name: str, labels: Mapping[str, str] | None = None) -> PolicyResource:
    return resource("kubernetes:core/v1:Namespace", {"metadata": {"name": name, "labels": dict(labels or {})}}, name)


def network_policy(ns: Any, spec: Mapping[str, Any], name: str = "default-deny") -> PolicyResource:
    return resource(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        {"metadata": {"name": name, "namespace": ns}, "spec": spec},
        name,
    )


def quota(ns: str, hard: Mapping[str, str] | None = None) -> PolicyResource:
    hard = {"requests.cpu": "8", "pods": "50"} if hard is None else hard
    return resource("kubernetes:core/v1:ResourceQuota", {"metadata": {"namespace": ns}, "spec": {"hard": hard}}, "q")


DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
TENANT = namespace("tenant-a", {TENANT_LABEL: "a"})


def test_an_isolated_tenant_namespace_passes() -> None:
    allow_dns = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53}]}]}
    objects = [
        TENANT,
        network_policy("tenant-a", DENY_ALL),
        network_policy("tenant-a", allow_dns, "dns"),
        quota("tenant-a"),
    ]
    assert check_stack("tenant-namespace-isolation", objects) == []


@pytest.mark.parametrize(
    ("objects", "missing"),
    [
        ([TENANT, quota("tenant-a")], "default-deny NetworkPolicy"),
        ([TENANT, network_policy("tenant-a", DENY_ALL)], "ResourceQuota"),
        (
            [TENANT],
            "default-deny NetworkPolicy (podSelector: {}, policyTypes with Ingress and Egress, no rules) and no",
        ),
        ([TENANT, network_policy("tenant-a", DENY_ALL), quota("tenant-a", {})], "ResourceQuota"),
        ([TENANT, network_policy("other", DENY_ALL), quota("tenant-a")], "default-deny"),
        (
            [
                TENANT,
                network_policy("tenant-a", {**DENY_ALL, "ingress": [{"from": [{"podSelector": {}}]}]}),
                quota("tenant-a"),
            ],
            "default-deny",
        ),
        (
            [
                TENANT,
                network_policy("tenant-a", {**DENY_ALL, "podSelector": {"matchLabels": {"app": "x"}}}),
                quota("tenant-a"),
            ],
            "default-deny",
        ),
        (
            [TENANT, network_policy("tenant-a", {"podSelector": {}, "policyTypes": ["Ingress"]}), quota("tenant-a")],
            "default-deny",
        ),
    ],
)
def test_a_tenant_namespace_without_isolation_fails(objects: list[PolicyResource], missing: str) -> None:
    found = check_stack("tenant-namespace-isolation", objects)
    assert len(found) == 1
    assert "tenant namespace 'tenant-a'" in found[0][0]
    assert missing in found[0][0]


def test_ingress_only_deny_passes_when_egress_deny_is_not_required() -> None:
    objects = [TENANT, network_policy("tenant-a", {"podSelector": {}, "policyTypes": ["Ingress"]}), quota("tenant-a")]
    assert check_stack("tenant-namespace-isolation", objects, config={"requireEgressDeny": False}) == []


def test_tenant_namespaces_are_found_by_label_by_capi_cluster_and_by_config() -> None:
    cluster = resource(
        "kubernetes:cluster.x-k8s.io/v1beta2:Cluster", {"metadata": {"name": "b", "namespace": "tenant-b"}}
    )
    found = check_stack("tenant-namespace-isolation", [namespace("tenant-b"), cluster])
    assert len(found) == 1 and "holds Cluster" in found[0][0]
    found = check_stack("tenant-namespace-isolation", [namespace("team-c")], config={"tenantNamespaces": ["team-c"]})
    assert len(found) == 1 and "'team-c'" in found[0][0]
    # a platform namespace is not a tenant's
    assert check_stack("tenant-namespace-isolation", [namespace("kube-ovn")]) == []


def test_a_policy_whose_namespace_is_not_known_yet_suspends_the_verdict() -> None:
    unknown_ns = unknown_checking_proxy({"metadata": {"namespace": UNKNOWN_STRING_VALUE}, "spec": DENY_ALL})
    objects = [TENANT, resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", unknown_ns), quota("tenant-a")]
    assert check_stack("tenant-namespace-isolation", objects) == []


# ------------------------------------------------------------- proxmox-vm-ownership-and-placement


def vm(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": "mgmt-cp-1",
        "owner": f"{PROJECT}/dev/platform-mgmt-mgmt-cp-1",
        "marker": MARKER,
        "node": "pve1",
        "template_tags": ["k8s"],
        "clone_mode": "full",
        "pool": "k8s-platform",
        "storage": "local-lvm",
        "disks": {"scsi0": {"size_gib": 40, "storage": "local-lvm"}},
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


VM_POLICY = "proxmox-vm-ownership-and-placement"


def test_an_owned_vm_in_its_pool_and_storages_passes() -> None:
    assert check_resource(VM_POLICY, DYNAMIC, vm()) == []
    assert check_resource(VM_POLICY, DYNAMIC, vm(pool="k8s-t-team-a", storage=None)) == []


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"owner": None}, "owner is None"),
        ({"owner": "someone"}, "owner is 'someone'"),
        ({"owner": f"{PROJECT}/prod/platform-mgmt-mgmt-cp-1"}, "names stack 'prod', but this is stack 'dev'"),
        ({"marker": None}, "marker is None"),
        ({"marker": "not-a-marker"}, "32 lowercase hex digits"),
        ({"pool": None}, "in no resource pool"),
        ({"pool": "other-team"}, "pool 'other-team' is not allowed"),
        ({"storage": "ceph-fast"}, "storage 'ceph-fast' is not allowed (the storages of nodes in Pulumi.dev.yaml"),
        ({"disks": {"scsi0": {"size_gib": 40, "storage": "nfs"}}}, "disks.scsi0.storage 'nfs' is not allowed"),
    ],
)
def test_a_vm_without_ownership_or_outside_its_placement_fails(overrides: dict[str, Any], why: str) -> None:
    found = check_resource(VM_POLICY, DYNAMIC, vm(**overrides))
    assert len(found) == 1, found
    assert why in found[0]


def test_vm_placement_follows_the_policy_config() -> None:
    config = {"allowedPools": ["lab-*"], "allowedStorages": ["ceph-*"]}
    assert check_resource(VM_POLICY, DYNAMIC, vm(pool="lab-vms", storage="ceph-fast", disks={}), config=config) == []
    found = check_resource(VM_POLICY, DYNAMIC, vm(), config=config)
    assert len(found) == 3  # pool, storage, disk storage


def test_vm_values_not_known_yet_are_skipped_and_other_dynamic_resources_ignored() -> None:
    props = unknown_checking_proxy(vm(pool=UNKNOWN_STRING_VALUE, owner=UNKNOWN_STRING_VALUE))
    assert check_resource(VM_POLICY, DYNAMIC, props) == []
    assert check_resource(VM_POLICY, DYNAMIC, {"poolid": "anything", "comment": ""}) == []
    assert check_resource(VM_POLICY, "kubernetes:core/v1:Pod", vm(pool=None)) == []


# ------------------------------------------------------------------ proxmox-token-least-privilege


def token(**overrides: Any) -> dict[str, Any]:
    return {"userid": "k8s-capmox@pve", "tokenid": "capi", "privsep": True, "comment": "", **overrides}


def test_a_privilege_separated_controller_token_passes() -> None:
    assert check_resource("proxmox-token-least-privilege", DYNAMIC, token()) == []


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"userid": "root@pam"}, "belongs to root@pam"),
        ({"userid": "ROOT@pam"}, "belongs to root@pam"),
        ({"privsep": False}, "privilege separation off"),
        ({"privsep": None}, "privilege separation off"),
    ],
)
def test_a_root_or_unseparated_token_fails(overrides: dict[str, Any], why: str) -> None:
    found = check_resource("proxmox-token-least-privilege", DYNAMIC, token(**overrides))
    assert len(found) == 1
    assert why in found[0]


def test_an_unknown_token_owner_still_gets_the_privsep_check() -> None:
    props = unknown_checking_proxy(token(userid=UNKNOWN_STRING_VALUE, privsep=False))
    found = check_resource("proxmox-token-least-privilege", DYNAMIC, props)
    assert len(found) == 1 and "privilege separation off" in found[0]
    props = unknown_checking_proxy(token(privsep=UNKNOWN_BOOLEAN_VALUE))
    assert check_resource("proxmox-token-least-privilege", DYNAMIC, props) == []


# ---------------------------------------------------------------------- helm-chart-version-pinned

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_V4 = "kubernetes:helm.sh/v4:Chart"


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (RELEASE, {"chart": "cilium", "version": "1.19.5"}),
        (RELEASE, {"chart": "cert-manager", "version": "v1.20.2"}),
        (CHART_V4, {"chart": "oci://ghcr.io/clastix/charts/kamaji", "version": "0.0.0+latest"}),
        (CHART_V4, {"chart": "oci://ghcr.io/x/y@sha256:" + "a" * 64}),
        (RELEASE, {"chart": "./charts/local-chart"}),
    ],
)
def test_an_exactly_pinned_chart_passes(type_: str, props: dict[str, Any]) -> None:
    assert check_resource("helm-chart-version-pinned", type_, props) == []


def test_a_component_chart_whose_inputs_the_engine_hides_is_not_judged() -> None:
    # The engine gives a policy no inputs of a component resource (helm.v4.Chart): an empty mapping is
    # "not visible", not "no version" (pulumi-kubernetes#2144); the e2e policy test runs such a stack.
    assert check_resource("helm-chart-version-pinned", CHART_V4, {}) == []
    assert len(check_resource("helm-chart-version-pinned", CHART_V4, {"version": "^1.0.0"})) == 1


@pytest.mark.parametrize(
    ("props", "why"),
    [
        ({"chart": "cilium"}, "has no version"),
        ({"chart": "cilium", "version": ""}, "has no version"),
        ({"chart": "cilium", "version": "^1.19.0"}, "is not one exact version"),
        ({"chart": "cilium", "version": "~1.19.5"}, "is not one exact version"),
        ({"chart": "cilium", "version": "1.19"}, "is not one exact version"),
        ({"chart": "cilium", "version": ">=1.0.0"}, "is not one exact version"),
        ({"chart": "cilium", "version": "1.19.x"}, "is not one exact version"),
        ({"chart": "cilium", "version": "latest"}, "is not one exact version"),
    ],
)
def test_a_floating_chart_version_fails(props: dict[str, Any], why: str) -> None:
    for type_ in (RELEASE, CHART_V4):
        found = check_resource("helm-chart-version-pinned", type_, props)
        assert len(found) == 1
        assert why in found[0]


# ------------------------------------------------------------- the program passes its guardrails


def checked_inputs(reg: Registration) -> dict[str, Any]:
    """Inputs as the engine shows them to a policy: after the provider's check (ProxmoxVm sets marker)."""
    inputs = reg.inputs
    if reg.type == DYNAMIC and "template_tags" in inputs and "clone_mode" in inputs:
        result = ProxmoxVmProvider().check({}, inputs)
        assert not result.failures
        return dict(result.inputs)
    return inputs


DUMMY_CA = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def local_resources(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Registration, dict[str, Any]]]:
    # The local stack's caBundle is a file the simulator writes when it starts; inline a PEM instead.
    root = tmp_path_factory.mktemp("local-stack")
    (root / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    document = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())
    document["config"][f"{PROJECT}:proxmox"]["caBundle"] = DUMMY_CA
    (root / "Pulumi.local.yaml").write_text(yaml.safe_dump(document))
    recording = record_stack("local", root, secrets={"managementKubeconfig": LOCAL_KUBECONFIG})
    return [(reg, checked_inputs(reg)) for reg in recording.registrations if reg.custom or reg.type == CHART_V4]


def test_the_local_stack_passes_every_guardrail(local_resources: list[tuple[Registration, dict[str, Any]]]) -> None:
    # judged with the local stack file's own storages, and without the TLS exemption of local
    ctx = context((REPO / "Pulumi.local.yaml").read_text(), stack="local")
    types = {reg.type for reg, _ in local_resources}
    assert DYNAMIC in types and CHART_V4 in types  # VMs, tokens and charts are really checked
    vms = [props for reg, props in local_resources if guardrails.is_proxmox_vm(resource(reg.type, props))]
    tokens = [props for reg, props in local_resources if guardrails.is_proxmox_token(resource(reg.type, props))]
    assert len(vms) == 3 and len(tokens) == 3
    violations: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        violations.append(message)

    stack_resources = [
        PolicyResource(r.type, p, r.urn, r.name, empty_options(), None, None, [], {}) for r, p in local_resources
    ]
    for policy in guardrails.policies(loader_for(ctx)):
        if isinstance(policy, ResourceValidationPolicy):
            for reg, props in local_resources:
                args = ResourceValidationArgs(reg.type, props, reg.urn, reg.name, empty_options(), None, {})
                policy.validate(args, report)
        else:
            assert isinstance(policy, StackValidationPolicy)
            policy.validate(StackValidationArgs(stack_resources, {"exemptStacks": []}), report)
    assert violations == []
    # and the same VMs fail once moved outside their pool: the check above really ran
    moved = {**vms[0], "pool": "somewhere-else"}
    assert check_resource(VM_POLICY, DYNAMIC, moved, ctx=ctx)


# ------------------------------------------------------------------------- check-config (CLI)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_check_config_passes_the_repositorys_stacks(stack: str) -> None:
    assert check_config(stack, REPO) == []


def test_check_config_fails_an_insecure_stack(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\n")
    text = (REPO / "Pulumi.dev.yaml").read_text().replace("verifyTls: true", "verifyTls: false")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    found = check_config("dev", tmp_path)
    assert len(found) == 1 and found[0].startswith("[proxmox-tls-verified]")
    proc = subprocess.run(
        [sys.executable, "-m", "policy.guardrails", "check-config", "--stack", "dev", "--project-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "verifyTls is false" in proc.stderr


# -------------------------------------------------------------------------- over gRPC, as the engine


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(props))
    return struct


@pytest.fixture
def analyzer(tmp_path: Path) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack started as the engine starts it (``python policy/__main__.py``), and a client for it."""
    env = {**os.environ, "GUARDRAILS_STACK": "dev", "GUARDRAILS_PROJECT_DIR": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "policy" / "__main__.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), proc.stderr.read() if proc.stderr else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_the_pack_answers_the_engine_protocol(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == guardrails.PACK_NAME
    assert {p.name for p in info.policies} == {p.name for p in guardrails.policies()}
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

    bad = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type=RELEASE, name="cilium", urn=urn(RELEASE, "cilium"), properties=to_struct({"chart": "cilium"})
        )
    )
    assert [d.policyName for d in bad.diagnostics] == ["helm-chart-version-pinned"]
    assert bad.diagnostics[0].enforcementLevel == analyzer_pb2.MANDATORY
    good = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type=RELEASE,
            name="cilium",
            urn=urn(RELEASE, "cilium"),
            properties=to_struct({"chart": "cilium", "version": "1.19.5"}),
        )
    )
    assert list(good.diagnostics) == []

    tenant = analyzer_pb2.AnalyzerResource(
        type="kubernetes:core/v1:Namespace",
        name="tenant-a",
        urn=urn("kubernetes:core/v1:Namespace", "tenant-a"),
        properties=to_struct({"metadata": {"name": "tenant-a", "labels": {TENANT_LABEL: "a"}}}),
    )
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[tenant]))
    assert [d.policyName for d in stack.diagnostics] == ["tenant-namespace-isolation"]
    assert "tenant namespace 'tenant-a'" in stack.diagnostics[0].message


# ------------------------------------------------------------------ sanity of the module boundary


def test_guardrails_import_no_project_code() -> None:
    tree = ast.parse((REPO / "policy" / "guardrails.py").read_text())
    imported = {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert imported.isdisjoint({"components", "providers", "tools", "tests"})
