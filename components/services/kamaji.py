"""Kamaji: the Kamaji chart, its DataStore, and an optional LoadBalancer for tenant control planes.

Facts from ``reference/k8s_stack.md`` section 2 and traps 10-13:

* install as release ``kamaji`` in ``kamaji-system``: the chart's CRDs hard-code
  ``cert-manager.io/inject-ca-from: kamaji-system/kamaji-serving-cert`` and the conversion webhook
  namespace, so neither is configurable here; cert-manager must already run (``depends_on``);
* the only public chart version is ``0.0.0+latest``: the image tag is the real pin, and the chart's
  ``pullPolicy: Always`` is overridden;
* ``defaultDatastoreName`` must name an existing DataStore, so the DataStore CR is created here (after
  the chart, which ships the CRD) and its name is passed to the chart. With the bundled etcd the
  ``kamaji-etcd`` subchart runs etcd and its certificate jobs but does *not* create the DataStore
  (``datastore.enabled=false``); the DataStore references the subchart's Secrets
  ``<fullname>-certs`` (CA) and ``<fullname>-root-client-certs`` (client), as its own template does;
* tenant control planes default to ``serviceType: LoadBalancer``; the reference's suggestion is MetalLB
  (Cozystack and the Kamaji getting-started guide), optional here and off by default, because Cilium's
  kube-proxy replacement or an external LB may already provide one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes

from components.k8s import (
    PSA_PRIVILEGED_LABELS,
    ChartInstall,
    child_opts,
    install_chart,
    namespace,
    require_dns_label,
    require_dns_subdomain,
    require_provider,
)
from config.versions import DEFAULT_VERSIONS, Versions

__all__ = [
    "KAMAJI_NAMESPACE",
    "EtcdDataStore",
    "Kamaji",
    "KamajiArgs",
    "MetalLbConfig",
    "PostgresDataStore",
]

KAMAJI_NAMESPACE: Final = "kamaji-system"
"""Fixed by the chart's CRDs (CA injection and conversion webhook)."""

KAMAJI_API_VERSION: Final = "kamaji.clastix.io/v1alpha1"
ETCD_FULLNAME: Final = "kamaji-etcd"
_HOST_PORT: Final = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}")
_QUANTITY: Final = re.compile(r"\d+(Ki|Mi|Gi|Ti)")


@dataclass(frozen=True, kw_only=True)
class EtcdDataStore:
    """Kamaji's bundled multi-tenant etcd (``kamaji-etcd`` subchart) as the DataStore."""

    name: str = "default"
    """DataStore name (cluster-scoped); also the chart's ``defaultDatastoreName``."""

    replicas: int = 3
    """etcd members (one PVC each)."""

    storage_class: str | None = None
    """StorageClass of the etcd PVCs; ``None`` uses the cluster default."""

    storage_size: str = "8Gi"
    """Size of each etcd PVC."""

    cluster_domain: str = "cluster.local"
    """The management cluster's DNS domain (the etcd init jobs fail if it does not match)."""

    def __post_init__(self) -> None:
        require_dns_subdomain(self.name, "DataStore name")
        if self.replicas < 1 or self.replicas % 2 == 0:
            raise ValueError("etcd replicas must be odd and >= 1")
        if not _QUANTITY.fullmatch(self.storage_size):
            raise ValueError(f"storage_size {self.storage_size!r} must look like 8Gi")
        require_dns_subdomain(self.cluster_domain, "cluster_domain")


@dataclass(frozen=True, kw_only=True)
class PostgresDataStore:
    """An external PostgreSQL (kine) as the DataStore; credentials stay secret Inputs."""

    endpoints: Sequence[str]
    """``host:port`` endpoints, no scheme."""

    username: pulumi.Input[str]
    """Database user with rights to create per-tenant databases (secret Input)."""

    password: pulumi.Input[str]
    """Its password (secret Input)."""

    name: str = "default"
    """DataStore name (cluster-scoped); also the chart's ``defaultDatastoreName``."""

    ca_certificate: str | None = None
    """PEM CA of the PostgreSQL server certificate; enables TLS toward the database."""

    def __post_init__(self) -> None:
        require_dns_subdomain(self.name, "DataStore name")
        if not self.endpoints:
            raise ValueError("PostgreSQL DataStore needs at least one endpoint")
        for ep in self.endpoints:
            if "://" in ep or not _HOST_PORT.fullmatch(ep):
                raise ValueError(f"DataStore endpoint {ep!r} must be host:port without a scheme")


