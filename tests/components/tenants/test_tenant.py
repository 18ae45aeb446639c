"""Tenants under pulumi mocks: the full resource set, isolation, wiring, stability, secrets, providers.

The harness at the top (``stack_raw``, ``record_program``, ``build_platform``, ``build_tenant``) is shared
with ``tests/conformance/test_tenant_conformance.py`` and ``benchmarks/tenant_scaling.py``. It records
every ``RegisterResource`` (via ``tools.recording``) and, in addition, every ``ReadResource`` (the admin
kubeconfig is read, not created) and the options the recording does not keep (ignoreChanges, timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

from components.platform import Platform, PlatformArgs
from components.tenants.objects import (
    CAAPH_API,
    TENANT_LABEL,
    DatastoreAccess,
    PoolSpec,
    TemplateSource,
    control_plane_cidr,
    control_plane_footprint,
    quota_hard,
    tenant_firewall_group,
    tenant_pod_pools,
    versioned_name,
)
from components.tenants.tenant import ADMIN_KUBECONFIG_KEY, CapmoxCredentials, Tenant, TenantArgs
from config import StackConfig, StackSecrets, load_stack_config
from config.versions import DEFAULT_VERSIONS
from tools.recording import DYNAMIC, Recording, RecordingMocks, RecordingMonitor, plaintext_strings, record

# ---------------------------------------------------------------------------------------------
# Harness

K8S_PROVIDER = "pulumi:providers:kubernetes"
TENANT_TYPE = "platform:tenant:Tenant"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXJrZXlmb3J0ZXN0aW5nb25seQ platform@example"
MGMT_KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: m\n"
    "clusters: [{name: m, cluster: {server: 'https://10.10.10.10:6443'}}]\n"
    "contexts: [{name: m, context: {cluster: m, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
)


def admin_conf(namespace: str, cluster: str) -> str:
    """The kubeconfig the mocks pretend Kamaji wrote for a tenant."""
    return f"apiVersion: v1\nkind: Config\n# admin of {namespace}/{cluster}\n"


def token_secret(userid: str) -> str:
    """The secret the mocks give a Proxmox token of ``userid``."""
    return f"secret-{userid.split('@')[0]}-0d9f"


def _tenant(i: int, name: str) -> dict[str, Any]:
    """Tenant ``i`` of a generated stack: own VLAN, own /24 worker network, pod and service /17s."""
    return {
        "name": name,
        "workerPools": [{"name": "general", "count": 2, "cores": 2, "memoryMiB": 4096}],
        "podCidr": f"10.{100 + i}.0.0/17",
        "serviceCidr": f"10.{100 + i}.128.0/17",
        "network": {
            "bridge": "vmbr1",
            "vlan": 100 + i,
            "cidr": f"172.16.{i}.0/24",
            "gateway": f"172.16.{i}.1",
            "ipRange": {"start": f"172.16.{i}.100", "end": f"172.16.{i}.150"},
            "dnsServers": [f"172.16.{i}.1"],
        },
    }


BASE: dict[str, Any] = {
    "proxmox": {"endpoint": "https://pve1.example.com:8006", "tokenId": "pulumi@pve!platform", "clusterName": "lab"},
    "nodes": [
        {"name": "pve1", "storages": ["local-lvm", "ceph-vm"]},
        {"name": "pve2", "storages": ["local-lvm", "ceph-vm"]},
        {"name": "pve3", "storages": ["local-lvm", "ceph-vm"]},
    ],
    "templates": {
        "ubuntu-2404-kube": {"vmid": 9000, "node": "pve1"},
        "ubuntu-2404-tagged": {"tags": ["ubuntu-2404", "k8s"]},
    },
    "networks": {
        "management": {
            "bridge": "vmbr0",
            "cidr": "10.10.10.0/24",
            "gateway": "10.10.10.1",
            "dnsServers": ["10.10.10.1"],
        }
    },
    "managementCluster": {
        "controlPlanes": {"count": 1},
        "workers": {"count": 1},
        "ipRange": {"start": "10.10.10.20", "end": "10.10.10.39"},
        "controlPlaneEndpoint": "10.10.10.10",
        "sshPublicKeys": [SSH_KEY],
    },
    "storage": [{"storage": "ceph-vm", "storageClass": "ceph", "type": "rbd", "default": True}],
    "kamaji": {"loadBalancer": {"ipRange": {"start": "10.10.10.100", "end": "10.10.10.220"}}},
}

TEAM_A: dict[str, Any] = {
    **_tenant(0, "team-a"),
    "quota": {"cpu": 8, "memoryGiB": 32, "storageGiB": 100, "pods": 40},
}
TEAM_B: dict[str, Any] = {
    **_tenant(1, "team-b"),
    "kubernetesVersion": "v1.33.5",
    "controlPlaneReplicas": 3,
    "workerPools": [
        {"name": "small", "count": 3},
        {"name": "pinned", "count": 1, "template": "ubuntu-2404-tagged", "allowedNodes": ["pve2"], "diskGiB": 60},
    ],
    "vmidRange": {"start": 300000, "end": 300099},
}


def stack_raw(tenants: list[dict[str, Any]] | None = None, *, count: int | None = None, **top: Any) -> dict[str, Any]:
    """A valid raw stack config: ``tenants`` as given, or ``count`` generated tenants ``t000``..."""
    raw = copy.deepcopy(BASE)
    if count is not None:
        tenants = [_tenant(i, f"t{i:03d}") for i in range(count)]
    raw["tenants"] = copy.deepcopy(tenants if tenants is not None else [TEAM_A, TEAM_B])
    raw.update(copy.deepcopy(top))
    return raw


def external(raw: dict[str, Any]) -> dict[str, Any]:
    """The same stack on a management cluster you bring, with a PostgreSQL DataStore (live, no Kube-OVN)."""
    raw = copy.deepcopy(raw)
    raw["managementCluster"] = {"external": True}
    raw.pop("storage", None)
    raw["kamaji"]["datastore"] = {"driver": "postgresql", "endpoints": ["pg-rw.postgres.svc:5432"]}
    return raw


def render(raw: dict[str, Any]) -> dict[str, Any]:
    """The same stack in render mode (the local stack's shape: no cluster, manifests only)."""
    return {**copy.deepcopy(raw), "localRender": "rendered/test"}


class TenantMocks(RecordingMocks):
    """RecordingMocks plus: a distinct token secret per Proxmox user, and Kamaji's admin kubeconfig on read."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Echo inputs; answer reads of ``<ns>/<cluster>-admin-kubeconfig`` like Kamaji would."""
        if args.resource_id and args.typ == "kubernetes:core/v1:Secret":
            ns, _, secret = str(args.resource_id).partition("/")
            cluster = secret.removesuffix("-admin-kubeconfig")
            encoded = base64.b64encode(admin_conf(ns, cluster).encode()).decode()
            return args.resource_id, {"data": {ADMIN_KUBECONFIG_KEY: encoded}}
        rid, state = super().new_resource(args)
        if args.typ == DYNAMIC and "tokenid" in state and "userid" in state:
            state["value"] = token_secret(str(state["userid"]))
        return rid, state


@dataclass
class Read:
    """One ``ReadResource`` request."""

    type: str
    name: str
    id: str
    parent: str
    provider: str
    dependencies: list[str]


@dataclass
class Run:
    """A recording plus reads, the options the recording does not keep, and values probed by the program."""

    rec: Recording
    reads: list[Read] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, tuple[str, str, str, tuple[str, ...]]]:
        """Per logical name: type, parent, inputs and dependencies (what a second run must reproduce)."""
        return {
            r.name: (r.type, r.parent, repr(r.raw_inputs), tuple(sorted(r.dependencies)))
            for r in self.rec.registrations
        }


