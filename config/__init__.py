"""The typed stack configuration of ``Pulumi.<stack>.yaml``: one module per domain, preflight beside it.

Shape
    Every domain is one structured config key in the project namespace (``proxmox``, ``nodes``,
    ``templates``, ``networks``, ``managementCluster``, ``storage``, ``clusterApi``, ``kamaji``,
    ``tenants``, ``operations``, ``versions``, ``localRender``). YAML keys are camelCase; the Python
    attributes are snake_case. Every model forbids unknown keys and is frozen.

Where things are
    ``base`` (model base, scalar types, problems), ``proxmox`` (API, nodes, templates), ``networks``,
    ``management`` (the management cluster), ``storage``, ``cluster_api`` (Cluster API and Kamaji),
    ``tenants``, ``operations``, ``versions`` (pins) and ``compatibility`` (the matrix), ``stack`` (the
    whole model and preflight), ``errors`` (shape errors in plain words), ``secrets`` (the secret keys,
    never in the model) and ``reader`` (the only module that talks to the Pulumi engine).

This package imports nothing else of the project: config -> providers -> components -> ``__main__``.
"""

from config.base import ConfigProblem, VmidRange, VmIpRange, format_problems
from config.cluster_api import ClusterApiConfig, KamajiConfig, KamajiDatastoreConfig, KamajiLoadBalancerConfig
from config.compatibility import COMPATIBILITY_MATRIX, ClusterApiLine, CompatibilityMatrix, KamajiLine
from config.errors import StackConfigError, format_path, problems_from_validation_error
from config.management import ControlPlaneSpec, ManagementClusterConfig, WorkerSpec
from config.networks import NetworkConfig, NetworksConfig, RoutedNetworkConfig, TenantNetworkConfig
from config.operations import BackupConfig, BackupRetention, OperationsConfig
from config.proxmox import NodeConfig, ProxmoxConfig, TemplateConfig
from config.reader import read_stack_config
from config.secrets import SECRET_KEYS, StackSecrets, read_stack_secrets, required_secret_keys
from config.stack import (
    DOMAIN_KEYS,
    StackConfig,
    load_stack_config,
    preflight,
    render_stack_config_schema,
    stack_config_json_schema,
)
from config.storage import CSI_CONTROLLER_VMID, StorageClassConfig
from config.tenants import TenantConfig, TenantQuota, WorkerPoolConfig
from config.versions import DEFAULT_VERSION_SET, DEFAULT_VERSIONS, Versions, VersionsConfig

__all__ = [
    "COMPATIBILITY_MATRIX",
    "CSI_CONTROLLER_VMID",
    "DEFAULT_VERSIONS",
    "DEFAULT_VERSION_SET",
    "DOMAIN_KEYS",
    "SECRET_KEYS",
    "BackupConfig",
    "BackupRetention",
    "ClusterApiConfig",
    "ClusterApiLine",
    "CompatibilityMatrix",
    "ConfigProblem",
    "ControlPlaneSpec",
    "KamajiConfig",
    "KamajiDatastoreConfig",
    "KamajiLine",
    "KamajiLoadBalancerConfig",
    "ManagementClusterConfig",
    "NetworkConfig",
    "NetworksConfig",
    "NodeConfig",
    "OperationsConfig",
    "ProxmoxConfig",
    "RoutedNetworkConfig",
    "StackConfig",
    "StackConfigError",
    "StackSecrets",
    "StorageClassConfig",
    "TemplateConfig",
    "TenantConfig",
    "TenantNetworkConfig",
    "TenantQuota",
    "Versions",
    "VersionsConfig",
    "VmIpRange",
    "VmidRange",
    "WorkerPoolConfig",
    "WorkerSpec",
    "format_path",
    "format_problems",
    "load_stack_config",
    "preflight",
    "problems_from_validation_error",
    "read_stack_config",
    "read_stack_secrets",
    "render_stack_config_schema",
    "required_secret_keys",
    "stack_config_json_schema",
]
