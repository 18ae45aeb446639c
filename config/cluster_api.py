"""The Cluster API and Kamaji domain: tenant worker placement, the DataStore, tenant API exposure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from config.base import (
    HOST_PORT,
    LINUX_USER,
    ConfigModel,
    NodeName,
    Problems,
    StorageClassName,
    VmidRange,
    VmIpRange,
    check_range,
    check_reserved_ip,
    pattern,
)
from config.management import ManagementClusterConfig
from config.networks import RoutedNetworkConfig
from config.proxmox import Inventory
from config.storage import StorageClassConfig, check_storage_class_ref, check_storage_on_nodes, find_storage_class


class ClusterApiConfig(ConfigModel):
    """Cluster API / CAPMOX placement defaults for tenant worker VMs."""

    vmid_range: VmidRange = VmidRange(start=200_000, end=299_999)
    """VMIDs for tenant workers without their own tenants[].vmidRange."""
    allowed_nodes: tuple[NodeName, ...] = ()
    """Nodes tenant workers may run on (default: all nodes)."""


class KamajiDatastoreConfig(ConfigModel):
    """The Kamaji DataStore that holds the tenants' control-plane state."""

    driver: Literal["etcd", "postgresql"] = "etcd"
    """etcd (deployed by the kamaji-etcd chart) or an existing PostgreSQL."""
    replicas: int = Field(default=3, ge=1, le=7)
    """etcd replicas (odd)."""
    storage_class: StorageClassName | None = None
    """StorageClass for the etcd volumes (default: the default storage class)."""
    size_gib: int = Field(default=8, ge=1, le=1024, alias="sizeGiB")
    """Size of each etcd volume in GiB."""
    endpoints: tuple[Annotated[str, pattern(HOST_PORT)], ...] = ()
    """PostgreSQL endpoints host:port (postgresql only)."""
    username: Annotated[str, pattern(LINUX_USER, 63)] = "kamaji"
    """PostgreSQL user (postgresql only); its password is the secret config key kamajiDatastorePassword."""


class KamajiLoadBalancerConfig(ConfigModel):
    """Addresses for the tenants' control-plane LoadBalancer services (MetalLB pool)."""

    ip_range: VmIpRange
    """Pool inside networks.management.cidr; one address per tenant."""


class KamajiConfig(ConfigModel):
    """Kamaji, which runs tenant control planes as pods on the management cluster."""

    replicas: int = Field(default=2, ge=1, le=5)
    """Kamaji controller replicas."""
    datastore: KamajiDatastoreConfig = KamajiDatastoreConfig()
    """The default DataStore."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """How tenant API servers are exposed."""
    load_balancer: KamajiLoadBalancerConfig | None = None
    """LoadBalancer address pool (required with serviceType LoadBalancer and tenants)."""


def check_cluster_api(capi: ClusterApiConfig, inventory: Inventory, out: Problems) -> None:
    """Allowed nodes are declared nodes."""
    inventory.check_node_refs(out, "clusterApi.allowedNodes", capi.allowed_nodes)


def check_shared_vmid_range(capi: ClusterApiConfig, machines: int, out: Problems) -> None:
    """The shared range holds every worker (plus surge) of the tenants without a range of their own."""
    rng = capi.vmid_range
    if rng.start <= rng.end and rng.size < machines:
        out.add("clusterApi.vmidRange", f"holds {rng.size} VMIDs; tenants sharing it need at least {machines}")


def check_kamaji(
    kamaji: KamajiConfig,
    *,
    classes: Sequence[StorageClassConfig],
    inventory: Inventory,
    management: ManagementClusterConfig,
    network: RoutedNetworkConfig,
    tenant_count: int,
    out: Problems,
) -> None:
    """The DataStore's settings fit its driver; the LoadBalancer pool fits the management network."""
    ds = kamaji.datastore
    path = "kamaji.datastore"
    if ds.driver == "etcd":
        if ds.replicas % 2 == 0:
            out.add(f"{path}.replicas", f"must be odd for etcd quorum (got {ds.replicas})")
        if ds.endpoints:
            out.add(f"{path}.endpoints", "only used with driver postgresql (kamaji-etcd is deployed in-cluster)")
        if check_storage_class_ref(classes, out, f"{path}.storageClass", ds.storage_class):
            if find_storage_class(classes, ds.storage_class) is None:
                out.add(
                    f"{path}.storageClass",
                    "kamaji-etcd needs a StorageClass for its volumes: name one from storage or mark one default",
                )
            elif not management.external:
                nodes = management.nodes or inventory.node_names()
                check_storage_on_nodes(
                    classes, inventory, out, f"{path}.storageClass", ds.storage_class, nodes, "the management cluster"
                )
    else:
        if not ds.endpoints:
            out.add(f"{path}.endpoints", "required with driver postgresql: host:port of the database")
        if ds.storage_class is not None:
            out.add(f"{path}.storageClass", "only used with driver etcd")
    _check_load_balancer(kamaji, management, network, tenant_count, out)


def _check_load_balancer(
    kamaji: KamajiConfig,
    management: ManagementClusterConfig,
    net: RoutedNetworkConfig,
    tenant_count: int,
    out: Problems,
) -> None:
    lb = kamaji.load_balancer
    if kamaji.service_type == "LoadBalancer" and tenant_count and lb is None:
        out.add(
            "kamaji.loadBalancer",
            "required when serviceType is LoadBalancer and tenants are declared: the address pool "
            "for the tenants' API servers",
        )
    if lb is None:
        return
    if kamaji.service_type != "LoadBalancer":
        out.add("kamaji.loadBalancer", "only used with serviceType LoadBalancer; remove it or change serviceType")
        return
    lb_path = "kamaji.loadBalancer.ipRange"
    if not check_range(out, lb_path, lb.ip_range, net.cidr, "networks.management.cidr"):
        return
    if lb.ip_range.size < tenant_count:
        out.add(lb_path, f"holds {lb.ip_range.size} addresses; needs one per tenant ({tenant_count})")
    mc_range = None if management.external else management.ip_range
    mc_valid = mc_range is not None and mc_range.start <= mc_range.end and mc_range.end in net.cidr
    if mc_range is not None and mc_valid and mc_range.start in net.cidr and lb.ip_range.overlaps(mc_range):
        out.add(lb_path, f"overlaps managementCluster.ipRange ({mc_range.start}-{mc_range.end})")
    check_reserved_ip(out, "networks.management.gateway", net.gateway, [(lb_path, lb.ip_range)])
    endpoint = management.control_plane_endpoint
    if endpoint is not None and not management.external:
        check_reserved_ip(out, "managementCluster.controlPlaneEndpoint", endpoint, [(lb_path, lb.ip_range)])