class _Monitor(RecordingMonitor):
    def __init__(self, mocks: TenantMocks, run: Run) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.run.options[request.name] = {
            "ignoreChanges": list(request.ignoreChanges),
            "create": request.customTimeouts.create,
            "delete": request.customTimeouts.delete,
        }
        return super().RegisterResource(request)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self.run.reads.append(
            Read(
                type=request.type,
                name=request.name,
                id=request.id,
                parent=request.parent,
                provider=request.provider,
                dependencies=list(request.dependencies),
            )
        )
        return response


def record_program(program: Callable[[Run], object]) -> Run:
    """Run ``program`` under the tenant mocks on a fresh loop; what it returns is awaited."""
    mocks = TenantMocks()
    run = Run(rec=Recording())
    monitor = _Monitor(mocks, run)
    run.rec = record(lambda: program(run), mocks=mocks, monitor=monitor)
    return run


def secrets_for(cfg: StackConfig) -> StackSecrets:
    """Secret config values as the program would read them."""
    return StackSecrets(
        proxmox_token_secret=pulumi.Output.secret("pve-token-secret"),
        management_kubeconfig=pulumi.Output.secret(MGMT_KUBECONFIG) if cfg.management_cluster.external else None,
        ssh_private_key=pulumi.Output.secret("ssh-private-key"),
        csi_encryption_passphrase=None,
        kamaji_datastore_password=pulumi.Output.secret("pg-password")
        if cfg.kamaji.datastore.driver == "postgresql"
        else None,
    )


def build_platform(raw: dict[str, Any]) -> Run:
    """The whole Platform for a raw stack config; probes the tenant kubeconfigs output."""
    cfg = load_stack_config(raw)

    def program(run: Run) -> object:
        platform = Platform("platform", PlatformArgs(config=cfg, secrets=secrets_for(cfg)))

        async def probe() -> None:
            out = platform.tenant_kubeconfigs
            run.probes["kubeconfigs"] = (await out.is_secret(), await out.future())

        return asyncio.ensure_future(probe())

    return record_program(program)


def mgmt_provider() -> kubernetes.Provider:
    """The management cluster's explicit provider."""
    return kubernetes.Provider("mgmt-k8s", kubeconfig=pulumi.Output.secret("{}"), cluster_identifier="mgmt")


def tenant_args(cfg: StackConfig, name: str, provider: kubernetes.Provider, **overrides: Any) -> TenantArgs:
    """TenantArgs for one tenant of ``cfg``, with the credentials a ProxmoxCluster would hand over."""
    tenant = next(t for t in cfg.tenants if t.name == name)
    user = f"k8s-t-{name}-capmox@pve"
    args = TenantArgs.from_stack(
        cfg,
        tenant,
        provider=provider,
        proxmox_pool=f"k8s-t-{name}",
        credentials=CapmoxCredentials(
            url="https://pve1.example.com:8006",
            token_id=f"{user}!capi",
            token_secret=pulumi.Output.secret(token_secret(user)),
        ),
        datastore_name="default",
        versions=DEFAULT_VERSIONS,
    )
    return replace(args, **overrides)


