"""Tenant: an isolated Kubernetes cluster from a few lines of stack config.

One ``Tenant`` per ``tenants[]`` entry. The control plane runs in Kamaji on the management cluster; the
workers are Proxmox VMs that Cluster API (CAPMOX) creates in the tenant's own Proxmox pool with the
tenant's own, pool-scoped CAPMOX token. Everything is created through the management cluster's explicit
kubernetes provider, named after the tenant, and never refers to another tenant.

What one tenant gets (object names in ``components.tenants.objects``):

* **Namespace** ``tenant-<t>`` with a **ResourceQuota** (the configured quota, else one sized for the
  control plane), a **LimitRange**, and a read-only **Role/RoleBinding** for the group
  ``tenant-<t>-admins`` (may read the tenant's objects and its admin kubeconfig Secret, nothing else);
* **Network isolation**: a private **Kube-OVN Subnet** bound to the namespace (the control-plane pods'
  addresses, carved from the tenant pod CIDR) that admits only the management pod and node networks
  and the tenant's worker network, plus **NetworkPolicies**: default deny in both directions, then DNS,
  the DataStore, and the API server/konnectivity ports. The Subnet and the policies exist before the
  KamajiControlPlane, so no control-plane pod ever starts unprotected or on the default subnet;
* **Proxmox**: a security group for the workers (the pool and the scoped CAPMOX token come from
  ``ProxmoxCluster``). CAPMOX v0.9's ``networkDevices`` have no firewall option, so this program cannot
  bind the group to the VMs CAPMOX creates; it is defined for a binding step (``FirewallApi.bind_vm``);
* **Cluster API**: ``Cluster`` -> ``KamajiControlPlane`` + ``ProxmoxCluster`` (credentialsRef -> the
  tenant's CAPMOX Secret); per worker pool a hash-named ``ProxmoxMachineTemplate`` and
  ``KubeadmConfigTemplate`` and a ``MachineDeployment``; Cilium as the tenant's CNI through a CAAPH
  ``HelmChartProxy`` that selects the Cluster by label (needs the CAAPH ``AddonProvider``);
* the **admin kubeconfig**, read from Kamaji's ``<t>-admin-kubeconfig`` Secret once the control plane is
  initialized, as a secret Output. In render mode there is no cluster to read from, and with
  ``awaitReadiness: false`` nothing waits for Kamaji to write it: ``kubeconfig`` is None.

Ordering: the ``Cluster`` depends on the control plane, the ProxmoxCluster and the MachineDeployments, so
``pulumi destroy`` deletes the Cluster first and CAPI cascades (the supported way to delete a cluster);
the others skip Pulumi's await (``pulumi.com/skipAwait``) because they only become ready once the
Cluster owns them, and the Cluster itself waits for ``status.initialization.controlPlaneInitialized``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import pulumi
import pulumi_kubernetes as kubernetes

from components.k8s import child_opts, proxmox_base_url, require_provider
from components.tenants.objects import (
    CAAPH_API,
    CAPI_API,
    CAPMOX_API,
    CNI_LABEL,
    CONTROL_PLANE_API,
    KUBE_OVN_API,
    KUBEADM_BOOTSTRAP_API,
    TENANT_LABEL,
    DatastoreAccess,
    PoolSpec,
    TemplateSource,
    WorkerNetwork,
    admin_role_rules,
    capmox_credentials_labels,
    cilium_proxy_spec,
    cluster_spec,
    control_plane_cidr,
    kamaji_control_plane_spec,
    kubeadm_config_template_spec,
    limit_range_spec,
    machine_deployment_spec,
    machine_template_spec,
    namespace_labels,
    namespace_name,
    network_policies,
    node_mask_size,
    proxmox_cluster_spec,
    quota_hard,
    subnet_spec,
    tenant_firewall_group,
    versioned_name,
)
from config.versions import ChartRef, Versions
from providers.dynamic.firewall import ProxmoxSecurityGroup, ProxmoxSecurityGroupArgs
from providers.proxmox.firewall import FirewallRule

if TYPE_CHECKING:
    from config import StackConfig, TenantConfig, TenantQuota

__all__ = ["ADMIN_KUBECONFIG_KEY", "CapmoxCredentials", "Tenant", "TenantArgs"]

ADMIN_KUBECONFIG_KEY: Final = "admin.conf"
"""Key of the kubeconfig in Kamaji's ``<tcp>-admin-kubeconfig`` Secret."""

