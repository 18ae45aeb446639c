"""ProxmoxCluster under pulumi mocks: which resources it registers, their names, parents and inputs, which
outputs are secret, and the dependency order (pools before the ACLs and templates that name them, the
template before anything that clones it).

No Proxmox is involved: these tests prove what the program *registers*. Dynamic resources reach the mock
monitor as ``pulumi-python:dynamic:Resource`` with their pickled provider in ``__provider``; the mock
echoes inputs as outputs and makes up what Proxmox would compute (token secrets, the template's VMID).
What Proxmox does with the requests is covered elsewhere: pools, security groups and templates against
the simulator's stateful routes (``tests/providers/dynamic/test_pool_firewall_template.py``); users, roles,
tokens and ACLs only as request shapes (``tests/providers/proxmox/test_access.py``), because the simulator does not
store access-control objects.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from components.proxmox.cluster import (
    ProxmoxCluster,
    ProxmoxClusterArgs,
    ProxmoxClusterError,
    check_templates,
    management_rules,
)
from config import NetworksConfig, NodeConfig, ProxmoxConfig, TemplateConfig, TenantConfig
from providers.dynamic.vm import ProxmoxVm, ProxmoxVmArgs
from providers.proxmox.firewall import FirewallRule
from tools.recording import unwrap

DYNAMIC = "pulumi-python:dynamic:Resource"
COMPONENT = "platform:proxmox:ProxmoxCluster"
URL = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
CHECKSUM = "sha256:" + "c0ffee" * 10 + "abcd"
TOKEN_SECRETS = {"capmox": "capmox-9f1e-secret", "csi": "csi-77aa-secret", "metrics": "metrics-51bd-secret"}

# --------------------------------------------------------------------------------------------- harness


@dataclass
class Reg:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    retain_on_delete: bool
    raw_inputs: dict[str, Any]

    @property
    def inputs(self) -> dict[str, Any]:
        result: dict[str, Any] = unwrap(self.raw_inputs)
        return result

    def depends_on(self, other: Reg) -> bool:
        return other.urn in self.dependencies or any(other.urn in urns for urns in self.property_dependencies.values())


@dataclass
class Run:
    regs: list[Reg] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)

    def named(self, name: str) -> Reg:
        found = [r for r in self.regs if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def names(self) -> set[str]:
        return {r.name for r in self.regs}

    def component(self) -> Reg:
        (comp,) = [r for r in self.regs if r.type == COMPONENT]
        return comp


class PlatformMocks(Mocks):
    """Echo inputs; make up what Proxmox computes: token secrets and ids, a template's VMID."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == DYNAMIC and args.name.endswith("-token"):
            consumer = args.name.removesuffix("-token").rsplit("-", 1)[-1]
            state["full_tokenid"] = f"{unwrap(state['userid'])}!{unwrap(state['tokenid'])}"
            state["value"] = TOKEN_SECRETS[consumer]
        if args.typ == DYNAMIC and "-template-" in args.name:
            state["vmid"] = unwrap(state.get("vmid")) or 9999
            state["current_node"] = unwrap(state["node"])
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks, run: Run) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.regs.append(
                Reg(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    retain_on_delete=bool(request.retainOnDelete),
                    raw_inputs=rpc.deserialize_properties(request.object),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.run.outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def record(program: Callable[[Run], Any]) -> Run:
    """Run ``program`` under recording mocks; what it returns (an awaitable or Output) is awaited."""
    run = Run()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = PlatformMocks()
    pulumi.runtime.set_mocks(
        mocks, project="platform", stack="test", preview=False, monitor=RecordingMonitor(mocks, run)
    )
    try:

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def go() -> Any:
            return program(run)

        go()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return run


# --------------------------------------------------------------------------------------------- inputs

PROXMOX = ProxmoxConfig.model_validate(
    {"endpoint": "https://pve.example.com:8006", "tokenId": "pulumi@pve!iac", "clusterName": "pve-lab"}
)
NODES = (
    NodeConfig(name="pve1", storages=("local-lvm", "local")),
    NodeConfig(name="pve2", storages=("local-lvm", "ceph-vm", "local")),
)
NETWORKS = NetworksConfig.model_validate(
    {
        "management": {
            "bridge": "vmbr0",
            "vlan": 10,
            "cidr": "10.10.0.0/24",
            "gateway": "10.10.0.1",
            "dnsServers": ["10.10.0.1"],
        },
        "data": {"bridge": "vmbr1", "cidr": "10.20.0.0/24"},
        "storage": {"bridge": "vmbr2", "vlan": 30, "cidr": "10.30.0.0/24"},
    }
)
TEMPLATES = {
    "ubuntu-2404-kube": TemplateConfig(
        vmid=9100, node="pve1", cloud_image_url=URL, cloud_image_checksum=CHECKSUM, storage="local-lvm"
    ),
    "golden": TemplateConfig(vmid=9000, node="pve1"),
    "by-tags": TemplateConfig(tags=("k8s", "ubuntu-24-04")),
}


def tenant(name: str, bridge: str, vlan: int | None, third_octet: int) -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "name": name,
            "workerPools": [{"name": "w"}],
            "podCidr": f"10.{100 + third_octet}.0.0/16",
            "serviceCidr": f"10.{150 + third_octet}.0.0/16",
            "network": {
                "bridge": bridge,
                "vlan": vlan,
                "cidr": f"172.16.{third_octet}.0/24",
                "gateway": f"172.16.{third_octet}.1",
                "dnsServers": [f"172.16.{third_octet}.1"],
                "ipRange": {"start": f"172.16.{third_octet}.10", "end": f"172.16.{third_octet}.50"},
            },
        }
    )


