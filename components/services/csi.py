"""ProxmoxCsi: the proxmox-csi-plugin chart, its credentials, node topology and storage classes.

Facts from ``reference/k8s_stack.md`` section 4:

* the plugin's ``config.yaml`` takes the Proxmox URL **with** ``/api2/json`` (CAPMOX takes it without);
* every node needs ``topology.kubernetes.io/region`` (= the ``region`` of the cluster entry, here the
  Proxmox cluster name) and ``topology.kubernetes.io/zone`` (= the Proxmox node name) **before** the
  node DaemonSet starts, otherwise the node plugin never registers;
* StorageClass parameters are ``diskIOPS`` / ``diskMBps`` (not ``iops`` / ``bandwidth``), LUKS uses the
  node-stage *and* node-expand secret (same secret, key ``encryption-passphrase``);
* snapshots and clones are experimental full copies, need ``root@pam`` password auth and are refused on
  Ceph RBD and on any shared storage (see ``docs/proxmox-csi-limits.md``).

Topology labels are applied with ``kubernetes.core.v1.NodePatch`` (server-side apply with its own field
manager): the patch owns exactly the two labels, never adopts or deletes the Node, and removing it
removes only those labels. The Proxmox CCM would also keep labels right after a live migration, but it
needs ``--cloud-provider=external`` on every kubelet; the management-cluster VMs are placed by this
program, so their node is known and static labels are exact. Set ``label_nodes=False`` when a CCM (or
kubelet ``--node-labels``) owns the labels instead.

The LUKS passphrase is an Input the caller provides (read from a secret stack-config key): a generated
value would have to be stable across runs and no random provider is installed, and a passphrase that
changed would make every encrypted volume unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pulumi
import pulumi_kubernetes as kubernetes
import yaml

from components.k8s import (
    PSA_PRIVILEGED_LABELS,
    ChartInstall,
    TopLevelCustomResource,
    child_opts,
    install_chart,
    namespace,
    proxmox_api_url,
    require_dns_label,
    require_dns_subdomain,
    require_provider,
)
from config.versions import DEFAULT_VERSIONS, Versions

__all__ = [
    "CSI_DRIVER",
    "CsiNode",
    "CsiSnapshots",
    "CsiStorageClass",
    "ProxmoxCsi",
    "ProxmoxCsiArgs",
    "csi_config_yaml",
]

CSI_DRIVER: Final = "csi.proxmox.sinextra.dev"
"""The plugin's provisioner name (fixed upstream)."""

REGION_LABEL: Final = "topology.kubernetes.io/region"
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
LUKS_KEY: Final = "encryption-passphrase"
CONFIG_KEY: Final = "config.yaml"

StorageType = Literal["dir", "lvm", "lvmthin", "zfspool", "nfs", "rbd"]
"""Proxmox storage types the plugin supports (``cifs`` and ``pbs`` are refused by the controller)."""

_SHARED_TYPES: Final = frozenset({"nfs", "rbd"})
_SNAPSHOT_TYPES: Final = frozenset({"dir", "lvm", "lvmthin", "zfspool"})
_STORAGE_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*")


@dataclass(frozen=True, kw_only=True)
class CsiNode:
    """A Kubernetes node and the Proxmox node (zone) its VM runs on."""

    name: str
    """Kubernetes node name."""

    proxmox_node: str
    """Proxmox node name, used as ``topology.kubernetes.io/zone``."""