def build_tenant(raw: dict[str, Any], name: str, **overrides: Any) -> Run:
    """One Tenant alone (live mode unless ``render=True``), probing its kubeconfig output."""
    cfg = load_stack_config(raw)

    def program(run: Run) -> object:
        tenant = Tenant(f"tenant-{name}", tenant_args(cfg, name, mgmt_provider(), **overrides))
        run.probes["tenant"] = tenant
        if tenant.kubeconfig is None:
            return None

        async def probe() -> None:
            assert tenant.kubeconfig is not None
            run.probes["kubeconfig"] = (await tenant.kubeconfig.is_secret(), await tenant.kubeconfig.future())

        return asyncio.ensure_future(probe())

    return record_program(program)


def objects(run: Run, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """Inputs of the Kubernetes objects of ``kind`` (optionally in ``namespace``)."""
    found = [r.inputs for r in run.rec.kind(kind)]
    return [o for o in found if namespace is None or o["metadata"].get("namespace") == namespace]


def one(run: Run, kind: str, namespace: str) -> dict[str, Any]:
    """The single object of ``kind`` in ``namespace``."""
    (obj,) = objects(run, kind, namespace)
    return obj


@pytest.fixture(scope="module")
def live() -> Run:
    """team-b alone, live mode (Kube-OVN, CNI, kubeconfig read)."""
    return build_tenant(stack_raw(), "team-b")


@pytest.fixture(scope="module")
def rendered() -> Run:
    """The whole platform with three tenants, render mode (the local stack's shape)."""
    tenants = [TEAM_A, TEAM_B, _tenant(2, "team-c")]
    return build_platform(render(stack_raw(tenants)))


@pytest.fixture(scope="module")
def brought() -> Run:
    """The whole platform on a management cluster you bring (live: kubeconfigs are read)."""
    return build_platform(external(stack_raw()))


# ---------------------------------------------------------------------------------------------
# The resource set


def test_a_tenant_has_its_full_resource_set(live: Run) -> None:
    ns = "tenant-team-b"
    got = sorted(
        (r.type.rsplit(":", 1)[-1], r.inputs.get("metadata", {}).get("name", r.inputs.get("group", "")))
        for r in live.rec.registrations
        if r.type not in (K8S_PROVIDER, TENANT_TYPE)
    )
    pmt = live.probes["tenant"].machine_templates
    kct = live.probes["tenant"].bootstrap_templates
    assert got == sorted(
        [
            ("Namespace", ns),
            ("ResourceQuota", "tenant-quota"),
            ("LimitRange", "tenant-limits"),
            ("Role", "tenant-admin"),
            ("RoleBinding", "tenant-admin"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "allow-dns"),
            ("NetworkPolicy", "allow-datastore"),
            ("NetworkPolicy", "allow-control-plane-ingress"),
            ("Subnet", ns),
            ("Resource", "k8s-t-team-b"),
            ("Secret", "team-b-proxmox-credentials"),
            ("KamajiControlPlane", "team-b"),
            ("ProxmoxCluster", "team-b"),
            ("Cluster", "team-b"),
            ("ProxmoxMachineTemplate", pmt["small"]),
            ("ProxmoxMachineTemplate", pmt["pinned"]),
            ("KubeadmConfigTemplate", kct["small"]),
            ("KubeadmConfigTemplate", kct["pinned"]),
            ("MachineDeployment", "team-b-small"),
            ("MachineDeployment", "team-b-pinned"),
            ("HelmChartProxy", "team-b-cilium"),
        ]
    )
    (read,) = live.reads
    assert (read.type, read.id) == ("kubernetes:core/v1:Secret", f"{ns}/team-b-admin-kubeconfig")


def test_isolation_objects_exist_for_every_tenant(rendered: Run) -> None:
    for tenant in ("team-a", "team-b", "team-c"):
        ns = f"tenant-{tenant}"
        (namespace,) = [o for o in objects(rendered, "Namespace") if o["metadata"]["name"] == ns]
        assert namespace["metadata"]["labels"][TENANT_LABEL] == tenant
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
        assert one(rendered, "ResourceQuota", ns)["spec"]["hard"]["pods"]
        assert one(rendered, "LimitRange", ns)["spec"]["limits"][0]["type"] == "Container"
        policies = {o["metadata"]["name"]: o["spec"] for o in objects(rendered, "NetworkPolicy", ns)}
        assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        assert set(policies) == {"default-deny", "allow-dns", "allow-datastore", "allow-control-plane-ingress"}
        (subnet,) = [o for o in objects(rendered, "Subnet") if o["spec"]["namespaces"] == [ns]]
        assert subnet["spec"]["private"] is True
        assert one(rendered, "Role", ns)["metadata"]["name"] == "tenant-admin"
        binding = one(rendered, "RoleBinding", ns)
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"tenant-{tenant}-admins"}
        ]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-admin"}


def test_every_resource_is_parented_named_and_on_the_explicit_provider(rendered: Run, live: Run) -> None:
    for run in (rendered, live):
        (provider,) = [r for r in run.rec.registrations if r.type == K8S_PROVIDER]
        provider_ref = f"{provider.urn}::{provider.name}-id"
        tenants = {r.urn: r for r in run.rec.registrations if r.type == TENANT_TYPE}
        assert tenants
        children = [r for r in run.rec.registrations if r.parent in tenants]
        assert len(children) >= 20 * len(tenants)
        for r in children:
            assert r.name.startswith(tenants[r.parent].name + "-"), r.name
            if r.type.startswith("kubernetes:"):
                assert r.provider == provider_ref, f"{r.name} is not on the explicit provider"
            else:
                assert r.type == DYNAMIC and r.provider == "", r.name
    assert {r.provider for r in live.reads} == {
        f"{next(r for r in live.rec.registrations if r.type == K8S_PROVIDER).urn}::mgmt-k8s-id"
    }
    assert all(r.parent == live.rec.named("tenant-team-b").urn for r in live.reads)