@dataclass(frozen=True, kw_only=True)
class MetalLbConfig:
    """MetalLB in L2 mode, announcing addresses for tenant control-plane LoadBalancer Services."""

    addresses: Sequence[str]
    """Address ranges (``a.b.c.d-a.b.c.e``) or CIDRs on the Proxmox LAN, outside every DHCP/IPAM pool."""

    pool_name: str = "kamaji-tenants"
    """IPAddressPool name."""

    interfaces: Sequence[str] = ()
    """Limit L2 announcements to these node NICs (e.g. ``ens18``); empty announces on all."""

    namespace: str = "metallb-system"
    """MetalLB namespace (labelled PSA privileged for the speaker)."""

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("MetalLB needs at least one address range")
        for entry in self.addresses:
            try:
                if "-" in entry:
                    start, end = (ipaddress.IPv4Address(p.strip()) for p in entry.split("-", 1))
                    if end < start:
                        raise ValueError("the range ends before it starts")
                else:
                    ipaddress.IPv4Network(entry)
            except ValueError as err:
                raise ValueError(f"MetalLB address {entry!r}: {err}") from None
        require_dns_subdomain(self.pool_name, "pool_name")
        require_dns_label(self.namespace, "namespace")


@dataclass(frozen=True, kw_only=True)
class KamajiArgs:
    """Inputs of Kamaji."""

    provider: kubernetes.Provider
    """Explicit provider of the management cluster."""

    datastore: EtcdDataStore | PostgresDataStore = field(default_factory=EtcdDataStore)
    """The default DataStore for tenant control planes (etcd by default)."""

    replicas: int = 2
    """Kamaji controller replicas (webhook availability)."""

    service_monitor: bool = False
    """Create a ServiceMonitor (needs Prometheus Operator CRDs)."""

    load_balancer: MetalLbConfig | None = None
    """Install MetalLB for tenant control-plane Services; ``None`` leaves LoadBalancers to something else."""

    versions: Versions = DEFAULT_VERSIONS
    """Pinned versions (``kamaji`` chart, ``kamaji_image_*``, ``metallb``)."""

    charts: ChartInstall = field(default_factory=ChartInstall)
    """How charts are installed (templated or as releases, from repositories or a local directory)."""

    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Must include cert-manager (ClusterApi.cert_manager) and, for etcd, a working StorageClass."""

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError("replicas must be >= 1")


def kamaji_chart_values(args: KamajiArgs) -> dict[str, Any]:
    """Kamaji chart values: pinned image, HA, telemetry off, etcd subchart without its DataStore."""
    ds = args.datastore
    etcd: dict[str, Any] = {"deploy": isinstance(ds, EtcdDataStore)}
    if isinstance(ds, EtcdDataStore):
        etcd |= {
            "fullnameOverride": ETCD_FULLNAME,
            "replicas": ds.replicas,
            "clusterDomain": ds.cluster_domain,
            "datastore": {"enabled": False},
            "persistentVolumeClaim": {"size": ds.storage_size}
            | ({"storageClassName": ds.storage_class} if ds.storage_class else {}),
        }
    return {
        "image": {
            "repository": args.versions.kamaji_image_repository,
            "tag": args.versions.kamaji_image_tag,
            "pullPolicy": "IfNotPresent",
        },
        "replicaCount": args.replicas,
        "defaultDatastoreName": ds.name,
        "telemetry": {"disabled": True},
        "serviceMonitor": {"enabled": args.service_monitor},
        "kamaji-etcd": etcd,
    }


def _secret_ref(name: str, key: str) -> dict[str, Any]:
    """A DataStore ``{secretReference: ...}`` pointing at ``name``/``key`` in kamaji-system."""
    return {"secretReference": {"name": name, "namespace": KAMAJI_NAMESPACE, "keyPath": key}}


def etcd_datastore_spec(ds: EtcdDataStore) -> dict[str, Any]:
    """DataStore spec for the bundled etcd, mirroring the kamaji-etcd chart's own template."""
    endpoints = [
        f"{ETCD_FULLNAME}-{i}.{ETCD_FULLNAME}.{KAMAJI_NAMESPACE}.svc.{ds.cluster_domain}:2379"
        for i in range(ds.replicas)
    ]
    ca, client = f"{ETCD_FULLNAME}-certs", f"{ETCD_FULLNAME}-root-client-certs"
    return {
        "driver": "etcd",
        "endpoints": endpoints,
        "tlsConfig": {
            "certificateAuthority": {
                "certificate": _secret_ref(ca, "ca.crt"),
                "privateKey": _secret_ref(ca, "ca.key"),
            },
            "clientCertificate": {
                "certificate": _secret_ref(client, "tls.crt"),
                "privateKey": _secret_ref(client, "tls.key"),
            },
        },
    }