@dataclass(frozen=True, kw_only=True)
class CsiStorageClass:
    """One StorageClass backed by one Proxmox storage."""

    name: str
    """StorageClass name."""

    storage: str
    """Proxmox storage ID (``local-lvm``, ``ceph-vm`` ...)."""

    storage_type: StorageType
    """Proxmox storage type; decides binding mode and whether snapshots are possible."""

    shared: bool = False
    """Storage is shared between Proxmox nodes (always true for ``nfs`` and ``rbd``)."""

    fstype: Literal["ext4", "xfs"] = "ext4"
    """Filesystem created on new volumes."""

    storage_format: Literal["raw", "qcow2"] | None = None
    """Disk format on file storages; qcow2 volumes cannot be snapshot-restore or clone targets."""

    cache: Literal["directsync", "none", "writeback", "writethrough"] | None = None
    """QEMU disk cache mode."""

    ssd: bool = False
    """Expose the disk as SSD (enables discard)."""

    backup: bool = False
    """Include the disk in the VM's vzdump backups (upstream default false)."""

    disk_iops: int | None = None
    """Read/write IOPS limit (``diskIOPS``)."""

    disk_mbps: int | None = None
    """Read/write MB/s limit (``diskMBps``)."""

    allow_volume_expansion: bool = True
    """Allow online expansion (supported by the plugin)."""

    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    """What happens to the Proxmox disk when the PV is released."""

    volume_binding_mode: Literal["Immediate", "WaitForFirstConsumer"] | None = None
    """Binding mode; default ``Immediate`` on Ceph RBD (chart advice), else ``WaitForFirstConsumer``."""

    encrypted: bool = False
    """Encrypt volumes with LUKS using the component's passphrase secret."""

    default: bool = False
    """Mark as the cluster's default StorageClass (at most one)."""

    zones: Sequence[str] = ()
    """Restrict to these Proxmox nodes (``allowedTopologies`` with both region and zone keys)."""

    mount_options: Sequence[str] = ("noatime",)
    """Mount options of provisioned volumes."""

    @property
    def is_shared(self) -> bool:
        """Whether volumes live on storage reachable from every Proxmox node."""
        return self.shared or self.storage_type in _SHARED_TYPES

    @property
    def can_snapshot(self) -> bool:
        """Whether the plugin can snapshot/clone volumes here (local, non-shared, not RBD)."""
        return not self.is_shared and self.storage_type in _SNAPSHOT_TYPES

    def __post_init__(self) -> None:
        require_dns_subdomain(self.name, "StorageClass name")
        if not _STORAGE_ID.fullmatch(self.storage):
            raise ValueError(f"storage class {self.name}: {self.storage!r} is not a Proxmox storage ID")
        for limit, value in (("disk_iops", self.disk_iops), ("disk_mbps", self.disk_mbps)):
            if value is not None and value <= 0:
                raise ValueError(f"storage class {self.name}: {limit} must be positive")
        if self.storage_format == "qcow2" and self.storage_type not in ("dir", "nfs"):
            raise ValueError(f"storage class {self.name}: qcow2 needs a file storage (dir, nfs)")


@dataclass(frozen=True, kw_only=True)
class CsiSnapshots:
    """Experimental snapshots/clones (full copies; local non-shared storage only)."""

    root_password: pulumi.Input[str]
    """Password of ``root@pam``: the plugin's volume copy requires it and replaces the token auth."""

    install_controller: bool = True
    """Install the snapshot CRDs and snapshot-controller chart (skip if something else provides them)."""

    deletion_policy: Literal["Delete", "Retain"] = "Delete"
    """``deletionPolicy`` of the VolumeSnapshotClass."""