def test_tenants_come_after_the_platform_services(rendered: Run) -> None:
    ns = rendered.rec.named("platform-tenant-team-a-namespace")
    assert ns.depends_on(rendered.rec.named("platform-kamaji-datastore"))
    assert ns.depends_on(rendered.rec.named("platform-capi-infrastructureprovider-proxmox"))
    assert ns.depends_on(rendered.rec.named("platform-capi-controlplaneprovider-kamaji"))
    # CAAPH serves HelmChartProxy: the tenant's CNI proxy waits for it through the namespace.
    assert ns.depends_on(rendered.rec.named("platform-capi-addonprovider-helm"))
    assert rendered.rec.named("platform-tenant-team-a-cni").depends_on(ns)
    pc = rendered.rec.named("platform-tenant-team-a-proxmox-cluster")
    assert pc.depends_on(rendered.rec.named("platform-proxmox-pool-tenant-team-a"))
    assert pc.depends_on(rendered.rec.named("platform-proxmox-tenant-team-a-capmox-acl-pool-k8s-t-team-a"))
    assert not pc.depends_on(rendered.rec.named("platform-proxmox-pool-tenant-team-b"))


# ---------------------------------------------------------------------------------------------
# Network isolation


def test_control_plane_subnet_is_carved_from_the_tenant_pod_cidr(live: Run) -> None:
    spec = one_cluster_scoped(live, "Subnet")["spec"]
    pod = ipaddress.IPv4Network("10.101.0.0/17")
    subnet = ipaddress.IPv4Network(spec["cidrBlock"])
    assert subnet == control_plane_cidr(pod) == ipaddress.IPv4Network("10.101.127.192/26")
    assert subnet.subnet_of(pod)
    assert spec["namespaces"] == ["tenant-team-b"] and spec["private"] is True and spec["natOutgoing"] is False
    assert spec["allowSubnets"] == sorted(["10.244.0.0/16", "10.10.10.0/24", "172.16.1.0/24"])
    pools = [ipaddress.IPv4Network(p) for p in tenant_pod_pools(pod)]
    assert not any(p.overlaps(subnet) for p in pools), "the tenant's Cilium must never hand out these addresses"
    assert sum(p.num_addresses for p in pools) == pod.num_addresses - 256


def one_cluster_scoped(run: Run, kind: str) -> dict[str, Any]:
    (obj,) = objects(run, kind)
    return obj


def test_tenant_subnets_never_admit_each_other(rendered: Run) -> None:
    subnets = {o["spec"]["namespaces"][0]: o["spec"] for o in objects(rendered, "Subnet")}
    cidrs = {ns: ipaddress.IPv4Network(s["cidrBlock"]) for ns, s in subnets.items()}
    assert len(cidrs) == 3
    for ns, spec in subnets.items():
        for other, cidr in cidrs.items():
            if other == ns:
                continue
            assert not cidr.overlaps(cidrs[ns])
            assert not any(cidr.overlaps(ipaddress.IPv4Network(a)) for a in spec["allowSubnets"]), (ns, other)


