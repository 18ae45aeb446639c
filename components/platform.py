"""The whole platform as one component: Proxmox layer -> management cluster -> platform services.

Data flows one way. ``Platform`` receives the validated stack config and its secrets, builds the
Proxmox layer (pools, templates, controller tokens, firewall groups), the management cluster on top of
it (its VMs bind the firewall groups to their NICs and wait for them), and hands the cluster's provider,
node list and the controller tokens to the platform services.
No child reaches into another's children: everything passes through the typed Args below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi.runtime import rpc

from components.k8s import ChartInstall
from components.management.cluster import ManagementCluster, ManagementClusterArgs
from components.proxmox.cluster import ProxmoxCluster, ProxmoxClusterArgs
from components.services.cluster_api import ClusterApi, ClusterApiArgs
from components.services.csi import CsiNode, CsiStorageClass, ProxmoxCsi, ProxmoxCsiArgs
from components.services.kamaji import EtcdDataStore, Kamaji, KamajiArgs, MetalLbConfig, PostgresDataStore
from components.services.network import ClusterNetwork, ClusterNetworkArgs
from components.tenants.tenant import CapmoxCredentials, Tenant, TenantArgs
from config import StackConfig, StackSecrets
from config.versions import Versions


@dataclass(frozen=True)
class PlatformArgs:
    """Inputs of the Platform component."""

    config: StackConfig
    """The validated stack configuration (plain values)."""
    secrets: StackSecrets
    """The stack's secret config values, as secret Outputs."""


SKIP_AWAIT_KINDS: frozenset[str] = frozenset(
    {
        "apps/v1:Deployment",
        "apps/v1:DaemonSet",
        "apps/v1:StatefulSet",
        "apps/v1:ReplicaSet",
        "batch/v1:Job",
        "core/v1:Pod",
        "core/v1:Service",
        "core/v1:PersistentVolumeClaim",
        "core/v1:ReplicationController",
        "networking.k8s.io/v1:Ingress",
    }
)
"""Kinds whose readiness the kubernetes provider awaits (workloads and what waits on them)."""

AWAIT_ANNOTATION = "pulumi.com/waitFor"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


async def _is_empty_map(value: Any) -> bool:
    """Whether a property value is ``{}``, looking through the secret the engine may have wrapped it in."""
    if isinstance(value, pulumi.Output):
        if not await value.is_known():
            return False
        value = await value.future()
    if rpc.is_rpc_secret(value):
        value = rpc.unwrap_rpc_secret(value)
    return isinstance(value, dict) and not value