@dataclass(frozen=True, kw_only=True)
class ProxmoxCsiArgs:
    """Inputs of ProxmoxCsi; credentials are pulumi Inputs and stay secret."""

    provider: kubernetes.Provider
    """Explicit provider of the target cluster."""

    proxmox_url: str
    """Proxmox API URL, with or without ``/api2/json`` (normalised to the form the plugin needs)."""

    region: str
    """Proxmox cluster name: the config ``region`` and every node's ``topology.kubernetes.io/region``."""

    token_id: pulumi.Input[str]
    """CSI API token id ``user@realm!name`` (secret Input)."""

    token_secret: pulumi.Input[str]
    """CSI API token secret UUID (secret Input)."""

    storage_classes: Sequence[CsiStorageClass]
    """One StorageClass per Proxmox storage offered to workloads."""

    nodes: Sequence[CsiNode] = ()
    """Nodes to label with region/zone (required when ``label_nodes``)."""

    label_nodes: bool = True
    """Apply the topology labels with NodePatch (off when a CCM or kubelet flags own them)."""

    luks_passphrase: pulumi.Input[str] | None = None
    """LUKS passphrase (secret Input), required when any StorageClass is ``encrypted``."""

    snapshots: CsiSnapshots | None = None
    """Enable experimental snapshots/clones; ``None`` emits no VolumeSnapshotClass."""

    tls_insecure: bool = False
    """Skip TLS verification toward Proxmox (off: verification stays on)."""

    proxmox_ca_bundle: str | None = None
    """PEM CA bundle for the Proxmox API; mounted over the controller's system CA file."""

    provider_id_format: Literal["default", "capmox"] = "default"
    """``features.provider``: ``capmox`` for nodes whose providerID is ``proxmox://<uuid>`` (CAPMOX)."""

    controller_vmid: int | None = None
    """``features.controllerVmID`` (VMID that owns PV disks; keep outside CAPMOX's vmIDRange)."""

    namespace: str = "csi-proxmox"
    """Namespace of the plugin (labelled PSA privileged)."""

    controller_on_control_plane: bool = True
    """Schedule the controller on control-plane nodes (off in Kamaji tenants, which have none)."""

    versions: Versions = DEFAULT_VERSIONS
    """Pinned chart versions (``proxmox_csi``, ``snapshot_controller``)."""

    charts: ChartInstall = field(default_factory=ChartInstall)
    """How charts are installed (templated or as releases, from repositories or a local directory)."""

    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist first (typically the pod network)."""

    def __post_init__(self) -> None:
        proxmox_api_url(self.proxmox_url)
        if not self.region:
            raise ValueError("region (the Proxmox cluster name) is required")
        require_dns_label(self.namespace, "namespace")
        if not self.storage_classes:
            raise ValueError("at least one storage class is required")
        names = [sc.name for sc in self.storage_classes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate storage class names: {names}")
        if sum(sc.default for sc in self.storage_classes) > 1:
            raise ValueError("at most one storage class may be the default")
        if any(sc.encrypted for sc in self.storage_classes) and self.luks_passphrase is None:
            raise ValueError("an encrypted storage class needs luks_passphrase (a secret Input)")
        if self.label_nodes and not self.nodes:
            raise ValueError("label_nodes needs the node list (Kubernetes node -> Proxmox node)")
        node_names = [n.name for n in self.nodes]
        if len(set(node_names)) != len(node_names):
            raise ValueError(f"duplicate node names: {node_names}")
        zones = {n.proxmox_node for n in self.nodes}
        for sc in self.storage_classes:
            unknown = sorted(set(sc.zones) - zones) if zones else []
            if unknown:
                raise ValueError(f"storage class {sc.name}: zones {unknown} are not Proxmox nodes of any node")
        if self.snapshots is not None and not any(sc.can_snapshot for sc in self.storage_classes):
            raise ValueError(
                "snapshots need at least one local, non-shared storage (dir, lvm, lvmthin, zfspool); "
                "the plugin refuses snapshots on Ceph RBD, NFS and any shared storage"
            )
        if self.tls_insecure and self.proxmox_ca_bundle:
            raise ValueError("tls_insecure and proxmox_ca_bundle exclude each other")
        if self.controller_vmid is not None and self.controller_vmid <= 100:
            raise ValueError("controller_vmid must be > 100")


def csi_config_yaml(
    *,
    url: str,
    region: str,
    insecure: bool,
    provider_id_format: str,
    controller_vmid: int | None,
    token_id: str | None = None,
    token_secret: str | None = None,
    root_password: str | None = None,
) -> str:
    """Render the plugin's ``config.yaml``: exactly one of token auth or ``root@pam`` password auth."""
    cluster: dict[str, Any] = {"url": proxmox_api_url(url), "insecure": insecure, "region": region}
    if root_password is not None:
        cluster |= {"username": "root@pam", "password": root_password}
    elif token_id and token_secret:
        cluster |= {"token_id": token_id, "token_secret": token_secret}
    else:
        raise ValueError("the CSI config needs a token (id + secret) or the root@pam password")
    features: dict[str, Any] = {"provider": provider_id_format}
    if controller_vmid is not None:
        features["controllerVmID"] = controller_vmid
    return yaml.safe_dump({"features": features, "clusters": [cluster]}, sort_keys=False)


def storage_class_parameters(sc: CsiStorageClass, luks_secret: tuple[str, str] | None) -> dict[str, str]:
    """StorageClass ``parameters`` for ``sc`` (all values are strings, as the API requires)."""
    params = {"storage": sc.storage, "csi.storage.k8s.io/fstype": sc.fstype}
    if sc.storage_format:
        params["storageFormat"] = sc.storage_format
    if sc.cache:
        params["cache"] = sc.cache
    if sc.ssd:
        params["ssd"] = "true"
    params["backup"] = "true" if sc.backup else "false"
    if sc.disk_iops is not None:
        params["diskIOPS"] = str(sc.disk_iops)
    if sc.disk_mbps is not None:
        params["diskMBps"] = str(sc.disk_mbps)
    if sc.encrypted:
        if luks_secret is None:
            raise ValueError(f"storage class {sc.name} is encrypted but no LUKS secret exists")
        name, ns = luks_secret
        for stage in ("node-stage", "node-expand"):
            params[f"csi.storage.k8s.io/{stage}-secret-name"] = name
            params[f"csi.storage.k8s.io/{stage}-secret-namespace"] = ns
    return params