def test_network_policies_allow_only_what_the_control_plane_needs(live: Run, brought: Run) -> None:
    policies = {o["metadata"]["name"]: o["spec"] for o in objects(live, "NetworkPolicy", "tenant-team-b")}
    (dns,) = policies["allow-dns"]["egress"]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted(p["protocol"] for p in dns["ports"]) == ["TCP", "UDP"]
    (etcd,) = policies["allow-datastore"]["egress"]
    assert etcd["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kamaji-system"}}}]
    assert [p["port"] for p in etcd["ports"]] == [2379]
    (ingress,) = policies["allow-control-plane-ingress"]["ingress"]
    assert sorted(p["port"] for p in ingress["ports"]) == [6443, 8132] and "from" not in ingress
    assert policies["allow-control-plane-ingress"]["policyTypes"] == ["Ingress"]
    for name in ("allow-dns", "allow-datastore"):
        assert policies[name]["policyTypes"] == ["Egress"]
    pg = {o["metadata"]["name"]: o["spec"] for o in objects(brought, "NetworkPolicy", "tenant-team-a")}
    (sql,) = pg["allow-datastore"]["egress"]
    assert sql["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "postgres"}}}]
    assert [p["port"] for p in sql["ports"]] == [5432]


def test_a_brought_in_cluster_gets_no_kube_ovn_subnet_but_keeps_the_policies(brought: Run) -> None:
    assert not objects(brought, "Subnet")
    assert len(objects(brought, "NetworkPolicy")) == 8


def test_datastore_access_from_endpoints() -> None:
    access = DatastoreAccess.from_endpoints(["pg.db.svc.cluster.local:5432", "db.example.com:6432"])
    assert access == DatastoreAccess(ports=(5432, 6432), namespaces=("db",), cidrs=("0.0.0.0/0",))
    with pytest.raises(ValueError, match="namespace or a CIDR"):
        DatastoreAccess(ports=(1,))


# ---------------------------------------------------------------------------------------------
# Quota, limits, RBAC


def test_quota_comes_from_the_config_or_is_sized_for_the_control_plane(rendered: Run) -> None:
    a = one(rendered, "ResourceQuota", "tenant-team-a")["spec"]["hard"]
    assert a == {
        "requests.cpu": "8",
        "requests.memory": "32Gi",
        "limits.memory": "32Gi",
        "requests.storage": "100Gi",
        "pods": "40",
        "services.loadbalancers": "1",
    }
    b = one(rendered, "ResourceQuota", "tenant-team-b")["spec"]["hard"]  # 3 replicas, no quota configured
    need = control_plane_footprint(3)
    assert int(b["requests.cpu"]) * 1000 >= need.cpu_millis
    assert int(b["limits.memory"].removesuffix("Gi")) * 1024 >= need.memory_limit_mib
    assert int(b["pods"]) >= need.pods == 6


def test_a_quota_smaller_than_the_control_plane_is_refused() -> None:
    with pytest.raises(ValueError, match=r"quota too small for 3 control-plane replicas.*cpu 1 < 2700m"):
        quota_hard(cpu=1, memory_gib=64, storage_gib=1, pods=50, replicas=3, service_type="LoadBalancer")
    hard = quota_hard(cpu=None, memory_gib=None, storage_gib=None, pods=None, replicas=1, service_type="NodePort")
    assert hard["services.loadbalancers"] == "0"


def test_control_plane_containers_fit_the_limit_range(live: Run) -> None:
    kcp = one(live, "KamajiControlPlane", "tenant-team-b")["spec"]
    limits = one(live, "LimitRange", "tenant-team-b")["spec"]["limits"][0]
    for component in (
        kcp["apiServer"],
        kcp["controllerManager"],
        kcp["scheduler"],
        kcp["addons"]["konnectivity"]["server"],
    ):
        res = component["resources"]
        assert res["requests"]["cpu"].endswith("m") and "memory" in res["limits"]
        assert int(res["limits"]["memory"].removesuffix("Mi")) <= 8 * 1024 == int(limits["max"]["memory"][:-2]) * 1024


def test_tenant_admins_may_only_read(live: Run) -> None:
    rules = one(live, "Role", "tenant-team-b")["rules"]
    verbs = {v for rule in rules for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    secret_rules = [r for r in rules if "secrets" in r["resources"]]
    assert secret_rules == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["team-b-admin-kubeconfig"], "verbs": ["get"]}
    ]
    assert not any("*" in r["resources"] or "*" in r.get("apiGroups", []) for r in rules)


# ---------------------------------------------------------------------------------------------
# Cluster API wiring


def test_cluster_references_the_control_plane_and_the_infrastructure(live: Run) -> None:
    ns = "tenant-team-b"
    cluster = one(live, "Cluster", ns)
    spec = cluster["spec"]
    assert spec["clusterNetwork"]["pods"] == {"cidrBlocks": ["10.101.0.0/17"]}
    assert spec["clusterNetwork"]["services"] == {"cidrBlocks": ["10.101.128.0/17"]}
    kcp = one(live, "KamajiControlPlane", ns)
    pc = one(live, "ProxmoxCluster", ns)
    assert spec["controlPlaneRef"] == {
        "apiGroup": kcp["apiVersion"].split("/")[0],
        "kind": "KamajiControlPlane",
        "name": kcp["metadata"]["name"],
    }
    assert spec["infrastructureRef"] == {
        "apiGroup": pc["apiVersion"].split("/")[0],
        "kind": "ProxmoxCluster",
        "name": pc["metadata"]["name"],
    }
    assert cluster["metadata"]["annotations"] == {
        "pulumi.com/waitFor": "jsonpath={.status.initialization.controlPlaneInitialized}=true"
    }