class Kamaji(pulumi.ComponentResource):
    """Kamaji in kamaji-system with a DataStore and an optional MetalLB."""

    chart: pulumi.Resource
    """The Kamaji Release (or rendered Chart); ships the CRDs."""

    datastore: kubernetes.apiextensions.CustomResource
    """The default DataStore CR."""

    datastore_name: str
    """Name tenants reference as ``dataStoreName``."""

    ready: list[pulumi.Resource]
    """What tenant components should ``depends_on``."""

    metallb: pulumi.Resource | None
    """The MetalLB Release/Chart when ``load_balancer`` is set."""

    values: dict[str, Any]
    """The Kamaji chart values."""

    def __init__(self, name: str, args: KamajiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kamaji:Kamaji", name, None, opts)
        provider = require_provider(args.provider, "Kamaji")
        first = list(args.depends_on)
        ds = args.datastore

        ns = namespace(f"{name}-namespace", KAMAJI_NAMESPACE, opts=child_opts(self, provider, depends_on=first))
        self.values = kamaji_chart_values(args)
        self.chart = install_chart(
            f"{name}-chart",
            chart=args.versions.kamaji,
            release_name="kamaji",
            namespace=KAMAJI_NAMESPACE,
            values=self.values,
            install=args.charts,
            opts=child_opts(self, provider, depends_on=[*first, ns]),
        )

        ds_deps: list[pulumi.Resource] = [self.chart]
        if isinstance(ds, PostgresDataStore):
            spec = self._postgres_spec(name, ds, provider, ns, ds_deps)
        else:
            spec = etcd_datastore_spec(ds)
        self.datastore_name = ds.name
        self.datastore = kubernetes.apiextensions.CustomResource(
            f"{name}-datastore",
            api_version=KAMAJI_API_VERSION,
            kind="DataStore",
            metadata={
                "name": ds.name,
                "annotations": {"pulumi.com/waitFor": "jsonpath={.status.ready}=true"},
            },
            spec=spec,
            opts=child_opts(self, provider, depends_on=ds_deps),
        )
        self.ready = [self.chart, self.datastore]

        self.metallb = None
        if args.load_balancer is not None:
            self.ready.extend(self._metallb(name, args.load_balancer, args, provider, first))
        self.register_outputs({"datastoreName": ds.name, "loadBalancer": args.load_balancer is not None})

    def _postgres_spec(
        self,
        name: str,
        ds: PostgresDataStore,
        provider: kubernetes.Provider,
        ns: pulumi.Resource,
        ds_deps: list[pulumi.Resource],
    ) -> dict[str, Any]:
        """Create the credential (and CA) Secrets and return the PostgreSQL DataStore spec."""
        secret_name = f"datastore-{ds.name}-credentials"
        creds = kubernetes.core.v1.Secret(
            f"{name}-datastore-credentials",
            metadata={"name": secret_name, "namespace": KAMAJI_NAMESPACE},
            type="Opaque",
            string_data={
                "username": pulumi.Output.secret(ds.username),
                "password": pulumi.Output.secret(ds.password),
            },
            opts=child_opts(self, provider, depends_on=[ns], additional_secret_outputs=["data", "stringData"]),
        )
        ds_deps.append(creds)
        spec: dict[str, Any] = {
            "driver": "PostgreSQL",
            "endpoints": list(ds.endpoints),
            "basicAuth": {
                "username": _secret_ref(secret_name, "username"),
                "password": _secret_ref(secret_name, "password"),
            },
        }
        if ds.ca_certificate:
            ca_name = f"datastore-{ds.name}-ca"
            ds_deps.append(
                kubernetes.core.v1.Secret(
                    f"{name}-datastore-ca",
                    metadata={"name": ca_name, "namespace": KAMAJI_NAMESPACE},
                    type="Opaque",
                    string_data={"ca.crt": ds.ca_certificate},
                    opts=child_opts(self, provider, depends_on=[ns]),
                )
            )
            spec["tlsConfig"] = {"certificateAuthority": {"certificate": _secret_ref(ca_name, "ca.crt")}}
        return spec

    def _metallb(
        self,
        name: str,
        lb: MetalLbConfig,
        args: KamajiArgs,
        provider: kubernetes.Provider,
        first: list[pulumi.Resource],
    ) -> list[pulumi.Resource]:
        """Install MetalLB and an L2 pool for tenant control-plane Services."""
        ns = namespace(
            f"{name}-metallb-namespace",
            lb.namespace,
            labels=PSA_PRIVILEGED_LABELS,
            opts=child_opts(self, provider, depends_on=first),
        )
        self.metallb = install_chart(
            f"{name}-metallb",
            chart=args.versions.metallb,
            release_name="metallb",
            namespace=lb.namespace,
            values={},
            install=args.charts,
            opts=child_opts(self, provider, depends_on=[*first, ns]),
        )
        pool = kubernetes.apiextensions.CustomResource(
            f"{name}-metallb-pool",
            api_version="metallb.io/v1beta1",
            kind="IPAddressPool",
            metadata={"name": lb.pool_name, "namespace": lb.namespace},
            spec={"addresses": list(lb.addresses), "autoAssign": True},
            opts=child_opts(self, provider, depends_on=[self.metallb]),
        )
        l2_spec: dict[str, Any] = {"ipAddressPools": [lb.pool_name]}
        if lb.interfaces:
            l2_spec["interfaces"] = list(lb.interfaces)
        l2 = kubernetes.apiextensions.CustomResource(
            f"{name}-metallb-l2",
            api_version="metallb.io/v1beta1",
            kind="L2Advertisement",
            metadata={"name": lb.pool_name, "namespace": lb.namespace},
            spec=l2_spec,
            opts=child_opts(self, provider, depends_on=[self.metallb, pool]),
        )
        return [self.metallb, pool, l2]