TENANTS = (tenant("acme", "vmbr0", 100, 1), tenant("beta", "vmbr3", None, 2))


def args(**overrides: Any) -> ProxmoxClusterArgs:
    base: dict[str, Any] = {
        "proxmox": PROXMOX,
        "nodes": NODES,
        "templates": TEMPLATES,
        "networks": NETWORKS,
        "tenants": TENANTS,
    }
    return ProxmoxClusterArgs(**(base | overrides))


def build(**overrides: Any) -> Run:
    def program(_run: Run) -> None:
        ProxmoxCluster("pve", args(**overrides))

    return record(program)


@pytest.fixture(scope="module")
def run() -> Run:
    return build()


def acls(run: Run, consumer: str) -> dict[str, Reg]:
    return {r.inputs["path"]: r for r in run.regs if r.name.startswith(f"pve-{consumer}-acl-")}


# --------------------------------------------------------------------------------------------- resources


def test_children_are_named_after_the_component_and_parented_to_it(run: Run) -> None:
    comp = run.component()
    assert comp.name == "pve"
    children = [r for r in run.regs if r is not comp]
    assert all(r.name.startswith("pve-") for r in children)
    assert all(r.parent == comp.urn for r in children)
    assert all(r.type == DYNAMIC for r in children)
    assert run.names() >= {
        "pve-pool-platform",
        "pve-pool-templates",
        "pve-pool-tenant-acme",
        "pve-pool-tenant-beta",
        "pve-template-ubuntu-2404-kube",
        "pve-capmox-user",
        "pve-capmox-token",
        "pve-csi-user",
        "pve-csi-token",
        "pve-metrics-user",
        "pve-metrics-token",
        "pve-fw-management",
        "pve-fw-data",
        "pve-fw-storage",
    }


def test_dynamic_providers_are_pickled_by_reference(run: Run) -> None:
    expected = {
        "pve-pool-platform": b"providers.dynamic.pool",
        "pve-template-ubuntu-2404-kube": b"providers.dynamic.template",
        "pve-fw-management": b"providers.dynamic.firewall",
        "pve-capmox-token": b"providers.dynamic.access",
    }
    for name, module in expected.items():
        blob = base64.b64decode(run.named(name).inputs["__provider"])
        assert module in blob, name
        assert len(blob) < 400, f"{name}: a by-value pickle ({len(blob)} bytes) would carry code and globals"
        assert b"secret" not in blob.lower() and b"token_value" not in blob


def test_pools(run: Run) -> None:
    pools = {r.name: r.inputs["poolid"] for r in run.regs if r.name.startswith("pve-pool-")}
    assert pools == {
        "pve-pool-platform": "k8s-platform",
        "pve-pool-templates": "k8s-templates",
        "pve-pool-tenant-acme": "k8s-t-acme",
        "pve-pool-tenant-beta": "k8s-t-beta",
    }