def test_kamaji_control_plane(live: Run) -> None:
    kcp = one(live, "KamajiControlPlane", "tenant-team-b")
    spec = kcp["spec"]
    assert kcp["apiVersion"] == "controlplane.cluster.x-k8s.io/v1alpha2"
    assert (spec["version"], spec["replicas"], spec["dataStoreName"]) == ("v1.33.5", 3, "default")
    assert spec["network"]["serviceType"] == "LoadBalancer"
    assert set(spec["addons"]) == {"coreDNS", "kubeProxy", "konnectivity"}
    assert spec["addons"]["konnectivity"]["server"]["port"] == 8132
    assert spec["kubelet"]["preferredAddressTypes"][0] == "InternalIP"
    assert "controlPlaneEndpoint" not in spec, "written by the Kamaji provider"
    assert live.options["tenant-team-b-control-plane"]["ignoreChanges"] == ["spec.controlPlaneEndpoint"]
    assert kcp["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_proxmox_cluster_and_its_scoped_credentials(live: Run) -> None:
    ns = "tenant-team-b"
    pc = one(live, "ProxmoxCluster", ns)["spec"]
    assert pc["externalManagedControlPlane"] is True and "controlPlaneEndpoint" not in pc
    assert pc["ipv4Config"] == {"addresses": ["172.16.1.100-172.16.1.150"], "prefix": 24, "gateway": "172.16.1.1"}
    assert pc["dnsServers"] == ["172.16.1.1"]
    assert pc["allowedNodes"] == ["pve1", "pve2", "pve3"]
    secret = live.rec.named("tenant-team-b-capmox-credentials")
    assert pc["credentialsRef"] == {"name": secret.inputs["metadata"]["name"], "namespace": ns}
    assert secret.inputs["metadata"]["labels"]["platform.ionos.com/secret-type"] == "proxmox-credentials"
    assert rpc.is_rpc_secret(secret.raw_inputs["stringData"])
    assert secret.inputs["stringData"] == {
        "url": "https://pve1.example.com:8006",
        "token": "k8s-t-team-b-capmox@pve!capi",
        "secret": token_secret("k8s-t-team-b-capmox@pve"),
    }
    assert set(secret.additional_secret_outputs) == {"data", "stringData"}
    for r in live.rec.registrations:
        assert not any(token_secret("k8s-t-team-b-capmox@pve") in s for s in plaintext_strings(r.raw_inputs)), r.name


def test_the_platform_hands_each_tenant_its_own_pool_scoped_token(rendered: Run) -> None:
    def grants(tenant: str) -> dict[str, list[str]]:
        prefix = f"platform-proxmox-tenant-{tenant}-capmox-acl-"
        return {r.inputs["path"]: r.inputs["roles"] for r in rendered.rec.registrations if r.name.startswith(prefix)}

    a = grants("team-a")
    assert a["/pool/k8s-t-team-a"] == ["PVEVMAdmin"]
    assert a["/sdn/zones/localnetwork/vmbr1/100"] == ["PVESDNUser"]
    assert a["/pool/k8s-templates"] == ["PVETemplateUser"]
    assert not [p for p in a if "team-b" in p or p.endswith("/101") or p == "/pool/k8s-platform"]
    token = rendered.rec.named("platform-proxmox-tenant-team-a-capmox-token").inputs
    assert (token["userid"], token["tokenid"], token["privsep"]) == ("k8s-t-team-a-capmox@pve", "capi", True)
    secret = one(rendered, "Secret", "tenant-team-a")
    assert secret["stringData"]["token"] == "k8s-t-team-a-capmox@pve!capi"
    assert secret["stringData"]["secret"] == token_secret("k8s-t-team-a-capmox@pve")


def test_machine_deployments_point_at_their_templates(live: Run) -> None:
    ns = "tenant-team-b"
    tenant = live.probes["tenant"]
    templates = {o["metadata"]["name"]: o for o in objects(live, "ProxmoxMachineTemplate", ns)}
    bootstraps = {o["metadata"]["name"]: o for o in objects(live, "KubeadmConfigTemplate", ns)}
    kcp_version = one(live, "KamajiControlPlane", ns)["spec"]["version"]
    mds = {o["metadata"]["name"]: o["spec"] for o in objects(live, "MachineDeployment", ns)}
    assert {n: md["replicas"] for n, md in mds.items()} == {"team-b-small": 3, "team-b-pinned": 1}
    for pool in ("small", "pinned"):
        md = mds[f"team-b-{pool}"]
        spec = md["template"]["spec"]
        assert md["clusterName"] == spec["clusterName"] == "team-b"
        assert spec["version"] == kcp_version, "workers run the control plane's version (Kamaji#1062)"
        assert spec["infrastructureRef"] == {
            "apiGroup": "infrastructure.cluster.x-k8s.io",
            "kind": "ProxmoxMachineTemplate",
            "name": tenant.machine_templates[pool],
        }
        assert spec["bootstrap"]["configRef"]["name"] == tenant.bootstrap_templates[pool]
        assert spec["bootstrap"]["configRef"]["name"] in bootstraps
        assert md["selector"]["matchLabels"].items() <= md["template"]["metadata"]["labels"].items()
        pmt = templates[tenant.machine_templates[pool]]["spec"]["template"]["spec"]
        assert pmt["pool"] == "k8s-t-team-b" and pmt["vmIDRange"] == {"start": 300000, "end": 300099}
        assert pmt["network"]["networkDevices"] == [{"name": "net0", "bridge": "vmbr1", "model": "virtio", "vlan": 101}]
    small = templates[tenant.machine_templates["small"]]["spec"]["template"]["spec"]
    pinned = templates[tenant.machine_templates["pinned"]]["spec"]["template"]["spec"]
    assert (small["sourceNode"], small["templateID"]) == ("pve1", 9000) and "templateSelector" not in small
    assert pinned["templateSelector"] == {"matchTags": ["k8s", "ubuntu-2404"], "matchPolicy": "uniqueSubset"}
    assert pinned["allowedNodes"] == ["pve2"] and pinned["disks"]["bootVolume"]["sizeGb"] == 60


def test_machine_template_names_are_the_hash_of_their_spec(live: Run) -> None:
    for obj in objects(live, "ProxmoxMachineTemplate", "tenant-team-b"):
        pool = obj["metadata"]["labels"]["proxmox-k8s-platform/pool"]
        from providers.proxmox.wire import plain_numbers

        assert obj["metadata"]["name"] == versioned_name(f"team-b-{pool}", plain_numbers(obj["spec"]))


def _pool_change(**changes: Any) -> dict[str, Any]:
    raw = stack_raw()
    raw["tenants"][1]["workerPools"][0].update(changes)
    return raw


def test_a_changed_pool_spec_gets_a_new_template_name_and_the_deployment_follows(live: Run) -> None:
    changed = build_tenant(_pool_change(memoryMiB=8192), "team-b")
    before, after = live.probes["tenant"].machine_templates, changed.probes["tenant"].machine_templates
    assert before["small"] != after["small"] and before["pinned"] == after["pinned"]
    assert after["small"].startswith("team-b-small-")
    md = changed.rec.named("tenant-team-b-md-small").inputs["spec"]
    assert md["template"]["spec"]["infrastructureRef"]["name"] == after["small"]
    # Same logical name: Pulumi replaces the object (metadata.name changed), creating the new one first.
    assert changed.rec.named("tenant-team-b-pmt-small").inputs["metadata"]["name"] == after["small"]


def test_resizing_a_pool_keeps_its_templates(live: Run) -> None:
    resized = build_tenant(_pool_change(count=7), "team-b")
    assert resized.probes["tenant"].machine_templates == live.probes["tenant"].machine_templates
    assert resized.rec.named("tenant-team-b-md-small").inputs["spec"]["replicas"] == 7


# ---------------------------------------------------------------------------------------------
# Stability across tenants


def _changed(before: Run, after: Run) -> set[str]:
    old, new = before.fingerprint(), after.fingerprint()
    return {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}


def _owned_by(name: str, tenant: str, vlan: int) -> bool:
    """A logical name belongs to ``tenant``: its component, its Proxmox pool/identity, its network's ACL."""
    return f"tenant-{tenant}" in name or f"-t-{tenant}" in name or name.endswith(f"sdn-zones-localnetwork-vmbr1-{vlan}")


def test_resizing_one_tenant_changes_only_its_resources(rendered: Run) -> None:
    raw = render(stack_raw([TEAM_A, TEAM_B, _tenant(2, "team-c")]))
    raw["tenants"][1]["workerPools"][0]["count"] = 9
    raw["tenants"][1]["workerPools"][1]["cores"] = 8
    changed = _changed(rendered, build_platform(raw))
    assert changed == {
        "platform-tenant-team-b-md-small",
        "platform-tenant-team-b-md-pinned",
        "platform-tenant-team-b-pmt-pinned",
    }


def test_adding_or_removing_a_tenant_touches_only_that_tenant(rendered: Run) -> None:
    more = build_platform(render(stack_raw([TEAM_A, TEAM_B, _tenant(2, "team-c"), _tenant(3, "team-d")])))
    added = _changed(rendered, more)
    assert added and all(_owned_by(n, "team-d", 103) for n in added), sorted(added)
    assert all(n not in rendered.fingerprint() for n in added), "nothing that existed changed"
    fewer = build_platform(render(stack_raw([TEAM_B, _tenant(2, "team-c")])))
    removed = _changed(rendered, fewer)
    assert removed and all(_owned_by(n, "team-a", 100) for n in removed), sorted(removed)
    assert all(n not in fewer.fingerprint() for n in removed), "nothing that stays changed"


def test_no_tenant_object_refers_to_another_tenant(rendered: Run) -> None:
    tenants = {"team-a", "team-b", "team-c"}
    for r in rendered.rec.registrations:
        owner = next((t for t in tenants if f"tenant-{t}-" in r.name), None)
        if owner is None:
            continue
        text = " ".join(plaintext_strings(r.inputs))
        for other in tenants - {owner}:
            assert other not in text, f"{r.name} mentions {other}"


# ---------------------------------------------------------------------------------------------
# Ordering


def test_no_control_plane_pod_starts_before_its_guard_rails(live: Run) -> None:
    kcp = live.rec.named("tenant-team-b-control-plane")
    for guard in ("subnet", "quota", "limits", "netpol-default-deny", "netpol-allow-dns"):
        assert kcp.depends_on(live.rec.named(f"tenant-team-b-{guard}")), guard


def test_the_cluster_is_deleted_first_and_waits_for_its_control_plane(live: Run) -> None:
    cluster = live.rec.named("tenant-team-b-cluster")
    kcp = live.rec.named("tenant-team-b-control-plane")
    for dep in ("control-plane", "proxmox-cluster", "md-small", "md-pinned"):
        assert cluster.depends_on(live.rec.named(f"tenant-team-b-{dep}")), dep
    assert not kcp.depends_on(cluster), "the KCP waits for its owner Cluster: depending on it would deadlock"
    assert live.options["tenant-team-b-cluster"]["delete"] == "45m"
    for skipped in ("control-plane", "proxmox-cluster", "md-small"):
        annotations = live.rec.named(f"tenant-team-b-{skipped}").inputs["metadata"]["annotations"]
        assert annotations == {"pulumi.com/skipAwait": "true"}, skipped
    (read,) = live.reads
    assert cluster.urn in read.dependencies and kcp.urn in read.dependencies
    md = live.rec.named("tenant-team-b-md-small")
    assert md.depends_on(live.rec.named("tenant-team-b-pmt-small"))
    assert md.depends_on(live.rec.named("tenant-team-b-kct-small"))


# ---------------------------------------------------------------------------------------------
# CNI


def test_cilium_is_installed_by_a_helm_chart_proxy_selecting_the_cluster(live: Run) -> None:
    import yaml

    proxy = one(live, "HelmChartProxy", "tenant-team-b")
    cluster_labels = one(live, "Cluster", "tenant-team-b")["metadata"]["labels"]
    spec = proxy["spec"]
    assert proxy["apiVersion"] == CAAPH_API
    assert spec["clusterSelector"]["matchLabels"].items() <= cluster_labels.items()
    assert (spec["chartName"], spec["version"]) == ("cilium", DEFAULT_VERSIONS.cilium.version)
    assert spec["repoURL"] == "https://helm.cilium.io" and spec["namespace"] == "kube-system"
    values = yaml.safe_load(spec["valuesTemplate"])
    pools = values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"]
    assert pools == tenant_pod_pools("10.101.0.0/17")
    assert values["kubeProxyReplacement"] is False, "Kamaji runs kube-proxy as an addon"
    caaph_v1alpha1 = {
        "chartName",
        "clusterSelector",
        "repoURL",
        "version",
        "namespace",
        "releaseName",
        "valuesTemplate",
    }
    assert set(spec) <= caaph_v1alpha1


def test_no_cni_means_no_proxy_and_no_cni_label() -> None:
    run = build_tenant(stack_raw(), "team-a", cni=None)
    assert not objects(run, "HelmChartProxy")
    assert "proxmox-k8s-platform/cni" not in one(run, "Cluster", "tenant-team-a")["metadata"]["labels"]


# ---------------------------------------------------------------------------------------------
# Kubeconfig


def test_the_kubeconfig_is_read_from_kamaji_and_secret(live: Run) -> None:
    is_secret, value = live.probes["kubeconfig"]
    assert is_secret is True
    assert value == admin_conf("tenant-team-b", "team-b")


def test_the_platform_exports_every_tenant_kubeconfig_as_one_secret(brought: Run, rendered: Run) -> None:
    is_secret, value = brought.probes["kubeconfigs"]
    assert is_secret is True
    assert value == {t: admin_conf(f"tenant-{t}", t) for t in ("team-a", "team-b")}
    assert {r.id for r in brought.reads} == {
        "tenant-team-a/team-a-admin-kubeconfig",
        "tenant-team-b/team-b-admin-kubeconfig",
    }
    # render mode: no cluster, nothing read, nothing exported (but still a secret Output)
    assert rendered.reads == []
    assert rendered.probes["kubeconfigs"] == (True, {})


def test_render_mode_reads_nothing() -> None:
    run = build_tenant(render(stack_raw()), "team-a")
    assert run.probes["tenant"].kubeconfig is None and run.reads == []


def test_without_awaiting_readiness_no_kubeconfig_is_read() -> None:
    # Nothing waits for Kamaji to initialize the control plane, so its Secret may not exist yet.
    raw = external(stack_raw())
    raw["managementCluster"] = {**raw["managementCluster"], "awaitReadiness": False}
    run = build_platform(raw)
    assert run.reads == []
    assert run.probes["kubeconfigs"] == (True, {})


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pod_cidr": ipaddress.IPv4Network("10.100.0.0/23")}, "too small"),
        ({"control_plane_replicas": 6}, "1..5"),
        ({"pools": []}, "at least one worker pool"),
        ({"vmid_range": (10, 5)}, "starts after it ends"),
        ({"quota": None, "control_plane_replicas": 5, "service_type": "NodePort"}, None),
    ],
)
def test_tenant_args_validation(overrides: dict[str, Any], message: str | None) -> None:
    cfg = load_stack_config(stack_raw())

    def program(_: Run) -> None:
        tenant_args(cfg, "team-a", mgmt_provider(), **overrides)

    if message is None:
        record_program(program)
        return
    with pytest.raises(ValueError, match=message):
        record_program(program)


