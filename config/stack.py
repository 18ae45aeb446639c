"""The whole stack configuration: one key per domain of ``Pulumi.<stack>.yaml``, loading and preflight.

``load_stack_config(raw)`` validates the shape with pydantic, then runs ``preflight``: each domain's
checks (in the domain's module) with what they refer to, and the platform-wide ones (disjoint CIDRs,
VMID ranges) with every network and range of the stack. Anything wrong is raised as ONE
``StackConfigError`` whose problems carry the YAML key path (``tenants[1].podCidr``) and what is
allowed. Shape errors come first: preflight needs a model, so it runs once the shape is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints, ValidationError

from config.base import ConfigModel, ConfigProblem, Problems, TemplateName, VmidRange
from config.charts import ChartsConfig, check_charts
from config.cluster_api import (
    ClusterApiConfig,
    KamajiConfig,
    check_cluster_api,
    check_kamaji,
    check_shared_vmid_range,
)
from config.compatibility import TenantVersion, check_versions
from config.errors import StackConfigError, problems_from_validation_error
from config.management import ManagementClusterConfig, check_management_cluster
from config.networks import NetworksConfig, check_disjoint_cidrs, check_networks
from config.operations import OperationsConfig, check_operations
from config.proxmox import (
    Inventory,
    NodeConfig,
    ProxmoxConfig,
    TemplateConfig,
    check_nodes,
    check_proxmox,
    check_templates,
    check_vmid_ranges,
)
from config.storage import CSI_CONTROLLER_VMID, StorageClassConfig, check_storage, find_storage_class
from config.tenants import TenantConfig, WorkerPoolConfig, check_tenants
from config.versions import ChartRef, Versions, VersionsConfig, resolve_versions

DOMAIN_KEYS: Final[tuple[str, ...]] = (
    "proxmox",
    "nodes",
    "templates",
    "networks",
    "managementCluster",
    "storage",
    "clusterApi",
    "kamaji",
    "tenants",
    "operations",
    "versions",
    "charts",
)
"""Structured Pulumi config keys read with ``Config.get_object`` (``localRender`` is a plain string)."""


class StackConfig(ConfigModel):
    """The whole stack configuration: one key per domain of ``Pulumi.<stack>.yaml``."""

    proxmox: ProxmoxConfig
    """The Proxmox VE API."""
    nodes: tuple[NodeConfig, ...] = Field(min_length=1)
    """Proxmox nodes the platform may use."""
    templates: dict[TemplateName, TemplateConfig] = Field(default_factory=dict)
    """VM templates by name."""
    networks: NetworksConfig
    """Node networks."""
    management_cluster: ManagementClusterConfig
    """The management cluster."""
    storage: tuple[StorageClassConfig, ...] = ()
    """Proxmox storages exposed through the CSI driver."""
    cluster_api: ClusterApiConfig = ClusterApiConfig()
    """Cluster API placement defaults."""
    kamaji: KamajiConfig = KamajiConfig()
    """Kamaji."""
    tenants: tuple[TenantConfig, ...] = ()
    """Tenants."""
    operations: OperationsConfig = OperationsConfig()
    """Operations tooling."""
    versions: VersionsConfig = VersionsConfig()
    """The promotable version set."""
    charts: ChartsConfig = ChartsConfig()
    """Where the pinned Helm charts come from and how they are installed."""
    local_render: Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\x00\n]+$")] | None = None
    """Render Kubernetes manifests to this directory instead of applying them (the local stack)."""

    def inventory(self) -> Inventory:
        """The nodes and templates other domains refer to."""
        return Inventory(self.nodes, self.templates, self.versions.vm_template)

    def node_names(self) -> tuple[str, ...]:
        """Names of the declared nodes, in order."""
        return tuple(node.name for node in self.nodes)

    def storages_on(self, node_name: str) -> frozenset[str]:
        """Storage IDs declared on a node (empty for an unknown node)."""
        return self.inventory().storages_on(node_name)

    def resolve_template(self, name: str | None) -> str:
        """The template name actually used: ``name`` or, if unset, ``versions.vmTemplate``."""
        return name if name is not None else self.versions.vm_template

    def management_nodes(self) -> tuple[str, ...]:
        """Nodes the management cluster's VMs may run on."""
        return self.management_cluster.nodes or self.node_names()

    def pool_nodes(self, pool: WorkerPoolConfig) -> tuple[str, ...]:
        """Nodes a tenant worker pool may run on (pool, then clusterApi, then all nodes)."""
        return pool.allowed_nodes or self.cluster_api.allowed_nodes or self.node_names()

    def default_storage_class(self) -> StorageClassConfig | None:
        """The storage class marked default, if any."""
        return find_storage_class(self.storage, None)

    def storage_class(self, name: str | None) -> StorageClassConfig | None:
        """The storage class called ``name``, or the default one when ``name`` is None."""
        return find_storage_class(self.storage, name)

    def tenant_kubernetes_version(self, tenant: TenantConfig) -> str:
        """The Kubernetes version a tenant runs."""
        return tenant.kubernetes_version or self.versions.kubernetes

    def resolved_versions(self) -> Versions:
        """The chart and image pins for this stack: the defaults in code, overridden by ``versions``."""
        overrides = self.versions.model_dump(by_alias=True)
        overrides.pop("vmTemplate", None)
        overrides.pop("kubernetes", None)
        return resolve_versions(overrides)

    def installed_charts(self) -> list[ChartRef]:
        """Every chart the platform installs for this configuration (``components/platform.py`` decides the
        same way: a cluster brought in keeps its CNI, CSI comes with storage, MetalLB with a pool)."""
        v = self.resolved_versions()
        charts = [v.cert_manager, v.capi_operator, v.kamaji]
        if not self.management_cluster.external:
            charts += [v.cilium, v.kube_ovn]
        if self.storage:
            charts.append(v.proxmox_csi)
        if self.kamaji.load_balancer is not None:
            charts.append(v.metallb)
        return charts