class ProxmoxCsi(pulumi.ComponentResource):
    """Proxmox CSI plugin: config secret, node topology, chart, StorageClasses, optional snapshots."""

    config_secret: kubernetes.core.v1.Secret
    """Secret holding ``config.yaml`` (Proxmox URL and credentials)."""

    chart: pulumi.Resource
    """The proxmox-csi-plugin Release (or rendered Chart)."""

    storage_classes: dict[str, kubernetes.storage.v1.StorageClass]
    """StorageClasses by name."""

    snapshot_class: TopLevelCustomResource | None
    """The VolumeSnapshotClass, only when snapshots are enabled."""

    luks_secret: kubernetes.core.v1.Secret | None
    """Secret with the LUKS passphrase, only when a StorageClass is encrypted."""

    node_patches: list[kubernetes.core.v1.NodePatch]
    """Topology-label patches, one per node (empty when ``label_nodes`` is off)."""

    values: dict[str, Any]
    """The chart values."""

    def __init__(self, name: str, args: ProxmoxCsiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:storage:ProxmoxCsi", name, None, opts)
        provider = require_provider(args.provider, "ProxmoxCsi")
        first = list(args.depends_on)
        ns_name = args.namespace

        ns = namespace(
            f"{name}-namespace",
            ns_name,
            labels=PSA_PRIVILEGED_LABELS,
            opts=child_opts(self, provider, depends_on=first),
        )
        secret_opts = child_opts(self, provider, depends_on=[ns], additional_secret_outputs=["data", "stringData"])
        config = self._config_yaml(args)
        self.config_secret = kubernetes.core.v1.Secret(
            f"{name}-config",
            metadata={"name": "proxmox-csi-config", "namespace": ns_name},
            type="Opaque",
            string_data={CONFIG_KEY: config},
            opts=secret_opts,
        )
        chart_deps: list[pulumi.Resource] = [ns, self.config_secret]

        values: dict[str, Any] = {
            "createNamespace": False,
            "existingConfigSecret": "proxmox-csi-config",
            "existingConfigSecretKey": CONFIG_KEY,
            "storageClass": [],
            "controller": {"snapshotter": {"enabled": args.snapshots is not None}},
        }
        if args.controller_on_control_plane:
            values["nodeSelector"] = {"node-role.kubernetes.io/control-plane": ""}
            values["tolerations"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
        if args.proxmox_ca_bundle:
            ca = kubernetes.core.v1.ConfigMap(
                f"{name}-proxmox-ca",
                metadata={"name": "proxmox-csi-ca", "namespace": ns_name},
                data={"ca.crt": args.proxmox_ca_bundle},
                opts=child_opts(self, provider, depends_on=[ns]),
            )
            chart_deps.append(ca)
            values["extraVolumes"] = [{"name": "proxmox-ca", "configMap": {"name": "proxmox-csi-ca"}}]
            values["extraVolumeMounts"] = [
                {
                    "name": "proxmox-ca",
                    "mountPath": "/etc/ssl/certs/ca-certificates.crt",
                    "subPath": "ca.crt",
                    "readOnly": True,
                }
            ]

        self.node_patches = []
        if args.label_nodes:
            for node in args.nodes:
                self.node_patches.append(
                    kubernetes.core.v1.NodePatch(
                        f"{name}-topology-{node.name}",
                        metadata={
                            "name": node.name,
                            "labels": {REGION_LABEL: args.region, ZONE_LABEL: node.proxmox_node},
                        },
                        opts=child_opts(self, provider, depends_on=first),
                    )
                )
        self.values = values
        self.chart = install_chart(
            f"{name}-chart",
            chart=args.versions.proxmox_csi,
            release_name="proxmox-csi-plugin",
            namespace=ns_name,
            values=values,
            install=args.charts,
            # Labels must be on every node before the node DaemonSet registers the driver.
            opts=child_opts(self, provider, depends_on=[*first, *chart_deps, *self.node_patches]),
        )

        luks: tuple[str, str] | None = None
        sc_deps: list[pulumi.Resource] = [self.chart]
        self.luks_secret = None
        if any(sc.encrypted for sc in args.storage_classes) and args.luks_passphrase is not None:
            luks = ("proxmox-csi-luks", ns_name)
            self.luks_secret = kubernetes.core.v1.Secret(
                f"{name}-luks",
                metadata={"name": luks[0], "namespace": ns_name},
                type="Opaque",
                string_data={LUKS_KEY: pulumi.Output.secret(args.luks_passphrase)},
                opts=secret_opts,
            )
            sc_deps.append(self.luks_secret)

        self.storage_classes = {}
        for sc in args.storage_classes:
            self.storage_classes[sc.name] = self._storage_class(name, args, sc, luks, provider, sc_deps)

        self.snapshot_class = None
        if args.snapshots is not None:
            snap_deps: list[pulumi.Resource] = [self.chart]
            if args.snapshots.install_controller:
                snap_deps.append(
                    install_chart(
                        f"{name}-snapshot-controller",
                        chart=args.versions.snapshot_controller,
                        release_name="snapshot-controller",
                        namespace="kube-system",
                        values={},
                        install=args.charts,
                        opts=child_opts(self, provider, depends_on=first),
                    )
                )
            self.snapshot_class = TopLevelCustomResource(
                f"{name}-snapshot-class",
                api_version="snapshot.storage.k8s.io/v1",
                kind="VolumeSnapshotClass",
                metadata={"name": "proxmox-csi-snapshots"},
                fields={"driver": CSI_DRIVER, "deletionPolicy": args.snapshots.deletion_policy},
                opts=child_opts(self, provider, depends_on=snap_deps),
            )
        self.register_outputs({"storageClasses": sorted(self.storage_classes), "snapshots": args.snapshots is not None})

    @staticmethod
    def _config_yaml(args: ProxmoxCsiArgs) -> pulumi.Output[str]:
        """Build ``config.yaml`` from the secret credentials; the result is always a secret Output."""
        common: dict[str, Any] = {
            "url": args.proxmox_url,
            "region": args.region,
            "insecure": args.tls_insecure,
            "provider_id_format": args.provider_id_format,
            "controller_vmid": args.controller_vmid,
        }
        if args.snapshots is not None:
            rendered = pulumi.Output.from_input(args.snapshots.root_password).apply(
                lambda pw: csi_config_yaml(**common, root_password=pw)
            )
        else:
            rendered = pulumi.Output.all(args.token_id, args.token_secret).apply(
                lambda creds: csi_config_yaml(**common, token_id=creds[0], token_secret=creds[1])
            )
        return pulumi.Output.secret(rendered)

    def _storage_class(
        self,
        name: str,
        args: ProxmoxCsiArgs,
        sc: CsiStorageClass,
        luks: tuple[str, str] | None,
        provider: kubernetes.Provider,
        deps: Sequence[pulumi.Resource],
    ) -> kubernetes.storage.v1.StorageClass:
        """Create the StorageClass for ``sc``."""
        annotations: Mapping[str, str] = {"storageclass.kubernetes.io/is-default-class": "true"} if sc.default else {}
        binding = sc.volume_binding_mode or ("Immediate" if sc.storage_type == "rbd" else "WaitForFirstConsumer")
        topologies: list[kubernetes.core.v1.TopologySelectorTermArgsDict] | None = None
        if sc.zones:
            topologies = [
                {
                    "match_label_expressions": [
                        {"key": REGION_LABEL, "values": [args.region]},
                        {"key": ZONE_LABEL, "values": list(sc.zones)},
                    ]
                }
            ]
        metadata: kubernetes.meta.v1.ObjectMetaArgsDict = {"name": sc.name, "annotations": dict(annotations)}
        return kubernetes.storage.v1.StorageClass(
            f"{name}-sc-{sc.name}",
            metadata=metadata,
            provisioner=CSI_DRIVER,
            parameters=storage_class_parameters(sc, luks),
            allow_volume_expansion=sc.allow_volume_expansion,
            reclaim_policy=sc.reclaim_policy,
            volume_binding_mode=binding,
            mount_options=list(sc.mount_options) or None,
            allowed_topologies=topologies,
            opts=child_opts(self, provider, depends_on=deps),
        )