def test_duplicate_pools_and_bad_templates_are_refused() -> None:
    cfg = load_stack_config(stack_raw())
    pool = PoolSpec(
        name="a",
        replicas=1,
        cores=1,
        memory_mib=1024,
        disk_gib=10,
        template=TemplateSource(tags=("x",)),
        allowed_nodes=("n",),
    )
    with pytest.raises(ValueError, match="duplicate worker pool"):
        record_program(lambda _: tenant_args(cfg, "team-a", mgmt_provider(), pools=[pool, pool]))
    with pytest.raises(ValueError, match="exactly one"):
        TemplateSource(vmid=1, node="n", tags=("x",))
    with pytest.raises(ValueError, match="exactly one"):
        TemplateSource(vmid=1)
    with pytest.raises(ValueError, match="no Proxmox node"):
        replace(pool, allowed_nodes=())


def test_firewall_group_names_fit_proxmox() -> None:
    assert tenant_firewall_group("k8s", "team-a") == "k8s-t-team-a"
    long = tenant_firewall_group("k8s", "a-very-long-tenant-name-x")
    assert (
        len(long) <= 18
        and long.startswith("k8s-t")
        and long == tenant_firewall_group("k8s", "a-very-long-tenant-name-x")
    )
    assert long != tenant_firewall_group("k8s", "a-very-long-tenant-name-y")


def test_the_worker_firewall_group_admits_only_the_tenant_network(live: Run) -> None:
    group = live.rec.named("tenant-team-b-firewall").inputs
    assert group["group"] == "k8s-t-team-b"
    (rule,) = group["rules"]
    assert (rule["type"], rule["action"], rule["source"]) == ("in", "ACCEPT", "172.16.1.0/24")


def test_the_credentials_secret_is_secret_even_when_the_token_arrives_in_plaintext() -> None:
    """pulumi_kubernetes' Secret wraps stringData too; this pins the end result whichever layer does it."""
    plain = CapmoxCredentials(
        url="https://pve1.example.com:8006/api2/json", token_id="u@pve!capi", token_secret="plain"
    )
    run = build_tenant(stack_raw(), "team-a", credentials=plain)
    secret = run.rec.named("tenant-team-a-capmox-credentials")
    assert rpc.is_rpc_secret(secret.raw_inputs["stringData"])
    assert secret.inputs["stringData"] == {
        "url": "https://pve1.example.com:8006",
        "token": "u@pve!capi",
        "secret": "plain",
    }