def preflight(cfg: StackConfig) -> list[ConfigProblem]:
    """Run every cross-key check on a shape-valid configuration; return all problems found."""
    out = Problems()
    inventory = cfg.inventory()
    mc = cfg.management_cluster
    check_proxmox(cfg.proxmox, out)
    check_nodes(cfg.nodes, out)
    check_templates(inventory, out)
    check_networks(cfg.networks, [(f"tenants[{i}].network", t.network) for i, t in enumerate(cfg.tenants)], out)
    check_management_cluster(mc, cfg.networks.management, inventory, out)
    check_storage(cfg.storage, inventory, out)
    check_cluster_api(cfg.cluster_api, inventory, out)
    check_kamaji(
        cfg.kamaji,
        classes=cfg.storage,
        inventory=inventory,
        management=mc,
        network=cfg.networks.management,
        tenant_count=len(cfg.tenants),
        out=out,
    )
    check_tenants(
        cfg.tenants,
        inventory=inventory,
        classes=cfg.storage,
        default_nodes=cfg.cluster_api.allowed_nodes or cfg.node_names(),
        out=out,
    )
    cidrs = cfg.networks.cidrs() + mc.cidrs() + [c for i, t in enumerate(cfg.tenants) for c in t.cidrs(i)]
    check_disjoint_cidrs(cidrs, out)
    _check_vmid_ranges(cfg, out)
    check_operations(cfg.operations, cfg.nodes, out)
    check_versions(
        cfg.versions,
        management_external=mc.external,
        tenants=[TenantVersion(i, t.name, t.kubernetes_version) for i, t in enumerate(cfg.tenants)],
        out=out,
    )
    check_charts(cfg.charts, cfg.installed_charts(), out)
    return out.items


def _check_vmid_ranges(cfg: StackConfig, out: Problems) -> None:
    ranges: list[tuple[str, VmidRange]] = []
    if not cfg.management_cluster.external:
        ranges.append(("managementCluster.vmidRange", cfg.management_cluster.vmid_range))
    ranges.append(("clusterApi.vmidRange", cfg.cluster_api.vmid_range))
    ranges += [(f"tenants[{i}].vmidRange", t.vmid_range) for i, t in enumerate(cfg.tenants) if t.vmid_range]
    reserved = {CSI_CONTROLLER_VMID: "the Proxmox CSI controller"}
    check_vmid_ranges(out, ranges, cfg.templates, reserved)
    if not cfg.management_cluster.external:
        shared = sum(t.machines() for t in cfg.tenants if t.vmid_range is None)
        check_shared_vmid_range(cfg.cluster_api, shared, out)


def load_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate a raw stack configuration (shape, then preflight); raise one StackConfigError."""
    if not isinstance(raw, Mapping):
        raise StackConfigError(
            [ConfigProblem("<root>", f"must be a mapping of config keys (got {type(raw).__name__})")]
        )
    try:
        cfg = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise StackConfigError(problems_from_validation_error(exc, StackConfig)) from None
    problems = preflight(cfg)
    if problems:
        raise StackConfigError(problems)
    return cfg


def stack_config_json_schema() -> dict[str, Any]:
    """JSON schema (draft 2020-12, camelCase keys) of ``StackConfig``, for editors and CI."""
    schema = StackConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_stack_config_schema() -> str:
    """The JSON schema as the exact text stored in ``schema/stack-config.schema.json``."""
    return json.dumps(stack_config_json_schema(), indent=2, sort_keys=False) + "\n"