def test_a_template_with_a_cloud_image_is_built_in_the_template_pool(run: Run) -> None:
    tpl = run.named("pve-template-ubuntu-2404-kube")
    inputs = tpl.inputs
    assert (inputs["name"], inputs["node"], inputs["vmid"], inputs["storage"]) == (
        "ubuntu-2404-kube",
        "pve1",
        9100,
        "local-lvm",
    )
    assert (inputs["image_url"], inputs["image_checksum"]) == (URL, CHECKSUM)
    assert (inputs["bridge"], inputs["vlan"], inputs["pool"]) == ("vmbr0", 10, "k8s-templates")
    assert inputs["tags"] == ["ubuntu-2404-kube"]
    assert inputs["owner"] == "platform/test/pve-template-ubuntu-2404-kube"
    assert tpl.depends_on(run.named("pve-pool-templates")), "the template joins the pool: the pool comes first"
    assert tpl.retain_on_delete is True


def test_referenced_templates_register_nothing(run: Run) -> None:
    assert not [n for n in run.names() if n.startswith("pve-template-") and n != "pve-template-ubuntu-2404-kube"]


def test_templates_can_be_deleted_with_the_stack_when_asked() -> None:
    assert build(retain_templates_on_delete=False).named("pve-template-ubuntu-2404-kube").retain_on_delete is False


def test_template_refs_and_clone_ordering() -> None:
    def program(run: Run) -> Any:
        cluster = ProxmoxCluster("pve", args())
        built, golden, tagged = (cluster.templates[n] for n in ("ubuntu-2404-kube", "golden", "by-tags"))
        run.probes["refs"] = [(t.name, t.built, t.node, t.tags) for t in (built, golden, tagged)]
        run.probes["plain_vmids"] = (golden.vmid, tagged.vmid)
        assert cluster.clone_dependencies("golden") == []
        ProxmoxVm(
            "cp-1",
            ProxmoxVmArgs(name="cp-1", node="pve1", template_vmid=built.vmid),
            opts=pulumi.ResourceOptions(depends_on=cluster.clone_dependencies("ubuntu-2404-kube")),
        )
        return None

    run = record(program)
    assert run.probes["refs"] == [
        ("ubuntu-2404-kube", True, "pve1", ("ubuntu-2404-kube",)),
        ("golden", False, "pve1", ()),
        ("by-tags", False, None, ("k8s", "ubuntu-24-04")),
    ]
    assert run.probes["plain_vmids"] == (9000, None)
    vm, tpl = run.named("cp-1"), run.named("pve-template-ubuntu-2404-kube")
    assert tpl.urn in vm.dependencies, "explicit: depends_on=clone_dependencies(...)"
    assert tpl.urn in vm.property_dependencies["template_vmid"], "implicit: the vmid Output of the template"
    assert vm.inputs["template_vmid"] == 9100


# --------------------------------------------------------------------------------------------- access


def test_one_user_and_one_privilege_separated_token_per_controller(run: Run) -> None:
    for consumer, tokenid in (("capmox", "capi"), ("csi", "csi"), ("metrics", "metrics")):
        user, token = run.named(f"pve-{consumer}-user"), run.named(f"pve-{consumer}-token")
        assert user.inputs["userid"] == f"k8s-{consumer}@pve"
        assert (token.inputs["userid"], token.inputs["tokenid"], token.inputs["privsep"]) == (
            f"k8s-{consumer}@pve",
            tokenid,
            True,
        )
        assert token.depends_on(user)
        assert "value" in token.additional_secret_outputs


def test_custom_roles_are_prefixed_and_least_privilege(run: Run) -> None:
    roles = {r.inputs["roleid"]: r.inputs["privileges"] for r in run.regs if r.name.startswith("pve-role-")}
    assert roles == {
        "k8s-CapmoxSysAudit": ["Sys.Audit"],
        "k8s-CapmoxDatastoreAllocateSpace": ["Datastore.AllocateSpace"],
        "k8s-KubernetesCSI": [
            "Datastore.Allocate",
            "Datastore.AllocateSpace",
            "Datastore.Audit",
            "VM.Audit",
            "VM.Config.Disk",
        ],
        "k8s-MetricsExporter": ["Datastore.Audit", "Pool.Audit", "Sys.Audit", "VM.Audit"],
    }
    metrics = [r for r in run.regs if r.name.startswith("pve-role-") and r.inputs["roleid"] == "k8s-MetricsExporter"]
    assert not any(p.endswith(("Allocate", "Modify", "PowerMgmt")) for p in metrics[0].inputs["privileges"])


