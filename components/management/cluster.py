"""ManagementCluster: Kubernetes on Proxmox VMs bootstrapped with kubeadm over SSH, or one you bring.

What it builds (``managementCluster.external: false``)
    * ``controlPlanes.count`` + ``workers.count`` ``ProxmoxVm``s named ``<cluster>-cp-<n>`` and
      ``<cluster>-worker-<n>`` (n from 1), tagged ``k8s``, ``mgmt`` and ``control-plane``/``worker``,
      cloned from the stack's template, with cloud-init user + SSH keys, ``net0`` on the management
      network and ``net1``/``net2`` on the data/storage networks when those are configured (left
      unaddressed: they are underlays for Kube-OVN and storage clients), VMIDs from ``vmidRange``.
      A changed template applies to VMs created later, never replaces the running ones
      (``ignore_changes``); roll a VM onto it with ``pulumi up --replace <urn>``.
    * The VM firewall, when ``security_groups`` names the platform's groups (``ProxmoxCluster``'s
      ``security_group_names``; ``Platform`` passes them and puts the group resources in ``depends_on``):
      each NIC gets its network's group (management on ``net0``, data on ``net1``, storage on ``net2``)
      and the VM's firewall is enabled with ``policy_in=DROP`` before the VM first starts
      (``ProxmoxVm`` input ``firewall``). The rules filter only once an operator has enabled the
      datacenter firewall, which this program deliberately never does.
    * Static addresses from ``ipRange``: control planes first, then workers, one per index
      (``start + i``). Changing ``controlPlanes.count`` therefore renumbers the workers.
    * Placement (``spread_over_nodes``): smooth weighted round-robin over the allowed nodes in their
      configured order (weight = ``nodes[].weight``, unset = 1), control planes and workers each as
      their own sequence, so changing one role never moves a VM of the other and a prefix of a role
      never moves when the role grows. Equal weights and 3 control planes on 3 nodes: one per node.
    * The kubeadm bootstrap as ``pulumi_command`` ``remote.Command``s (host = the static IP, user =
      ``sshUser``, key = the secret ``sshPrivateKey``), each script sent on stdin to
      ``sudo -n /bin/bash -s`` (``components/management/bootstrap``):

      ``prepare-<vm>`` (every VM, in parallel) -> ``init`` (first control plane) -> ``join-credentials``
      (token + CA hash + certificate key; stdout secret) -> ``join-<cp>`` one after the other (etcd
      grows one member at a time) and ``join-<worker>`` in parallel -> ``kubeconfig``
      (``cat /etc/kubernetes/admin.conf``; stdout secret) -> the ``kubernetes.Provider``.

      Every command depends on its VM and is re-run when the VM is replaced (``triggers``); every
      script is idempotent (``admin.conf``/``kubelet.conf`` mean done). The credentials command is
      re-run when the set of joining nodes changes, so a grown cluster gets fresh credentials; the
      join commands of nodes that already joined then re-run as no-ops.

Bring your own (``external: true``)
    No VM and no command: the provider is built from the secret ``managementKubeconfig``.

VMs here, Kubernetes bootstrapped elsewhere (``bootstrap: external``; the ``local`` stack)
    The VMs are created as above but no command runs: something else (the image, the operator's own
    tooling, the local scaffolding) brings Kubernetes up on them, and the provider is built from the
    secret ``managementKubeconfig``, after the VMs exist.

Render mode (``render_dir`` set; ``localRender``, ``make render``)
    The VMs are created, nothing is bootstrapped, there is no kubeconfig, and the provider renders
    manifests to ``render_dir``. A render never depends on a command having run.

Environment differences are the plain Args ``bootstrap``, ``external_kubeconfig`` and ``render_dir``
(``ManagementClusterArgs.from_stack`` derives them from the stack config), never a stack-name check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi_command import remote

from components.k8s import cluster_provider, kubeconfig_server, require_plain_identifier
from components.management.bootstrap import render_script
from components.management.bootstrap.kubeadm import (
    KUBE_VIP_IMAGE,
    AuditLogSettings,
    ClusterSettings,
    JoinCredentials,
    NodeIdentity,
    audit_policy,
    init_configuration,
    join_configuration,
    kube_vip_manifest,
)
from config import (
    DEFAULT_VERSIONS,
    ManagementClusterConfig,
    NetworksConfig,
    NodeConfig,
    StackConfig,
    StackSecrets,
)
from providers.dynamic.vm import ProxmoxVm, ProxmoxVmArgs

__all__ = [
    "CONTROL_PLANE",
    "WORKER",
    "ClusterNode",
    "ManagementCluster",
    "ManagementClusterArgs",
    "plan_nodes",
    "spread_over_nodes",
]

Role = Literal["control-plane", "worker"]
CONTROL_PLANE: Final[Role] = "control-plane"
WORKER: Final[Role] = "worker"

_REMOTE_SHELL: Final = "sudo -n /bin/bash -s"
_ADMIN_CONF: Final = "/etc/kubernetes/admin.conf"
_SUPER_ADMIN_CONF: Final = "/etc/kubernetes/super-admin.conf"
NIC_OF_NETWORK: Final[Mapping[str, str]] = {"management": "net0", "data": "net1", "storage": "net2"}
"""The NIC slot of each node network on every management cluster VM."""


# --------------------------------------------------------------------------------------------------
# Plain planning: placement and addresses (no pulumi)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClusterNode:
    """One planned VM / Kubernetes node, known at preview."""

    name: str
    """VM name = hostname = Kubernetes node name."""

    role: Role
    """``control-plane`` or ``worker``."""

    index: int
    """Position within its role, from 0."""

    address: str
    """Static IPv4 address on the management network."""

    prefix_length: int
    """Prefix length of the management network."""

    proxmox_node: str
    """Proxmox node the VM is placed on (the CSI topology zone)."""


def spread_over_nodes(count: int, nodes: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """Place ``count`` VMs on ``(node, weight)`` candidates with smooth weighted round-robin.

    Deterministic: each step adds every node's weight to its credit, picks the node with the most
    credit (the earliest in ``nodes`` on a tie) and charges it the total weight. Every prefix of the
    result is as close to the weight shares as whole VMs allow, and equal weights give plain
    round-robin in the given order.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if count and not nodes:
        raise ValueError("no Proxmox node to place the VMs on")
    names = [n for n, _ in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate node in {names}")
    if any(w < 1 for _, w in nodes):
        raise ValueError("node weights must be at least 1")
    total = sum(w for _, w in nodes)
    credit = dict.fromkeys(names, 0)
    placed: list[str] = []
    for _ in range(count):
        for name, weight in nodes:
            credit[name] += weight
        best = max(names, key=lambda n: (credit[n], -names.index(n)))
        credit[best] -= total
        placed.append(best)
    return tuple(placed)


def plan_nodes(
    *,
    cluster_name: str,
    config: ManagementClusterConfig,
    networks: NetworksConfig,
    nodes: Sequence[NodeConfig],
) -> tuple[ClusterNode, ...]:
    """Names, static addresses and placement of every VM: control planes first, then workers."""
    if config.ip_range is None:
        raise ValueError("managementCluster.ipRange is required to build the management cluster")
    cidr = networks.management.cidr
    counts = {CONTROL_PLANE: config.control_planes.count, WORKER: config.workers.count}
    needed = sum(counts.values())
    if config.ip_range.size < needed:
        raise ValueError(
            f"managementCluster.ipRange holds {config.ip_range.size} addresses; {needed} VMs need one each"
        )
    weighted = [(n.name, n.weight or 1) for n in nodes]
    planned: list[ClusterNode] = []
    offset = 0
    roles: tuple[tuple[Role, str], ...] = ((CONTROL_PLANE, "cp"), (WORKER, "worker"))
    for role, short in roles:
        placement = spread_over_nodes(counts[role], weighted)
        for index, proxmox_node in enumerate(placement):
            address = config.ip_range.start + offset
            if address not in cidr:
                raise ValueError(f"address {address} is outside networks.management.cidr {cidr}")
            planned.append(
                ClusterNode(
                    name=f"{cluster_name}-{short}-{index + 1}",
                    role=role,
                    index=index,
                    address=str(address),
                    prefix_length=cidr.prefixlen,
                    proxmox_node=proxmox_node,
                )
            )
            offset += 1
    return tuple(planned)


# --------------------------------------------------------------------------------------------------
# Args
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ManagementClusterArgs:
    """Inputs of ManagementCluster. Plain values except the template VMID and the two secrets."""

    config: ManagementClusterConfig
    """The ``managementCluster`` section: external flag, sizes, ranges, endpoint, CIDRs, SSH user/keys."""

    networks: NetworksConfig
    """Node networks: management (net0), optional data (net1) and storage (net2)."""

    nodes: Sequence[NodeConfig] = ()
    """Proxmox nodes the VMs may run on, in placement order (weights apply)."""

    kubernetes_version: str = DEFAULT_VERSIONS.kubernetes
    """Exact Kubernetes release installed by kubeadm (>= v1.31)."""

    template_vmid: pulumi.Input[int] | None = None
    """VMID of the template to clone (give this or ``template_tags``)."""

    template_tags: Sequence[str] = ()
    """Tags that select the template to clone."""

    ssh_private_key: pulumi.Input[str] | None = None
    """Private key for the kubeadm bootstrap over SSH (secret; required when ``bootstrap``)."""

    external_kubeconfig: pulumi.Input[str] | None = None
    """Admin kubeconfig (secret) of a cluster bootstrapped elsewhere: one you bring (``config.external``)
    or the one on these VMs (``bootstrap=False``)."""

    bootstrap: bool = True
    """Run kubeadm over SSH. False: the VMs are bootstrapped elsewhere (``external_kubeconfig``) or
    nothing is applied (``render_dir``)."""

    render_dir: str | None = None
    """Render Kubernetes manifests to this directory instead of applying them."""

    cluster_name: str = "mgmt"
    """Cluster name: VM name prefix, kubeadm ``clusterName``, default provider identifier."""

    cluster_identifier: str | None = None
    """Provider ``cluster_identifier`` (plain, known at preview). Default: ``cluster_name``, or
    ``<cluster_name>-external`` for a cluster you bring (switching between them is a new cluster)."""

    storage: str | None = None
    """Storage of the cloned disks (default: the template's)."""

    pool: str | None = None
    """Proxmox resource pool of the VMs."""

    boot_disk_slot: str = "scsi0"
    """Disk slot of the template's boot disk, grown to the configured size."""

    vip_interface: str = "ens18"
    """Interface kube-vip announces the endpoint on (net0 of a virtio VM is ``ens18``)."""

    kube_vip_image: str = KUBE_VIP_IMAGE
    """kube-vip image, pinned."""

    audit_log: AuditLogSettings = field(default_factory=AuditLogSettings)
    """Rotation of the API server audit log."""

    join_token_ttl: str = "2h"
    """Lifetime of the bootstrap token minted for joins."""

    ssh_dial_error_limit: int = 40
    """SSH connection attempts before a command fails (VMs may still be booting)."""

    depends_on: Sequence[pulumi.Resource] = ()
    """Resources the VMs wait for (template, pool, API token, the security groups ...)."""

    security_groups: Mapping[str, str] = field(default_factory=dict)
    """Security group names by network (``management``, ``data``, ``storage``), e.g.
    ``ProxmoxCluster.security_group_names``: each VM binds a network's group to the NIC on that network
    (``net0``, ``net1``, ``net2``) and enables its firewall with ``policy_in=DROP``. Every NIC a VM gets
    needs its group then (a NIC without one would drop all inbound traffic). Empty: the VMs' firewall is
    not managed. The names are plain strings: put the group resources in ``depends_on`` so that they
    exist before a VM binds them."""

    def __post_init__(self) -> None:
        require_plain_identifier(self.cluster_name)
        if self.cluster_identifier is not None:
            require_plain_identifier(self.cluster_identifier)
        if self.render_dir is not None and not self.render_dir.strip():
            raise ValueError("render_dir must be a directory path or None")
        if self.config.external:
            if self.external_kubeconfig is None and self.render_dir is None:
                raise ValueError(
                    "managementCluster.external needs the secret managementKubeconfig (or render_dir to render)"
                )
            return
        self._check_security_groups()
        if not self.bootstrap and self.render_dir is None and self.external_kubeconfig is None:
            raise ValueError(
                "managementCluster.bootstrap: external needs the secret managementKubeconfig "
                "(or render_dir to render manifests)"
            )
        if self.bootstrap and self.external_kubeconfig is not None:
            raise ValueError("give external_kubeconfig only for a cluster bootstrapped elsewhere (bootstrap=False)")
        if (self.template_vmid is None) == (not self.template_tags):
            raise ValueError("give exactly one of template_vmid or template_tags")
        if not self.nodes:
            raise ValueError("no Proxmox node to place the management cluster's VMs on")
        if self.config.control_plane_endpoint is None:
            raise ValueError("managementCluster.controlPlaneEndpoint (the kube-vip address) is required")
        if self.bootstrap:
            if self.ssh_private_key is None:
                raise ValueError("the kubeadm bootstrap over SSH needs the secret sshPrivateKey")
            if not self.config.ssh_public_keys:
                raise ValueError("managementCluster.sshPublicKeys needs the public key of sshPrivateKey")
        self.cluster_settings()  # validates version, endpoint and CIDRs
        plan_nodes(cluster_name=self.cluster_name, config=self.config, networks=self.networks, nodes=self.nodes)

    def _check_security_groups(self) -> None:
        if not self.security_groups:
            return
        unknown = sorted(set(self.security_groups) - set(NIC_OF_NETWORK))
        if unknown:
            raise ValueError(f"security_groups: unknown networks {unknown}; known: {sorted(NIC_OF_NETWORK)}")
        for network in self.nic_networks().values():
            if network not in self.security_groups:
                raise ValueError(
                    f"security_groups has no group for the {network} network ({NIC_OF_NETWORK[network]}): "
                    "behind policy_in=DROP that NIC would drop all inbound traffic"
                )

    def nic_networks(self) -> dict[str, str]:
        """NIC slot -> network of every NIC a VM gets: ``net0`` management, ``net1`` data, ``net2`` storage."""
        present = {
            "management": True,
            "data": self.networks.data is not None,
            "storage": self.networks.storage is not None,
        }
        return {slot: network for network, slot in NIC_OF_NETWORK.items() if present[network]}

    def firewall(self) -> dict[str, Any] | None:
        """The ``firewall`` input of every VM: each NIC's network group, inbound DROP; None without groups."""
        if not self.security_groups:
            return None
        groups = {slot: [self.security_groups[network]] for slot, network in self.nic_networks().items()}
        return {"enabled": True, "policy_in": "DROP", "policy_out": "ACCEPT", "groups": groups}

    @property
    def identifier(self) -> str:
        """The provider's ``cluster_identifier``."""
        if self.cluster_identifier is not None:
            return self.cluster_identifier
        return f"{self.cluster_name}-external" if self.config.external else self.cluster_name

    def cluster_settings(self) -> ClusterSettings:
        """What every kubeadm node agrees on (not for an external cluster)."""
        endpoint = self.config.control_plane_endpoint
        if endpoint is None:
            raise ValueError("managementCluster.controlPlaneEndpoint is required")
        return ClusterSettings(
            cluster_name=self.cluster_name,
            kubernetes_version=self.kubernetes_version,
            control_plane_host=str(endpoint),
            pod_subnet=str(self.config.pod_cidr),
            service_subnet=str(self.config.service_cidr),
            kube_proxy_replacement=self.config.kube_proxy_replacement,
            schedulable_control_planes=self.config.workers.count == 0,
            audit=self.audit_log,
        )

    @classmethod
    def from_stack(
        cls,
        cfg: StackConfig,
        secrets: StackSecrets,
        *,
        cluster_name: str = "mgmt",
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> ManagementClusterArgs:
        """Args from the validated stack config: ``localRender`` renders, ``bootstrap`` picks who runs kubeadm."""
        mc = cfg.management_cluster
        render_dir = cfg.local_render
        kubeadm = render_dir is None and not mc.external and mc.bootstrap == "kubeadm"
        common: dict[str, Any] = {
            "config": mc,
            "networks": cfg.networks,
            "kubernetes_version": cfg.versions.kubernetes,
            "render_dir": render_dir,
            "bootstrap": kubeadm,
            "cluster_name": cluster_name,
            "depends_on": tuple(depends_on),
        }
        if mc.external:
            return cls(**common, external_kubeconfig=secrets.management_kubeconfig)
        template_name = cfg.resolve_template(mc.template)
        template = cfg.templates.get(template_name)
        if template is None:
            raise ValueError(f"managementCluster: template {template_name!r} is not declared in templates")
        allowed = set(cfg.management_nodes())
        return cls(
            **common,
            nodes=tuple(n for n in cfg.nodes if n.name in allowed),
            template_vmid=template.vmid,
            template_tags=() if template.vmid is not None else template.tags,
            ssh_private_key=secrets.ssh_private_key if kubeadm else None,
            external_kubeconfig=None if kubeadm or render_dir is not None else secrets.management_kubeconfig,
        )


# --------------------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------------------


class ManagementCluster(pulumi.ComponentResource):
    """The management cluster: VMs + kubeadm over SSH (or an existing cluster) + its kubernetes.Provider."""

    provider: kubernetes.Provider | None
    """The explicit provider every platform component uses."""

    kubeconfig: pulumi.Output[str] | None
    """Admin kubeconfig (secret); None in render mode."""

    ready: pulumi.Output[bool]
    """Resolves once the cluster is usable: after the last join and the kubeconfig read."""

    api_server_host: str | None
    """The control-plane endpoint host (kube-vip address); None for a cluster you bring."""

    api_server_port: int
    """Port of the control-plane endpoint."""

    api_endpoint: pulumi.Output[str]
    """``https://<host>:<port>`` of the API."""

    nodes: tuple[ClusterNode, ...]
    """Planned VMs (empty for a cluster you bring), known at preview."""

    vms: dict[str, ProxmoxVm]
    """The VM resources by VM name."""

    control_planes: pulumi.Output[list[dict[str, Any]]]
    """Control-plane VMs: name, vmid, node, ip."""

    workers: pulumi.Output[list[dict[str, Any]]]
    """Worker VMs: name, vmid, node, ip."""

    def __init__(self, name: str, args: ManagementClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:cluster:ManagementCluster", name, None, opts)
        self._name = name
        self._args = args
        self.cluster_identifier = args.identifier
        self.api_server_port = 6443
        self.vms = {}
        self.kubeconfig = None
        if args.config.external:
            self.nodes = ()
            self.api_server_host = None
            self._build_external()
        else:
            self.nodes = plan_nodes(
                cluster_name=args.cluster_name, config=args.config, networks=args.networks, nodes=args.nodes
            )
            self.api_server_host = str(args.config.control_plane_endpoint)
            self.api_endpoint = pulumi.Output.from_input(f"https://{self.api_server_host}:{self.api_server_port}")
            for node in self.nodes:
                self.vms[node.name] = self._vm(node)
            if args.bootstrap:
                self._bootstrap()
            elif args.render_dir is not None:
                self._render_only()
            else:
                self._bootstrapped_elsewhere()
        self.control_planes = self._vm_info(CONTROL_PLANE)
        self.workers = self._vm_info(WORKER)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "apiEndpoint": self.api_endpoint,
                "clusterIdentifier": self.cluster_identifier,
                "controlPlanes": self.control_planes,
                "workers": self.workers,
                "ready": self.ready,
            }
        )

    # ----------------------------------------------------------------------------- modes

    def _build_external(self) -> None:
        args = self._args
        opts = pulumi.ResourceOptions(parent=self)
        if args.render_dir is not None:
            self.provider = cluster_provider(
                f"{self._name}-k8s", cluster_identifier=self.cluster_identifier, render_dir=args.render_dir, opts=opts
            )
        else:
            assert args.external_kubeconfig is not None  # checked in ManagementClusterArgs
            kubeconfig: pulumi.Output[str] = pulumi.Output.secret(args.external_kubeconfig)
            self.kubeconfig = kubeconfig
            self.provider = cluster_provider(
                f"{self._name}-k8s", cluster_identifier=self.cluster_identifier, kubeconfig=kubeconfig, opts=opts
            )
        if args.external_kubeconfig is not None:
            # the server URL is no credential: expose it in the clear
            server = pulumi.Output.from_input(args.external_kubeconfig).apply(kubeconfig_server)
            self.api_endpoint = pulumi.Output.unsecret(server)
        else:
            self.api_endpoint = pulumi.Output.from_input("")
        self.ready = pulumi.Output.from_input(True)

    def _render_only(self) -> None:
        render_dir = self._args.render_dir
        assert render_dir is not None  # checked in ManagementClusterArgs
        self.ready = pulumi.Output.all(*(vm.id for vm in self.vms.values())).apply(lambda _: True)
        self.provider = cluster_provider(
            f"{self._name}-k8s",
            cluster_identifier=self.cluster_identifier,
            render_dir=render_dir,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.vms.values())),
        )

    def _bootstrapped_elsewhere(self) -> None:
        kubeconfig_input = self._args.external_kubeconfig
        assert kubeconfig_input is not None  # checked in ManagementClusterArgs
        vms = list(self.vms.values())
        kubeconfig: pulumi.Output[str] = pulumi.Output.secret(kubeconfig_input)
        self.kubeconfig = kubeconfig
        # The API is where the kubeconfig says (the server URL is no credential: expose it in the clear).
        self.api_endpoint = pulumi.Output.unsecret(kubeconfig.apply(kubeconfig_server))
        self.ready = pulumi.Output.all(*(vm.id for vm in vms)).apply(lambda _: True)
        # Nothing can be applied before the cluster's machines exist.
        self.provider = cluster_provider(
            f"{self._name}-k8s",
            cluster_identifier=self.cluster_identifier,
            kubeconfig=kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=vms),
        )

    def _bootstrap(self) -> None:
        args = self._args
        cluster = args.cluster_settings()
        control_planes = [n for n in self.nodes if n.role == CONTROL_PLANE]
        workers = [n for n in self.nodes if n.role == WORKER]
        first = control_planes[0]
        prepared = {node.name: self._prepare(node) for node in self.nodes}

        init = self._command(
            "init",
            first,
            render_script(
                "kubeadm-init.sh",
                {
                    "NODE_NAME": first.name,
                    "KUBEADM_CONFIG": init_configuration(cluster, _identity(first)),
                    "KUBE_VIP_INIT_MANIFEST": self._kube_vip(_SUPER_ADMIN_CONF),
                    "KUBE_VIP_MANIFEST": self._kube_vip(_ADMIN_CONF),
                },
            ),
            depends_on=[prepared[first.name]],
        )
        joiners = [*control_planes[1:], *workers]
        credentials_cmd = self._command(
            "join-credentials",
            first,
            render_script(
                "join-credentials.sh",
                {
                    "CLUSTER_NAME": args.cluster_name,
                    "TOKEN_TTL": args.join_token_ttl,
                    "CERTIFICATE_KEY": "true" if len(control_planes) > 1 else "false",
                },
            ),
            depends_on=[init],
            secret_stdout=True,
            extra_triggers=[init.id, sorted(n.name for n in joiners)],
        )
        stdout: pulumi.Output[str] = pulumi.Output.secret(credentials_cmd.stdout)
        credentials = stdout.apply(JoinCredentials.parse)

        joins: list[remote.Command] = []
        previous_cp: remote.Command | None = None
        for node in joiners:
            is_cp = node.role == CONTROL_PLANE
            after = [init, credentials_cmd, prepared[node.name]]
            if is_cp and previous_cp is not None:
                after.append(previous_cp)  # control planes join one at a time
            join = self._command(
                f"join-{node.name}",
                node,
                credentials.apply(self._join_script(cluster, node)),
                depends_on=after,
            )
            joins.append(join)
            if is_cp:
                previous_cp = join

        kubeconfig_cmd = self._command(
            "kubeconfig",
            first,
            None,
            create=f"sudo -n cat {_ADMIN_CONF}",
            depends_on=[init, *joins],
            secret_stdout=True,
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)
        self.provider = cluster_provider(
            f"{self._name}-k8s",
            cluster_identifier=self.cluster_identifier,
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[kubeconfig_cmd, *joins]),
        )
        self.ready = pulumi.Output.all(kubeconfig_cmd.id, *(j.id for j in joins)).apply(lambda _: True)

    # ----------------------------------------------------------------------------- children

    def _vm(self, node: ClusterNode) -> ProxmoxVm:
        args = self._args
        cfg = args.config
        size = cfg.control_planes if node.role == CONTROL_PLANE else cfg.workers
        mgmt = args.networks.management
        nics: dict[str, dict[str, Any]] = {"net0": _nic(mgmt.bridge, mgmt.vlan, mgmt.mtu)}
        for slot, extra in (("net1", args.networks.data), ("net2", args.networks.storage)):
            if extra is not None:
                nics[slot] = _nic(extra.bridge, extra.vlan, extra.mtu)
        return ProxmoxVm(
            f"{self._name}-{node.name}",
            ProxmoxVmArgs(
                name=node.name,
                node=node.proxmox_node,
                template_vmid=args.template_vmid,
                template_tags=list(args.template_tags),
                storage=args.storage,
                vmid_range={"start": cfg.vmid_range.start, "end": cfg.vmid_range.end},
                description=f"{node.role} {node.index + 1} of Kubernetes management cluster {args.cluster_name}",
                pool=args.pool,
                tags=["k8s", "mgmt", node.role],
                cpu={"cores": size.cores},
                memory_mib=size.memory_mib,
                disks={args.boot_disk_slot: {"size_gib": size.disk_gib}},
                nics=nics,
                firewall=args.firewall(),
                cloud_init={
                    "user": cfg.ssh_user,
                    "ssh_keys": list(cfg.ssh_public_keys),
                    "ip_configs": {
                        "net0": {"ipv4": f"{node.address}/{node.prefix_length}", "gateway4": str(mgmt.gateway)}
                    },
                    "dns_servers": [str(s) for s in mgmt.dns_servers],
                },
                on_boot=True,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on) or None,
                # a new template (promotion) must not replace every node of the running cluster at
                # once: it applies to VMs created from now on; roll a VM with `pulumi up --replace`
                ignore_changes=["template_vmid", "template_tags"],
            ),
        )

    def _prepare(self, node: ClusterNode) -> remote.Command:
        params = {
            "NODE_NAME": node.name,
            "NODE_ROLE": node.role,
            "KUBERNETES_VERSION": self._args.kubernetes_version,
        }
        if node.role == CONTROL_PLANE:
            params["AUDIT_POLICY"] = audit_policy()
        return self._command(f"prepare-{node.name}", node, render_script("prepare-node.sh", params))

    def _command(
        self,
        suffix: str,
        node: ClusterNode,
        script: pulumi.Input[str] | None,
        *,
        create: str = _REMOTE_SHELL,
        depends_on: Sequence[pulumi.Resource] = (),
        secret_stdout: bool = False,
        extra_triggers: Sequence[Any] = (),
    ) -> remote.Command:
        vm = self.vms[node.name]
        key = self._args.ssh_private_key
        assert key is not None  # checked in ManagementClusterArgs when bootstrap is on
        return remote.Command(
            f"{self._name}-{suffix}",
            connection=remote.ConnectionArgs(
                host=node.address,
                user=self._args.config.ssh_user,
                private_key=pulumi.Output.secret(key),
                dial_error_limit=self._args.ssh_dial_error_limit,
                per_dial_timeout=15,
            ),
            create=create,
            stdin=script,
            triggers=[vm.id, *extra_triggers],
            add_previous_output_in_env=False,
            logging=remote.Logging.STDERR if secret_stdout else remote.Logging.STDOUT_AND_STDERR,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[vm, *depends_on],
                additional_secret_outputs=["stdout"] if secret_stdout else None,
            ),
        )

    # ----------------------------------------------------------------------------- helpers

    def _kube_vip(self, kubeconfig: str) -> str:
        args = self._args
        return kube_vip_manifest(
            address=str(args.config.control_plane_endpoint),
            interface=args.vip_interface,
            image=args.kube_vip_image,
            port=self.api_server_port,
            kubeconfig=kubeconfig,
        )

    def _join_script(self, cluster: ClusterSettings, node: ClusterNode) -> Callable[[JoinCredentials], str]:
        """The join script of ``node``, rendered once the (secret) credentials are known."""
        is_cp = node.role == CONTROL_PLANE
        kube_vip = self._kube_vip(_ADMIN_CONF) if is_cp else None

        def render(creds: JoinCredentials) -> str:
            params = {
                "NODE_NAME": node.name,
                "NODE_ROLE": node.role,
                "KUBEADM_CONFIG": join_configuration(cluster, _identity(node), creds, control_plane=is_cp),
            }
            if kube_vip is not None:
                params["KUBE_VIP_MANIFEST"] = kube_vip
            return render_script("kubeadm-join.sh", params)

        return render

    def placement(self) -> dict[str, str]:
        """Kubernetes node name -> Proxmox node (e.g. for the CSI topology labels), known at preview."""
        return {n.name: n.proxmox_node for n in self.nodes}

    def _vm_info(self, role: Role) -> pulumi.Output[list[dict[str, Any]]]:
        entries = [_vm_entry(n, self.vms[n.name]) for n in self.nodes if n.role == role]
        return pulumi.Output.all(*entries).apply(list)


def _vm_entry(node: ClusterNode, vm: ProxmoxVm) -> pulumi.Output[dict[str, Any]]:
    def entry(values: dict[str, Any]) -> dict[str, Any]:
        return {"name": node.name, "vmid": values["vmid"], "node": values["node"], "ip": node.address}

    return pulumi.Output.all(vmid=vm.vmid, node=vm.current_node).apply(entry)


def _identity(node: ClusterNode) -> NodeIdentity:
    return NodeIdentity(name=node.name, address=node.address)


def _nic(bridge: str, vlan: int | None, mtu: int) -> dict[str, Any]:
    nic: dict[str, Any] = {"bridge": bridge, "model": "virtio", "mtu": mtu}
    if vlan is not None:
        nic["vlan"] = vlan
    return nic