async def drop_empty_data(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Remove an empty ``data``/``stringData`` map from a Secret or ConfigMap (charts declare ``data: {}``
    for a Secret another controller fills, e.g. kamaji-etcd's cert-manager certificates).

    The API server stores no empty map, and the kubernetes provider replaces a Secret or ConfigMap on
    any ``data`` difference: without this, every ``up`` after the first would replace those objects.
    An empty map and no map are the same object. A chart's Secret reaches the transform with its data
    marked secret (an Output), hence async.
    """
    if not args.custom or args.type_ not in ("kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap"):
        return None
    empty = [key for key in ("data", "stringData", "binaryData") if await _is_empty_map(args.props.get(key))]
    if not empty:
        return None
    props: dict[str, Any] = {k: v for k, v in args.props.items() if k not in empty}
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


def skip_workload_await(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Apply an object without waiting for it: ``pulumi.com/skipAwait``, and no ``pulumi.com/waitFor``.

    Installed by Platform when ``managementCluster.awaitReadiness`` is false. It covers the workload
    kinds the provider awaits and every object the program itself asks to wait for (a CAPI provider
    installed, a DataStore ready, a control plane initialized): with nothing reconciling them those
    waits could only time out. A Namespace or CRD is still awaited (its deletion must finish before
    what depends on it goes).
    """
    if not args.custom or not args.type_.startswith("kubernetes:"):
        return None
    props: dict[str, Any] = dict(args.props)
    metadata: dict[str, Any] = dict(props.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    kind = args.type_.removeprefix("kubernetes:")
    if kind not in SKIP_AWAIT_KINDS and AWAIT_ANNOTATION not in annotations:
        return None
    annotations.pop(AWAIT_ANNOTATION, None)
    annotations[SKIP_AWAIT_ANNOTATION] = "true"
    metadata["annotations"] = annotations
    props["metadata"] = metadata
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


def csi_storage_classes(cfg: StackConfig) -> list[CsiStorageClass]:
    """One CSI StorageClass per configured Proxmox storage."""
    return [
        CsiStorageClass(
            name=sc.storage_class,
            storage=sc.storage,
            storage_type=sc.type,
            shared=sc.shared,
            fstype=sc.fs_type,
            cache=sc.cache,
            ssd=sc.ssd,
            backup=sc.backup,
            disk_iops=sc.disk_iops,
            disk_mbps=sc.disk_mbps,
            reclaim_policy=sc.reclaim_policy,
            encrypted=sc.encrypted,
            default=sc.is_default,
        )
        for sc in cfg.storage
    ]


def ca_bundle_pem(value: str | None) -> str | None:
    """The CA bundle as PEM text: ``proxmox.caBundle`` may hold PEM or a path (relative to the project)."""
    if value is None or value.lstrip().startswith("-----BEGIN"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"proxmox.caBundle: file {value!r} does not exist (give PEM text or an existing path)")
    return path.read_text()


def kamaji_datastore(cfg: StackConfig, secrets: StackSecrets) -> EtcdDataStore | PostgresDataStore:
    """The Kamaji DataStore the stack asks for."""
    ds = cfg.kamaji.datastore
    if ds.driver == "postgresql":
        if secrets.kamaji_datastore_password is None:
            raise ValueError("kamaji.datastore: the secret kamajiDatastorePassword is required for postgresql")
        return PostgresDataStore(
            endpoints=list(ds.endpoints), username=ds.username, password=secrets.kamaji_datastore_password
        )
    storage_class = ds.storage_class
    if storage_class is None and cfg.default_storage_class() is not None:
        storage_class = cfg.default_storage_class().storage_class  # type: ignore[union-attr]
    return EtcdDataStore(replicas=ds.replicas, storage_class=storage_class, storage_size=f"{ds.size_gib}Gi")


class Platform(pulumi.ComponentResource):
    """Proxmox prepared for Kubernetes, the management cluster, and the platform services on it."""

    proxmox: ProxmoxCluster
    management: ManagementCluster
    network: ClusterNetwork | None = None
    csi: ProxmoxCsi | None = None
    cluster_api: ClusterApi | None = None
    kamaji: Kamaji | None = None
    tenants: dict[str, Tenant]
    tenant_kubeconfigs: pulumi.Output[dict[str, str]]
    """Admin kubeconfig per tenant name (secret); empty in render mode, where there is nothing to read."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:index:Platform", name, None, opts)
        cfg, secrets = args.config, args.secrets
        child = pulumi.ResourceOptions(parent=self)
        versions = cfg.resolved_versions()
        charts = ChartInstall.from_stack(cfg)
        self.tenants = {}

        self.proxmox = ProxmoxCluster(
            f"{name}-proxmox",
            ProxmoxClusterArgs(
                proxmox=cfg.proxmox,
                nodes=cfg.nodes,
                templates=cfg.templates,
                networks=cfg.networks,
                tenants=cfg.tenants,
                csi_storages=[sc.storage for sc in cfg.storage],
            ),
            child,
        )

        mc = cfg.management_cluster
        waits: list[pulumi.Resource] = [self.proxmox.platform_pool]
        if not mc.external:
            waits += self.proxmox.clone_dependencies(cfg.resolve_template(mc.template))
            # The VMs bind the security groups by name before they first start: the groups must exist.
            waits += list(self.proxmox.security_groups.values())
        mc_args = ManagementClusterArgs.from_stack(cfg, secrets, depends_on=waits)
        if not mc.external:
            mc_args = dataclasses.replace(
                mc_args,
                pool=self.proxmox.pool_ids["platform"],
                security_groups=self.proxmox.security_group_names,
            )
        self.management = ManagementCluster(f"{name}-mgmt", mc_args, child)
        if self.management.provider is not None:
            transforms: list[pulumi.ResourceTransform] = [drop_empty_data]
            if not cfg.management_cluster.await_readiness:
                transforms.append(skip_workload_await)
            services = pulumi.ResourceOptions(parent=self, transforms=transforms)
            self._services(name, cfg, secrets, self.management.provider, services, charts, versions)

        readable = {t: tenant.kubeconfig for t, tenant in self.tenants.items() if tenant.kubeconfig is not None}
        names = list(readable)
        kubeconfigs: pulumi.Output[dict[str, str]] = pulumi.Output.all(*readable.values()).apply(
            lambda values: dict(zip(names, values, strict=True))
        )
        self.tenant_kubeconfigs = pulumi.Output.secret(kubeconfigs)
        outputs: dict[str, Any] = {
            "managementApiEndpoint": self.management.api_endpoint,
            "controlPlanes": self.management.control_planes,
            "workers": self.management.workers,
            "tenantKubeconfigs": self.tenant_kubeconfigs,
        }
        self.register_outputs(outputs)

    def _services(
        self,
        name: str,
        cfg: StackConfig,
        secrets: StackSecrets,
        k8s: kubernetes.Provider,
        child: pulumi.ResourceOptions,
        charts: ChartInstall,
        versions: Versions,
    ) -> None:
        mc = cfg.management_cluster
        ready: list[pulumi.Resource] = []

        # A brought-in cluster keeps its own CNI; one built here gets Cilium chained onto Kube-OVN.
        if not mc.external and self.management.api_server_host is not None:
            self.network = ClusterNetwork(
                f"{name}-network",
                ClusterNetworkArgs(
                    provider=k8s,
                    api_server_host=self.management.api_server_host,
                    control_plane_node_ips=[n.address for n in self.management.nodes if n.role == "control-plane"],
                    pod_cidr=str(mc.pod_cidr),
                    service_cidr=str(mc.service_cidr),
                    join_cidr=str(mc.join_cidr),
                    kube_proxy_replacement=mc.kube_proxy_replacement,
                    versions=versions,
                    charts=charts,
                ),
                child,
            )
            ready.append(self.network)

        if cfg.storage:
            self.csi = ProxmoxCsi(
                f"{name}-csi",
                ProxmoxCsiArgs(
                    provider=k8s,
                    proxmox_url=self.proxmox.csi.url,
                    region=cfg.proxmox.cluster_name,
                    token_id=self.proxmox.csi.token_id,
                    token_secret=self.proxmox.csi.token_secret,
                    storage_classes=csi_storage_classes(cfg),
                    nodes=[CsiNode(name=k, proxmox_node=v) for k, v in self.management.placement().items()],
                    luks_passphrase=secrets.csi_encryption_passphrase,
                    tls_insecure=not cfg.proxmox.verify_tls,
                    proxmox_ca_bundle=ca_bundle_pem(cfg.proxmox.ca_bundle),
                    versions=versions,
                    charts=charts,
                    depends_on=list(ready),
                ),
                child,
            )

        self.cluster_api = ClusterApi(
            f"{name}-capi",
            ClusterApiArgs(
                provider=k8s,
                proxmox_url=self.proxmox.capmox.url,
                capmox_token_id=self.proxmox.capmox.token_id,
                capmox_token_secret=self.proxmox.capmox.token_secret,
                proxmox_ca_bundle=ca_bundle_pem(cfg.proxmox.ca_bundle),
                tls_insecure=not cfg.proxmox.verify_tls,
                versions=versions,
                charts=charts,
                depends_on=list(ready),
            ),
            child,
        )

        lb = cfg.kamaji.load_balancer
        self.kamaji = Kamaji(
            f"{name}-kamaji",
            KamajiArgs(
                provider=k8s,
                datastore=kamaji_datastore(cfg, secrets),
                replicas=cfg.kamaji.replicas,
                load_balancer=MetalLbConfig(addresses=[f"{lb.ip_range.start}-{lb.ip_range.end}"]) if lb else None,
                versions=versions,
                charts=charts,
                depends_on=[*ready, *([self.csi] if self.csi else [])],
            ),
            child,
        )

        # One Tenant per tenants[] entry, after the CAPI providers and Kamaji (CRDs, webhooks, DataStore).
        for t in cfg.tenants:
            creds = self.proxmox.tenant_capmox[t.name]
            templates = {cfg.resolve_template(p.template) for p in t.worker_pools}
            self.tenants[t.name] = Tenant(
                f"{name}-tenant-{t.name}",
                TenantArgs.from_stack(
                    cfg,
                    t,
                    provider=k8s,
                    proxmox_pool=self.proxmox.pool_ids[f"tenant:{t.name}"],
                    credentials=CapmoxCredentials(
                        url=creds.url, token_id=creds.token_id, token_secret=creds.token_secret
                    ),
                    datastore_name=self.kamaji.datastore_name,
                    versions=versions,
                    depends_on=[*self.cluster_api.ready, *self.kamaji.ready],
                    infrastructure_depends_on=[
                        self.proxmox.tenant_pools[t.name],
                        *creds.acls,
                        *(dep for tpl in sorted(templates) for dep in self.proxmox.clone_dependencies(tpl)),
                    ],
                ),
                child,
            )