_SKIP_AWAIT: Final = {"pulumi.com/skipAwait": "true"}
_WAIT_INITIALIZED: Final = {"pulumi.com/waitFor": "jsonpath={.status.initialization.controlPlaneInitialized}=true"}
_CLUSTER_TIMEOUTS: Final = pulumi.CustomTimeouts(create="30m", update="30m", delete="45m")


@dataclass(frozen=True, kw_only=True)
class CapmoxCredentials:
    """The tenant's CAPMOX identity: a Proxmox token that may only touch the tenant's pool."""

    url: str
    """Proxmox API URL (CAPMOX gets the bare ``https://host:port``)."""
    token_id: pulumi.Input[str]
    """Token id ``user@realm!name``."""
    token_secret: pulumi.Input[str]
    """Token secret UUID (secret Input)."""


AUTHORITATIVE: Final[Mapping[str, str]] = {"pulumi.com/patchForce": "true"}
"""On every tenant object: what the program declares wins a server-side apply conflict. A field someone
changed by hand (a Pod Security label weakened, a policy rule removed) becomes theirs under server-side
apply, and without this the next ``up`` would stop at the conflict instead of repairing the tenant's
isolation. Fields the program does not declare (status, what controllers fill in) are never touched."""


@dataclass(frozen=True, kw_only=True)
class TenantArgs:
    """Inputs of Tenant: the tenant's plain settings, resolved against the stack, plus its credentials."""

    provider: kubernetes.Provider
    """Explicit provider of the management cluster."""
    name: str
    """Tenant name (DNS label, at most 30 characters); the CAPI Cluster's name."""
    kubernetes_version: str
    """Kubernetes version of the control plane and the workers (kept equal, Kamaji#1062)."""
    control_plane_replicas: int
    """API server replicas (pods on the management cluster)."""
    pod_cidr: IPv4Network
    """Pod CIDR of the tenant cluster (unique across the platform)."""
    service_cidr: IPv4Network
    """Service CIDR of the tenant cluster."""
    network: WorkerNetwork
    """The tenant's worker network (bridge/VLAN, addresses for CAPMOX)."""
    pools: Sequence[PoolSpec]
    """Worker pools, one MachineDeployment each."""
    vmid_range: tuple[int, int]
    """VMIDs for the workers, inclusive."""
    proxmox_pool: str
    """The tenant's Proxmox resource pool."""
    allowed_nodes: Sequence[str]
    """Proxmox nodes of the tenant (ProxmoxCluster level; pools may narrow it)."""
    credentials: CapmoxCredentials
    """The tenant's CAPMOX token (scoped to ``proxmox_pool``)."""
    quota: TenantQuota | None = None
    """ResourceQuota of the namespace; None sizes one for the control plane."""
    datastore_name: str = "default"
    """Kamaji DataStore of the control plane."""
    datastore: DatastoreAccess = field(default_factory=DatastoreAccess.etcd)
    """Where the control-plane pods reach the DataStore (egress allowance)."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """How the tenant API server is exposed."""
    allow_subnets: Sequence[str] = ()
    """Networks besides the worker network the control-plane Subnet admits: the management cluster's pod
    CIDR (DNS, DataStore, CAPI and Kamaji controllers) and its node network (LoadBalancer traffic a node
    forwards)."""
    kube_ovn: bool = True
    """Create the Kube-OVN Subnet (False on a brought-in management cluster without Kube-OVN)."""
    cni: ChartRef | None = field(default_factory=lambda: Versions().cilium)
    """Cilium chart for the tenant cluster (CAAPH HelmChartProxy); None installs no CNI."""
    admin_group: str | None = None
    """Group bound to the tenant-admin Role (default ``tenant-<name>-admins``)."""
    firewall_group: str | None = None
    """Name of the workers' Proxmox security group; None creates none."""
    read_kubeconfig: bool = True
    """Read the admin kubeconfig back once the control plane is initialized. False in render mode (no
    cluster to read from) and with ``awaitReadiness: false`` (nothing waits for Kamaji to write it)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Platform services the tenant needs first (CAPI providers, Kamaji and its DataStore)."""
    infrastructure_depends_on: Sequence[pulumi.Resource] = ()
    """Proxmox objects CAPMOX needs first (the pool, the token's ACLs, built templates)."""

    def __post_init__(self) -> None:
        namespace_name(self.name)
        node_mask_size(self.pod_cidr)  # refuses pod CIDRs too small to reserve the control-plane block
        if not 1 <= self.control_plane_replicas <= 5:
            raise ValueError(f"tenant {self.name}: control_plane_replicas must be 1..5")
        if not self.pools:
            raise ValueError(f"tenant {self.name}: at least one worker pool is required")
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"tenant {self.name}: duplicate worker pool names {sorted(names)}")
        if self.vmid_range[0] > self.vmid_range[1]:
            raise ValueError(f"tenant {self.name}: vmid_range starts after it ends")
        self.hard_quota()  # refuses a quota smaller than the control plane

    @property
    def namespace(self) -> str:
        """The tenant's namespace."""
        return namespace_name(self.name)

    def hard_quota(self) -> dict[str, str]:
        """``ResourceQuota.spec.hard`` of the namespace."""
        q = self.quota
        return quota_hard(
            cpu=q.cpu if q else None,
            memory_gib=q.memory_gib if q else None,
            storage_gib=q.storage_gib if q else None,
            pods=q.pods if q else None,
            replicas=self.control_plane_replicas,
            service_type=self.service_type,
        )

    def subnet_allow(self) -> list[str]:
        """``allowSubnets`` of the control-plane Subnet: ``allow_subnets`` plus the worker network."""
        return sorted({*self.allow_subnets, str(self.network.cidr)})

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        tenant: TenantConfig,
        *,
        provider: kubernetes.Provider,
        proxmox_pool: str,
        credentials: CapmoxCredentials,
        datastore_name: str,
        versions: Versions,
        proxmox_prefix: str = "k8s",
        depends_on: Sequence[pulumi.Resource] = (),
        infrastructure_depends_on: Sequence[pulumi.Resource] = (),
    ) -> TenantArgs:
        """Args for one ``tenants[]`` entry of a validated stack configuration."""
        net = tenant.network
        pools = [
            PoolSpec(
                name=pool.name,
                replicas=pool.count,
                cores=pool.cores,
                memory_mib=pool.memory_mib,
                disk_gib=pool.disk_gib,
                template=_template_source(cfg, cfg.resolve_template(pool.template)),
                allowed_nodes=cfg.pool_nodes(pool),
            )
            for pool in tenant.worker_pools
        ]
        vmids = tenant.vmid_range or cfg.cluster_api.vmid_range
        ds = cfg.kamaji.datastore
        mc = cfg.management_cluster
        return cls(
            provider=provider,
            name=tenant.name,
            kubernetes_version=cfg.tenant_kubernetes_version(tenant),
            control_plane_replicas=tenant.control_plane_replicas,
            pod_cidr=tenant.pod_cidr,
            service_cidr=tenant.service_cidr,
            network=WorkerNetwork(
                bridge=net.bridge,
                vlan=net.vlan,
                mtu=net.mtu,
                cidr=net.cidr,
                gateway=str(net.gateway),
                dns_servers=tuple(str(d) for d in net.dns_servers),
                ip_range=net.ip_range.as_capmox(),
            ),
            pools=pools,
            vmid_range=(vmids.start, vmids.end),
            proxmox_pool=proxmox_pool,
            allowed_nodes=sorted({n for p in pools for n in p.allowed_nodes}),
            credentials=credentials,
            quota=tenant.quota,
            datastore_name=datastore_name,
            datastore=DatastoreAccess.etcd() if ds.driver == "etcd" else DatastoreAccess.from_endpoints(ds.endpoints),
            service_type=cfg.kamaji.service_type,
            allow_subnets=(str(mc.pod_cidr), str(cfg.networks.management.cidr)),
            kube_ovn=not mc.external,
            cni=versions.cilium,
            firewall_group=tenant_firewall_group(proxmox_prefix, tenant.name),
            read_kubeconfig=cfg.local_render is None and mc.await_readiness,
            depends_on=tuple(depends_on),
            infrastructure_depends_on=tuple(infrastructure_depends_on),
        )