def test_capmox_grants(run: Run) -> None:
    grants = {path: (r.inputs["roles"], r.inputs["propagate"]) for path, r in acls(run, "capmox").items()}
    assert grants == {
        "/": (["k8s-CapmoxSysAudit"], False),
        "/nodes": (["k8s-CapmoxSysAudit"], True),
        "/pool/k8s-templates": (["PVETemplateUser"], False),
        "/pool/k8s-t-acme": (["PVEVMAdmin"], False),
        "/pool/k8s-t-beta": (["PVEVMAdmin"], False),
        "/sdn/zones/localnetwork/vmbr0/100": (["PVESDNUser"], False),
        "/sdn/zones/localnetwork/vmbr3": (["PVESDNUser"], False),
        "/storage/local": (["PVEDatastoreAdmin"], False),
        "/storage/ceph-vm": (["k8s-CapmoxDatastoreAllocateSpace"], False),
        "/storage/local-lvm": (["k8s-CapmoxDatastoreAllocateSpace"], False),
        "/vms/9000": (["PVETemplateUser"], False),
    }
    assert "/pool/k8s-platform" not in grants, "CAPMOX never gets the management cluster's VMs"


def test_every_grant_goes_to_the_user_and_its_token(run: Run) -> None:
    for consumer in ("capmox", "csi", "metrics"):
        for path, acl in acls(run, consumer).items():
            assert acl.inputs["users"] == [f"k8s-{consumer}@pve"], path
            assert acl.inputs["tokens"] == [f"k8s-{consumer}@pve!{ {'capmox': 'capi'}.get(consumer, consumer) }"], path
            token = run.named(f"pve-{consumer}-token")
            assert acl.depends_on(token) and acl.depends_on(run.named(f"pve-{consumer}-user")), path


def test_acls_come_after_the_pools_and_roles_they_name(run: Run) -> None:
    capmox = acls(run, "capmox")
    assert capmox["/pool/k8s-t-acme"].depends_on(run.named("pve-pool-tenant-acme"))
    assert capmox["/pool/k8s-templates"].depends_on(run.named("pve-pool-templates"))
    assert not capmox["/pool/k8s-t-acme"].depends_on(run.named("pve-pool-tenant-beta"))
    assert capmox["/nodes"].depends_on(run.named("pve-role-k8s-capmoxsysaudit"))
    assert acls(run, "csi")["/"].depends_on(run.named("pve-role-k8s-kubernetescsi"))


def test_csi_and_metrics_grants(run: Run) -> None:
    csi = {p: (r.inputs["roles"], r.inputs["propagate"]) for p, r in acls(run, "csi").items()}
    assert csi == {"/": (["k8s-KubernetesCSI"], True)}
    metrics = {p: (r.inputs["roles"], r.inputs["propagate"]) for p, r in acls(run, "metrics").items()}
    assert metrics == {"/": (["k8s-MetricsExporter"], True)}


def test_csi_can_be_scoped_to_the_platform_pool() -> None:
    run = build(csi_scope="platform-pool", csi_storages=["ceph-vm"])
    csi = acls(run, "csi")
    assert set(csi) == {"/pool/k8s-platform", "/storage/ceph-vm"}
    assert csi["/pool/k8s-platform"].depends_on(run.named("pve-pool-platform"))