def _template_source(cfg: StackConfig, name: str) -> TemplateSource:
    """How CAPMOX finds the template ``name``: by VMID when one is declared (also for built ones), else tags."""
    tpl = cfg.templates.get(name)
    if tpl is None:
        raise ValueError(f"template {name!r} is not declared under templates")
    if tpl.vmid is not None and tpl.node is not None:
        return TemplateSource(vmid=tpl.vmid, node=tpl.node)
    return TemplateSource(tags=tuple(tpl.tags))


class Tenant(pulumi.ComponentResource):
    """One tenant: namespace guard rails, network isolation, Cluster API objects, CNI, kubeconfig."""

    namespace: str
    """The tenant's namespace on the management cluster."""
    cluster_name: str
    """Name of the CAPI Cluster, KamajiControlPlane and ProxmoxCluster."""
    control_plane_cidr: str
    """CIDR of the Kube-OVN Subnet of the control-plane pods."""
    machine_templates: dict[str, str]
    """ProxmoxMachineTemplate name per worker pool (content-hashed)."""
    bootstrap_templates: dict[str, str]
    """KubeadmConfigTemplate name per worker pool (content-hashed)."""
    cluster: kubernetes.apiextensions.CustomResource
    """The CAPI Cluster (the object to delete a tenant by)."""
    kubeconfig: pulumi.Output[str] | None
    """The tenant's admin kubeconfig (secret); None when ``read_kubeconfig`` is off."""

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:tenant:Tenant", name, None, opts)
        provider = require_provider(args.provider, "Tenant")
        ns = self.namespace = args.namespace
        cluster = self.cluster_name = args.name
        labels = {TENANT_LABEL: args.name}
        self.control_plane_cidr = str(control_plane_cidr(args.pod_cidr))

        def opts_(*deps: pulumi.Resource, **kw: Any) -> pulumi.ResourceOptions:
            return child_opts(self, provider, depends_on=deps, **kw)

        def meta(obj_name: str, extra: Mapping[str, str] | None = None) -> kubernetes.meta.v1.ObjectMetaArgsDict:
            return {
                "name": obj_name,
                "namespace": ns,
                "labels": {**labels, **(extra or {})},
                "annotations": dict(AUTHORITATIVE),
            }

        namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": ns, "labels": namespace_labels(args.name), "annotations": dict(AUTHORITATIVE)},
            opts=opts_(*args.depends_on),
        )

        # ---------------------------------------------------------------- guard rails
        guards: list[pulumi.Resource] = [
            kubernetes.core.v1.ResourceQuota(
                f"{name}-quota",
                metadata=meta("tenant-quota"),
                spec={"hard": dict(args.hard_quota())},
                opts=opts_(namespace),
            ),
            kubernetes.core.v1.LimitRange(
                f"{name}-limits",
                metadata=meta("tenant-limits"),
                spec=cast(kubernetes.core.v1.LimitRangeSpecArgsDict, limit_range_spec()),
                opts=opts_(namespace),
            ),
        ]
        # Object bodies are Kubernetes API dicts (camelCase keys, passed through unchanged by the SDK).
        role = kubernetes.rbac.v1.Role(
            f"{name}-admin-role",
            metadata=meta("tenant-admin"),
            rules=cast(list[kubernetes.rbac.v1.PolicyRuleArgsDict], admin_role_rules(cluster)),
            opts=opts_(namespace),
        )
        kubernetes.rbac.v1.RoleBinding(
            f"{name}-admin-binding",
            metadata=meta("tenant-admin"),
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-admin"},
            subjects=[
                {
                    "api_group": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": args.admin_group or f"tenant-{args.name}-admins",
                }
            ],
            opts=opts_(namespace, role),
        )
        for policy, spec in network_policies(args.datastore).items():
            guards.append(
                kubernetes.networking.v1.NetworkPolicy(
                    f"{name}-netpol-{policy}",
                    metadata=meta(policy),
                    spec=cast(kubernetes.networking.v1.NetworkPolicySpecArgsDict, spec),
                    opts=opts_(namespace),
                )
            )
        if args.kube_ovn:
            guards.append(
                kubernetes.apiextensions.CustomResource(
                    f"{name}-subnet",
                    api_version=KUBE_OVN_API,
                    kind="Subnet",
                    metadata={"name": ns, "labels": dict(labels)},
                    spec=subnet_spec(ns, control_plane_cidr(args.pod_cidr), args.subnet_allow()),
                    opts=opts_(namespace),
                )
            )

        # ---------------------------------------------------------------- Proxmox side
        if args.firewall_group is not None:
            ProxmoxSecurityGroup(
                f"{name}-firewall",
                ProxmoxSecurityGroupArgs(
                    group=args.firewall_group,
                    comment=f"worker VMs of tenant {args.name}",
                    rules=[
                        FirewallRule(
                            source=str(args.network.cidr), comment=f"any traffic between tenant {args.name}'s workers"
                        ).to_inputs()
                    ],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        infra = list(args.infrastructure_depends_on)
        credentials_name = f"{cluster}-proxmox-credentials"
        url = proxmox_base_url(args.credentials.url)
        token: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            args.credentials.token_id, args.credentials.token_secret
        ).apply(lambda parts: {"url": url, "token": str(parts[0]), "secret": str(parts[1])})
        secret_token: pulumi.Output[dict[str, str]] = pulumi.Output.secret(token)
        credentials = kubernetes.core.v1.Secret(
            f"{name}-capmox-credentials",
            metadata=meta(credentials_name, capmox_credentials_labels()),
            type="Opaque",
            string_data=secret_token,
            opts=opts_(namespace, *infra, additional_secret_outputs=["data", "stringData"]),
        )

        # ---------------------------------------------------------------- Cluster API
        control_plane = kubernetes.apiextensions.CustomResource(
            f"{name}-control-plane",
            api_version=CONTROL_PLANE_API,
            kind="KamajiControlPlane",
            metadata={**meta(cluster), "annotations": dict(_SKIP_AWAIT)},
            spec=kamaji_control_plane_spec(
                tenant=args.name,
                version=args.kubernetes_version,
                replicas=args.control_plane_replicas,
                datastore=args.datastore_name,
                service_type=args.service_type,
            ),
            opts=opts_(namespace, *guards, ignore_changes=["spec.controlPlaneEndpoint"]),
        )
        infrastructure = kubernetes.apiextensions.CustomResource(
            f"{name}-proxmox-cluster",
            api_version=CAPMOX_API,
            kind="ProxmoxCluster",
            metadata={**meta(cluster), "annotations": dict(_SKIP_AWAIT)},
            spec=proxmox_cluster_spec(
                network=args.network,
                allowed_nodes=args.allowed_nodes,
                credentials_secret=credentials_name,
                namespace=ns,
            ),
            opts=opts_(namespace, credentials, *infra, ignore_changes=["spec.controlPlaneEndpoint"]),
        )

        self.machine_templates, self.bootstrap_templates = {}, {}
        deployments: list[pulumi.Resource] = []
        for pool in args.pools:
            deployments.append(self._pool(name, args, pool, meta, opts_, namespace, infra))

        self.cluster = kubernetes.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=CAPI_API,
            kind="Cluster",
            metadata={
                **meta(cluster, {CNI_LABEL: "cilium"} if args.cni else None),
                "annotations": dict(_WAIT_INITIALIZED),
            },
            spec=cluster_spec(cluster, str(args.pod_cidr), str(args.service_cidr)),
            opts=pulumi.ResourceOptions.merge(
                opts_(namespace, control_plane, infrastructure, *deployments),
                pulumi.ResourceOptions(custom_timeouts=_CLUSTER_TIMEOUTS),
            ),
        )

        if args.cni is not None:
            kubernetes.apiextensions.CustomResource(
                f"{name}-cni",
                api_version=CAAPH_API,
                kind="HelmChartProxy",
                metadata=meta(f"{cluster}-cilium"),
                spec=cilium_proxy_spec(
                    tenant=args.name,
                    pod_cidr=args.pod_cidr,
                    chart=args.cni.chart,
                    repo=args.cni.repo,
                    version=args.cni.version,
                ),
                opts=opts_(namespace),
            )

        self.kubeconfig = None
        if args.read_kubeconfig:
            # The id is derived from the Cluster's id: unknown while the Cluster is being created, so a
            # preview of a new tenant skips the read instead of failing on a Secret that does not exist yet.
            secret_id = self.cluster.id.apply(lambda _: f"{ns}/{cluster}-admin-kubeconfig")
            admin = kubernetes.core.v1.Secret.get(
                f"{name}-admin-kubeconfig",
                secret_id,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.cluster, control_plane]),
            )
            self.kubeconfig = pulumi.Output.secret(admin.data.apply(lambda data: _admin_conf(data, ns, cluster)))

        self.register_outputs(
            {
                "namespace": ns,
                "clusterName": cluster,
                "controlPlaneCidr": self.control_plane_cidr,
                "machineTemplates": dict(self.machine_templates),
                "kubeconfig": self.kubeconfig,
            }
        )

    def _pool(
        self,
        name: str,
        args: TenantArgs,
        pool: PoolSpec,
        meta: Callable[..., kubernetes.meta.v1.ObjectMetaArgsDict],
        opts_: Callable[..., pulumi.ResourceOptions],
        namespace: pulumi.Resource,
        infra: Sequence[pulumi.Resource],
    ) -> pulumi.Resource:
        """The hash-named templates and the MachineDeployment of one worker pool."""
        cluster = args.name
        pmt_spec = machine_template_spec(
            tenant=args.name,
            pool=pool,
            proxmox_pool=args.proxmox_pool,
            network=args.network,
            vmid_range=args.vmid_range,
        )
        pmt_name = versioned_name(f"{cluster}-{pool.name}", pmt_spec)
        kct_spec = kubeadm_config_template_spec()
        kct_name = versioned_name(f"{cluster}-{pool.name}", kct_spec)
        self.machine_templates[pool.name] = pmt_name
        self.bootstrap_templates[pool.name] = kct_name
        pool_label = {"proxmox-k8s-platform/pool": pool.name}
        machine_template = kubernetes.apiextensions.CustomResource(
            f"{name}-pmt-{pool.name}",
            api_version=CAPMOX_API,
            kind="ProxmoxMachineTemplate",
            metadata=meta(pmt_name, pool_label),
            spec=pmt_spec,
            opts=opts_(namespace, *infra),
        )
        bootstrap_template = kubernetes.apiextensions.CustomResource(
            f"{name}-kct-{pool.name}",
            api_version=KUBEADM_BOOTSTRAP_API,
            kind="KubeadmConfigTemplate",
            metadata=meta(kct_name, pool_label),
            spec=kct_spec,
            opts=opts_(namespace),
        )
        deployment = f"{cluster}-{pool.name}"
        return kubernetes.apiextensions.CustomResource(
            f"{name}-md-{pool.name}",
            api_version=CAPI_API,
            kind="MachineDeployment",
            metadata={**meta(deployment, pool_label), "annotations": dict(_SKIP_AWAIT)},
            spec=machine_deployment_spec(
                cluster=cluster,
                deployment=deployment,
                replicas=pool.replicas,
                version=args.kubernetes_version,
                bootstrap_template=kct_name,
                machine_template=pmt_name,
            ),
            opts=opts_(namespace, machine_template, bootstrap_template),
        )


def _admin_conf(data: Mapping[str, str] | None, namespace: str, cluster: str) -> str:
    """Decode ``admin.conf`` from the Secret's data; a clear error if Kamaji has not written it."""
    if not data or ADMIN_KUBECONFIG_KEY not in data:
        raise ValueError(
            f"Secret {namespace}/{cluster}-admin-kubeconfig has no {ADMIN_KUBECONFIG_KEY!r}: "
            "Kamaji has not finished the tenant control plane"
        )
    return base64.b64decode(data[ADMIN_KUBECONFIG_KEY]).decode()