def test_token_secrets_are_secret_outputs() -> None:
    def program(run: Run) -> Any:
        cluster = ProxmoxCluster("pve", args())

        async def probe() -> None:
            for consumer in ("capmox", "csi", "metrics"):
                creds = getattr(cluster, consumer)
                run.probes[consumer] = (
                    await creds.token_secret.is_secret(),
                    await creds.token_secret.future(),
                    await creds.token_id.is_secret(),
                    await creds.token_id.future(),
                    creds.url,
                )

        return asyncio.ensure_future(probe())

    run = record(program)
    for consumer, tokenid in (("capmox", "capi"), ("csi", "csi"), ("metrics", "metrics")):
        is_secret, value, id_secret, token_id, _ = run.probes[consumer]
        assert is_secret is True and value == TOKEN_SECRETS[consumer]
        assert id_secret is False and token_id == f"k8s-{consumer}@pve!{tokenid}"
    assert run.probes["capmox"][4] == "https://pve.example.com:8006", "CAPMOX wants the URL without /api2/json"
    assert run.probes["csi"][4] == "https://pve.example.com:8006/api2/json"

    outputs = run.outputs[run.component().urn]
    for consumer in ("capmox", "csi", "metrics"):
        assert rpc.is_rpc_secret(outputs[f"{consumer}TokenSecret"]), consumer
        assert unwrap(outputs[f"{consumer}TokenSecret"]) == TOKEN_SECRETS[consumer]
        assert not rpc.is_rpc_secret(outputs[f"{consumer}TokenId"])
    assert outputs["poolIds"]["tenant:acme"] == "k8s-t-acme"
    assert outputs["templateVmids"] == {"ubuntu-2404-kube": 9100, "golden": 9000}  # by-tags: None, dropped
    assert outputs["securityGroups"] == {"management": "k8s-mgmt", "data": "k8s-data", "storage": "k8s-storage"}


def test_no_token_secret_reaches_another_resource_in_plaintext() -> None:
    run = build()
    for reg in run.regs:
        for value in TOKEN_SECRETS.values():
            assert value not in repr(reg.raw_inputs), reg.name


# --------------------------------------------------------------------------------------------- firewall


def rules_of(run: Run, net: str) -> list[dict[str, Any]]:
    """The rules as registered; None-valued keys are not serialized, so they are filled back in."""
    keys = FirewallRule().to_inputs()
    return [{k: r.get(k) for k in keys} for r in run.named(f"pve-fw-{net}").inputs["rules"]]


def test_security_groups_per_network(run: Run) -> None:
    groups = {r.name: r.inputs["group"] for r in run.regs if r.name.startswith("pve-fw-")}
    assert groups == {"pve-fw-management": "k8s-mgmt", "pve-fw-data": "k8s-data", "pve-fw-storage": "k8s-storage"}
    for net, cidr in (("data", "10.20.0.0/24"), ("storage", "10.30.0.0/24")):
        (only,) = rules_of(run, net)
        assert (only["type"], only["action"], only["source"], only["proto"], only["dport"]) == (
            "in",
            "ACCEPT",
            cidr,
            None,
            None,
        )


def test_management_rules(run: Run) -> None:
    by_port = {(r["proto"], r["dport"]): r for r in rules_of(run, "management")}
    assert by_port[("tcp", "22")]["source"] == "10.10.0.0/24"
    assert by_port[("tcp", "6443")]["source"] is None
    assert by_port[("tcp", "10250")]["source"] == "10.10.0.0/24"
    assert by_port[("tcp", "2379:2380")]["source"] == "10.10.0.0/24"
    assert all(r["type"] == "in" and r["action"] == "ACCEPT" and r["enable"] for r in rules_of(run, "management"))
    assert all(r["comment"] for r in rules_of(run, "management"))


def test_firewall_knobs() -> None:
    run = build(
        api_source_cidrs=["192.0.2.0/24"],
        control_plane_source="10.10.0.11,10.10.0.12,10.10.0.13",
        extra_management_rules=[FirewallRule(proto="tcp", dport="30000:32767", comment="NodePorts")],
        networks=NETWORKS.model_copy(update={"data": None, "storage": None}),
        prefix="dev",
    )
    assert {r.name for r in run.regs if r.name.startswith("pve-fw-")} == {"pve-fw-management"}
    rules = rules_of(run, "management")
    by_port = {(r["proto"], r["dport"]): r for r in rules}
    assert by_port[("tcp", "6443")]["source"] == "192.0.2.0/24"
    assert by_port[("tcp", "2379:2380")]["source"] == "10.10.0.11,10.10.0.12,10.10.0.13"
    assert rules[-1]["dport"] == "30000:32767"
    assert run.named("pve-fw-management").inputs["group"] == "dev-mgmt"
    assert run.named("pve-pool-platform").inputs["poolid"] == "dev-platform"


def test_management_rules_are_ordered_and_explained() -> None:
    rules = management_rules("10.0.0.0/24")
    assert [r.dport for r in rules[:5]] == ["22", "6443", "8132", "10250", "2379:2380"]
    for rule in rules:
        rule.validate()


# --------------------------------------------------------------------------------------------- plan-time checks


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"prefix": "K8S"}, "prefix"),
        ({"prefix": "waytoolongprefix"}, "prefix"),
        ({"templates": {"x": TemplateConfig(cloud_image_url=URL, node="pve1", storage="local-lvm")}}, "x.vmid"),
        ({"templates": {"x": TemplateConfig(vmid=9100, cloud_image_url=URL, node="pve9", storage="a")}}, "x.node"),
        (
            {"templates": {"x": TemplateConfig(vmid=9100, cloud_image_url=URL, node="pve1", storage="ceph-vm")}},
            "x.storage",
        ),
        ({"templates": {"x": TemplateConfig(vmid=9000)}}, "x.node: required with vmid"),
        ({"templates": {"x": TemplateConfig()}}, "needs one source"),
        ({"api_source_cidrs": ["10.0.0.1/24"]}, "host bits"),
        ({"csi_scope": "platform-pool"}, "csi_storages"),
        ({"tenants": (TENANTS[0], TENANTS[0])}, "duplicate"),
        ({"extra_management_rules": [FirewallRule(proto="tcp", dport="99999")]}, "above 65535"),
    ],
)
def test_bad_arguments_fail_before_anything_is_registered(overrides: dict[str, Any], problem: str) -> None:
    seen: list[Reg] = []

    def program(run: Run) -> None:
        seen.extend(run.regs)
        with pytest.raises(ProxmoxClusterError, match=problem):
            ProxmoxCluster("pve", args(**overrides))
        seen.extend(run.regs)

    record(program)
    assert seen == []


GUESTS = [
    {"type": "qemu", "vmid": 9000, "node": "pve1", "name": "golden", "template": 1, "tags": "k8s;ubuntu-24-04"},
    {"type": "qemu", "vmid": 100, "node": "pve1", "name": "app", "template": 0, "tags": ""},
]


def test_referenced_templates_are_checked_against_the_live_cluster_when_a_lookup_is_given() -> None:
    assert check_templates(TEMPLATES, NODES, GUESTS) == []
    bad = {
        "missing": TemplateConfig(vmid=9555, node="pve1"),
        "not-a-template": TemplateConfig(vmid=100, node="pve1"),
        "elsewhere": TemplateConfig(vmid=9000, node="pve2"),
        "no-match": TemplateConfig(tags=("k8s", "debian")),
        "taken": TemplateConfig(vmid=100, node="pve1", cloud_image_url=URL, storage="local-lvm"),
    }
    problems = check_templates(bad, NODES, GUESTS)
    assert problems == [
        "templates.missing.vmid: no VM 9555 in the cluster",
        "templates.not-a-template.vmid: VM 100 is not a template",
        "templates.elsewhere.node: template 9000 is on pve1, not pve2",
        "templates.no-match.tags: no template carries all of ['debian', 'k8s']",
        "templates.taken.vmid: VMID 100 is taken by the VM 'app'",
    ]

    calls: list[int] = []

    def lookup() -> list[dict[str, Any]]:
        calls.append(1)
        return GUESTS

    def program(_run: Run) -> None:
        with pytest.raises(ProxmoxClusterError, match="no VM 9555"):
            ProxmoxCluster("pve", args(templates={"missing": bad["missing"]}, template_lookup=lookup))
        ProxmoxCluster("ok", args(template_lookup=lookup))

    run = record(program)
    assert calls == [1, 1]
    assert "ok-pool-platform" in run.names() and "pve-pool-platform" not in run.names()


def test_pve8_role_check() -> None:
    run = build(pve_major_version=8)
    versions = {r.inputs["pve_major_version"] for r in run.regs if r.name.startswith("pve-role-")}
    assert versions == {8}


def test_management_group_admits_what_tenant_workers_need_and_no_more() -> None:
    rules = {(r.proto, r.dport): r for r in management_rules("10.10.0.0/24", api_sources=["10.20.0.0/16"])}
    for port in ("6443", "8132", "30000:32767"):
        assert rules[("tcp", port)].source == "10.20.0.0/16"
    assert rules[("tcp", "22")].source == "10.10.0.0/24"
    assert rules[("tcp", "2379:2380")].source == "10.10.0.0/24"
