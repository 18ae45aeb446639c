"""ProxmoxCluster: Proxmox VE prepared for the Kubernetes platform, as one component.

What it creates (every child is named ``f"{name}-..."`` with ``parent=self``):

* **Resource pools** (``ProxmoxPool``): ``<prefix>-platform`` for the management cluster's VMs,
  ``<prefix>-templates`` for the templates, and ``<prefix>-t-<tenant>`` per tenant for the worker VMs
  CAPMOX creates. Pool ACLs are what keep each controller inside its own VMs.
* **VM templates**: a template declared with ``cloudImageUrl`` is built through the API
  (``ProxmoxTemplate``: download-url, create with ``import-from``, convert) into the template pool,
  with ``net0`` on the management network and ``firewall=1``; built templates are *retained* on
  ``pulumi destroy`` by default (``retain_templates_on_delete``), since clones outside this stack may
  still use them. A template declared by ``vmid`` or by ``tags`` is only *referenced*: no resource,
  validated when the program runs (at preview), structurally always and against the live cluster when
  the caller passes ``template_lookup``.
* **Least-privilege users and API tokens** for CAPMOX, the Proxmox CSI driver and a read-only metrics
  exporter, with the roles and ACL grants of ``providers/proxmox/privileges.py`` (custom role ids are prefixed
  with ``<prefix>-`` so that two stacks on one Proxmox cluster never share, adopt and then delete each
  other's roles). Tokens are privilege-separated (``privsep=1``, PVE's default), so every grant goes
  to the user **and** the token: a privsep token holds only the intersection of both.
* **Firewall security groups** for the management, data and storage networks (see
  :func:`management_rules` and :func:`own_cidr_rules`).

Firewall model (what the groups do and do not do): a security group filters nothing by itself. A VM
uses one through a ``type=group`` rule on its NIC, its own firewall ``enable=1`` with
``policy_in=DROP`` (the default inbound policy: everything the groups do not accept is dropped), and
the NIC created with ``firewall=1``. ``ProxmoxVm``'s ``firewall`` input does all three (rules first,
then the switch, so a VM is never cut off); the management cluster binds these groups to its VMs. The
**datacenter** firewall must also be enabled for any guest rule to act; this component does not switch
it on, because its host-level default policy can lock operators out of the Proxmox hosts themselves.
Outbound traffic is not filtered (``policy_out=ACCEPT``).

Dependency order: the pools come first (templates join the template pool at creation, and every ACL on
``/pool/<id>`` depends on its pool); a built template comes before anything that clones it: take
``templates[name].vmid`` (an Output of the template resource, so the dependency is implicit) and, to
be explicit, ``depends_on=cluster.clone_dependencies(name)``.

The component reads no Pulumi config: it takes the typed parts of ``StackConfig`` it needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any, Final, Literal

import pulumi

from config import NetworksConfig, NodeConfig, ProxmoxConfig, TemplateConfig, TenantConfig
from providers.dynamic.access import (
    ProxmoxAcl,
    ProxmoxAclArgs,
    ProxmoxApiToken,
    ProxmoxApiTokenArgs,
    ProxmoxRole,
    ProxmoxRoleArgs,
    ProxmoxUser,
    ProxmoxUserArgs,
)
from providers.dynamic.firewall import ProxmoxSecurityGroup, ProxmoxSecurityGroupArgs
from providers.dynamic.pool import ProxmoxPool, ProxmoxPoolArgs
from providers.dynamic.template import ProxmoxTemplate, ProxmoxTemplateArgs
from providers.proxmox.firewall import FirewallRule, SecurityGroupSpec, check_address
from providers.proxmox.privileges import (
    AccessProfile,
    AclGrant,
    RoleDefinition,
    capmox_profile,
    csi_profile,
    is_builtin_role,
    metrics_exporter_profile,
)

__all__ = [
    "ApiCredentials",
    "ProxmoxCluster",
    "ProxmoxClusterArgs",
    "ProxmoxClusterError",
    "TemplateLookup",
    "TemplateRef",
    "check_templates",
    "management_rules",
    "own_cidr_rules",
    "prefixed_profile",
]

TemplateLookup = Callable[[], Sequence[Mapping[str, Any]]]
"""Returns the rows of ``GET /cluster/resources?type=vm`` (e.g. from a ``ProxmoxClient`` in ``__main__``)."""

CONSUMERS: Final = ("capmox", "csi", "metrics")
TOKEN_NAMES: Final[Mapping[str, str]] = {"capmox": "capi", "csi": "csi", "metrics": "metrics"}
GROUP_SUFFIXES: Final[Mapping[str, str]] = {"management": "mgmt", "data": "data", "storage": "storage"}
_PREFIX: Final = re.compile(r"[a-z][a-z0-9-]{0,9}")
_SLUG: Final = re.compile(r"[^A-Za-z0-9]+")


class ProxmoxClusterError(ValueError):
    """The arguments cannot produce a valid Proxmox layer; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("ProxmoxCluster: " + "; ".join(self.problems))


# --------------------------------------------------------------------------- firewall rules


def management_rules(
    cidr: IPv4Network | str,
    *,
    api_sources: Sequence[str] = (),
    control_plane_source: str | None = None,
) -> list[FirewallRule]:
    """Inbound rules of the management network's group, for a Kubernetes node running Kube-OVN + Cilium.

    * SSH 22 from the management CIDR (kubeadm bootstrap over SSH, operators);
    * the Kubernetes API 6443, Kamaji's konnectivity 8132 and the NodePort range from ``api_sources``
      (default: anywhere, since tenant workers and operators reach the management API and the tenant
      control planes, which Kamaji exposes as LoadBalancer or NodePort Services);
    * kubelet 10250 within the cluster (the management CIDR);
    * etcd 2379-2380 between control planes (``control_plane_source``, default the management CIDR);
    * Kube-OVN's Geneve tunnels (UDP 6081) and OVN databases (TCP 6641-6644), Cilium's health checks
      (TCP 4240), MetalLB's memberlist (TCP/UDP 7946) and ICMP echo, all from the management CIDR.

    Pod and service traffic travels inside the Geneve tunnels, so it needs no rule of its own here.
    """
    mgmt = str(cidr)
    api = ",".join(api_sources) if api_sources else None
    etcd = control_plane_source or mgmt

    def tcp(port: str, source: str | None, why: str) -> FirewallRule:
        return FirewallRule(proto="tcp", dport=port, source=source, comment=why)

    return [
        tcp("22", mgmt, "SSH from the management network"),
        tcp("6443", api, "Kubernetes API (management cluster, Kamaji tenant control planes)"),
        tcp("8132", api, "Konnectivity of Kamaji tenant control planes"),
        tcp("10250", mgmt, "kubelet API within the cluster"),
        tcp("2379:2380", etcd, "etcd client and peer traffic between control planes"),
        tcp("30000:32767", api, "NodePort services (tenant control planes when kamaji.serviceType is NodePort)"),
        FirewallRule(proto="udp", dport="6081", source=mgmt, comment="Kube-OVN Geneve tunnels"),
        tcp("6641:6644", mgmt, "OVN northbound/southbound databases and their Raft"),
        tcp("4240", mgmt, "Cilium health checks"),
        tcp("7946", mgmt, "MetalLB memberlist"),
        FirewallRule(proto="udp", dport="7946", source=mgmt, comment="MetalLB memberlist"),
        FirewallRule(proto="icmp", icmp_type="echo-request", source=mgmt, comment="ping within the network"),
    ]


def own_cidr_rules(cidr: IPv4Network | str, network: str) -> list[FirewallRule]:
    """Inbound rules of a data or storage network's group: everything from its own CIDR, nothing else."""
    return [FirewallRule(source=str(cidr), comment=f"any traffic from the {network} network itself")]


# --------------------------------------------------------------------------- access profiles


def prefixed_profile(profile: AccessProfile, prefix: str) -> AccessProfile:
    """The profile with every custom role id prefixed ``<prefix>-`` (grants renamed to match)."""
    rename = {role.roleid: f"{prefix}-{role.roleid}" for role in profile.roles}
    return AccessProfile(
        name=profile.name,
        pve_major=profile.pve_major,
        roles=tuple(RoleDefinition(rename[r.roleid], r.privileges, r.purpose) for r in profile.roles),
        grants=tuple(AclGrant(g.path, rename.get(g.roleid, g.roleid), g.propagate, g.purpose) for g in profile.grants),
        notes=profile.notes,
    )


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class TemplateRef:
    """A template the platform clones from: built by this component, or referenced."""

    name: str
    """The key under ``templates`` in the stack config."""
    vmid: pulumi.Input[int] | None
    """VMID: an Output of the template resource when built, the declared VMID when referenced by
    VMID, None when referenced by tags only."""
    node: str | None
    """Node holding the template (None when referenced by tags)."""
    tags: tuple[str, ...]
    """Tags that select it (referenced by tags; a built template is tagged with its name)."""
    resource: ProxmoxTemplate | None = None
    """The resource when built here, else None."""

    @property
    def built(self) -> bool:
        """True if this component builds the template."""
        return self.resource is not None


def check_templates(
    templates: Mapping[str, TemplateConfig],
    nodes: Sequence[NodeConfig],
    guests: Sequence[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Problems with the declared templates; with ``guests`` (``/cluster/resources`` rows) also live ones.

    Structural: exactly one source each (``cloudImageUrl`` with ``vmid``, ``node`` and ``storage``;
    ``vmid`` with ``node``; or ``tags``), known nodes and storages. Live: a referenced VMID exists, is a
    template and sits on the declared node; referenced tags select at least one template; the VMID of a
    template to build is not taken by a VM that is not a template.
    """
    problems: list[str] = []
    storages = {n.name: set(n.storages) for n in nodes}
    for name, tpl in templates.items():
        where = f"templates.{name}"
        if tpl.cloud_image_url is not None:
            for key, value in (("vmid", tpl.vmid), ("node", tpl.node), ("storage", tpl.storage)):
                if value is None:
                    problems.append(f"{where}.{key}: required with cloudImageUrl")
            if tpl.tags:
                problems.append(f"{where}.tags: cannot be combined with cloudImageUrl")
        elif tpl.vmid is not None:
            if tpl.node is None:
                problems.append(f"{where}.node: required with vmid")
            if tpl.tags:
                problems.append(f"{where}.tags: cannot be combined with vmid")
        elif not tpl.tags:
            problems.append(f"{where}: needs one source: cloudImageUrl (built), vmid + node, or tags")
        if tpl.node is not None and tpl.node not in storages:
            problems.append(f"{where}.node: unknown node {tpl.node!r} (nodes: {sorted(storages)})")
        elif tpl.node is not None and tpl.storage is not None and tpl.storage not in storages[tpl.node]:
            problems.append(f"{where}.storage: {tpl.storage!r} is not a storage of node {tpl.node}")
    if guests is None or problems:
        return problems
    vms = {int(g["vmid"]): g for g in guests if g.get("type", "qemu") == "qemu" and "vmid" in g}
    for name, tpl in templates.items():
        where = f"templates.{name}"
        found = vms.get(tpl.vmid) if tpl.vmid is not None else None
        is_template = found is not None and str(found.get("template", 0)) == "1"
        if tpl.cloud_image_url is not None:
            if found is not None and not is_template:
                problems.append(f"{where}.vmid: VMID {tpl.vmid} is taken by the VM {found.get('name')!r}")
        elif tpl.vmid is not None:
            if found is None:
                problems.append(f"{where}.vmid: no VM {tpl.vmid} in the cluster")
            elif not is_template:
                problems.append(f"{where}.vmid: VM {tpl.vmid} is not a template")
            elif str(found.get("node")) != tpl.node:
                problems.append(f"{where}.node: template {tpl.vmid} is on {found.get('node')}, not {tpl.node}")
        else:
            wanted = {t.lower() for t in tpl.tags}
            matches = [
                vmid
                for vmid, g in vms.items()
                if str(g.get("template", 0)) == "1"
                and wanted <= {t for t in str(g.get("tags", "")).lower().split(";") if t}
            ]
            if not matches:
                problems.append(f"{where}.tags: no template carries all of {sorted(wanted)}")
    return problems


# --------------------------------------------------------------------------- the component


@dataclass(frozen=True)
class ApiCredentials:
    """A controller's Proxmox identity: user, token, and what to hand to the controller."""

    user: ProxmoxUser
    """The Proxmox user (``<prefix>-<consumer>@<realm>``)."""
    token: ProxmoxApiToken
    """Its API token (privilege separated)."""
    token_id: pulumi.Output[str]
    """Full token id ``user@realm!name`` (CAPMOX ``PROXMOX_TOKEN``, CSI ``token_id``)."""
    token_secret: pulumi.Output[str]
    """The token's secret UUID, a secret Output (CAPMOX ``PROXMOX_SECRET``, CSI ``token_secret``)."""
    url: str
    """The API URL in the form this controller wants (CAPMOX: without ``/api2/json``; CSI and the
    exporter: with it)."""
    acls: tuple[ProxmoxAcl, ...] = ()
    """The ACL entries granted to the user and the token."""


@dataclass(kw_only=True)
class ProxmoxClusterArgs:
    """Inputs of ProxmoxCluster: typed parts of the stack config, plus naming and policy knobs."""

    proxmox: ProxmoxConfig
    """The Proxmox API (``endpoint`` for CAPMOX, ``api_url`` for CSI and the exporter)."""

    nodes: Sequence[NodeConfig]
    """Nodes the platform may use (their storages receive VM disks)."""

    templates: Mapping[str, TemplateConfig] = field(default_factory=dict)
    """Templates by name: built from ``cloud_image_url`` or referenced by ``vmid``/``tags``."""

    networks: NetworksConfig
    """Node networks; one security group each (management always, data and storage if declared)."""

    tenants: Sequence[TenantConfig] = ()
    """Tenants: one pool each, and CAPMOX's SDN grants on their worker networks."""

    prefix: str = "k8s"
    """Prefix of every pool, user, custom role and security group (1-10 lowercase characters).
    Give each stack that shares a Proxmox cluster its own."""

    realm: str = "pve"
    """Realm of the users created here (the built-in ``pve`` realm)."""

    pve_major_version: Literal[8, 9] = 9
    """PVE major version: selects the privilege names (``VM.Monitor`` on 8, ``VM.GuestAgent.*`` on 9)."""

    sdn_zone: str = "localnetwork"
    """SDN zone of the bridges in ACL paths (``localnetwork`` for plain Linux bridges)."""

    image_storage: str = "local"
    """File storage with the ``import`` content type that receives cloud images for template builds."""

    iso_storage: str = "local"
    """Storage where CAPMOX uploads its cloud-init ISOs (granted PVEDatastoreAdmin to CAPMOX)."""

    keep_template_images: bool = False
    """Keep downloaded cloud images after a template build."""

    retain_templates_on_delete: bool = True
    """Leave built templates in Proxmox on ``pulumi destroy`` (clones may still use them)."""

    api_source_cidrs: Sequence[str] = ()
    """Who may reach the Kubernetes API (6443) and konnectivity (8132); empty = anywhere."""

    control_plane_source: str | None = None
    """Addresses allowed to reach etcd (2379-2380): a CIDR, a list or a range; default the management CIDR."""

    extra_management_rules: Sequence[FirewallRule] = ()
    """Further inbound rules for the management group, appended after the built-in ones."""

    csi_scope: Literal["documented", "platform-pool"] = "documented"
    """``documented``: the CSI role on ``/`` as the driver's docs say; ``platform-pool``: narrowed to the
    platform pool and ``csi_storages`` (our derivation, check it on a real cluster first)."""

    csi_storages: Sequence[str] = ()
    """Storages that hold PVs, for ``csi_scope="platform-pool"``."""

    token_rotation: str | None = None
    """Change this string to regenerate every token's secret in place (the old secrets stop working)."""

    template_lookup: TemplateLookup | None = None
    """Optional live check of referenced templates at preview (rows of ``/cluster/resources?type=vm``)."""


class ProxmoxCluster(pulumi.ComponentResource):
    """Proxmox VE prepared for Kubernetes: pools, templates, API users and tokens, firewall groups."""

    platform_pool: ProxmoxPool
    """Pool of the management cluster's VMs."""
    template_pool: ProxmoxPool
    """Pool of the templates (CAPMOX clones from it)."""
    tenant_pools: dict[str, ProxmoxPool]
    """Pool of each tenant's worker VMs, by tenant name."""
    pool_ids: dict[str, str]
    """Pool ids: ``platform``, ``templates`` and ``tenant:<name>``."""
    templates: dict[str, TemplateRef]
    """Every declared template, built or referenced, by name."""
    roles: dict[str, ProxmoxRole]
    """Custom roles by role id."""
    capmox: ApiCredentials
    """CAPMOX's identity (PVEVMAdmin on the tenant pools, PVETemplateUser on the templates, ...)."""
    tenant_capmox: dict[str, ApiCredentials]
    """Per tenant, a CAPMOX identity limited to that tenant: PVEVMAdmin on its pool only, PVESDNUser on its
    own network segment only (plus the shared template, ISO and disk grants). A tenant's ProxmoxCluster
    uses it through ``credentialsRef``, so one tenant's token can never touch another tenant's VMs."""
    csi: ApiCredentials
    """The Proxmox CSI driver's identity."""
    metrics: ApiCredentials
    """The read-only metrics exporter's identity."""
    security_groups: dict[str, ProxmoxSecurityGroup]
    """Security groups by network (``management``, ``data``, ``storage``)."""
    security_group_names: dict[str, str]
    """Security group names by network, for the VMs' ``firewall`` input."""

    def __init__(self, name: str, args: ProxmoxClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        problems = _check_args(args)
        if problems:
            raise ProxmoxClusterError(problems)
        super().__init__("platform:proxmox:ProxmoxCluster", name, None, opts)
        p = args.prefix

        # ---------------------------------------------------------------- pools
        self.platform_pool = self._pool(name, "platform", f"{p}-platform", "VMs of the management cluster")
        self.template_pool = self._pool(name, "templates", f"{p}-templates", "VM templates of the platform")
        self.tenant_pools = {
            t.name: self._pool(name, f"tenant-{t.name}", f"{p}-t-{t.name}", f"worker VMs of tenant {t.name}")
            for t in args.tenants
        }
        self.pool_ids = {
            "platform": f"{p}-platform",
            "templates": f"{p}-templates",
            **{f"tenant:{t}": f"{p}-t-{t}" for t in self.tenant_pools},
        }
        pools_by_id: dict[str, ProxmoxPool] = {
            f"{p}-platform": self.platform_pool,
            f"{p}-templates": self.template_pool,
            **{f"{p}-t-{t}": pool for t, pool in self.tenant_pools.items()},
        }

        # ---------------------------------------------------------------- templates
        self.templates = {tname: self._template(name, tname, tpl, args) for tname, tpl in args.templates.items()}

        # ---------------------------------------------------------------- access
        profiles = {
            "capmox": self._capmox_profile(args),
            "csi": prefixed_profile(self._csi_profile(args), p),
            "metrics": prefixed_profile(metrics_exporter_profile(pve_major=args.pve_major_version), p),
        }
        self.roles = {}
        for profile in profiles.values():
            for role in profile.roles:
                if role.roleid not in self.roles:
                    self.roles[role.roleid] = ProxmoxRole(
                        f"{name}-role-{_slug(role.roleid)}",
                        ProxmoxRoleArgs(
                            roleid=role.roleid,
                            privileges=list(role.privileges),
                            pve_major_version=args.pve_major_version,
                        ),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
        urls = {"capmox": args.proxmox.endpoint, "csi": args.proxmox.api_url, "metrics": args.proxmox.api_url}
        creds = {
            consumer: self._credentials(name, consumer, profiles[consumer], urls[consumer], pools_by_id, args)
            for consumer in CONSUMERS
        }
        self.capmox, self.csi, self.metrics = creds["capmox"], creds["csi"], creds["metrics"]
        self.tenant_capmox = {
            t.name: self._credentials(
                name,
                f"tenant-{t.name}-capmox",
                self._tenant_capmox_profile(args, t),
                args.proxmox.endpoint,
                pools_by_id,
                args,
                userid=f"{p}-t-{t.name}-capmox@{args.realm}",
                tokenid=TOKEN_NAMES["capmox"],
            )
            for t in args.tenants
        }

        # ---------------------------------------------------------------- firewall
        nets = args.networks
        group_rules: dict[str, list[FirewallRule]] = {
            "management": [
                *management_rules(
                    nets.management.cidr,
                    api_sources=args.api_source_cidrs,
                    control_plane_source=args.control_plane_source,
                ),
                *args.extra_management_rules,
            ]
        }
        if nets.data is not None:
            group_rules["data"] = own_cidr_rules(nets.data.cidr, "data")
        if nets.storage is not None:
            group_rules["storage"] = own_cidr_rules(nets.storage.cidr, "storage")
        self.security_group_names = {net: f"{p}-{GROUP_SUFFIXES[net]}" for net in group_rules}
        self.security_groups = {
            net: ProxmoxSecurityGroup(
                f"{name}-fw-{net}",
                ProxmoxSecurityGroupArgs(
                    group=self.security_group_names[net],
                    comment=f"{net} network of the Kubernetes platform ({p})",
                    rules=[r.to_inputs() for r in rules],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for net, rules in group_rules.items()
        }

        self.register_outputs(
            {
                "poolIds": self.pool_ids,
                "templateVmids": {t: ref.vmid for t, ref in self.templates.items()},
                "securityGroups": self.security_group_names,
                **{f"{c}TokenId": creds[c].token_id for c in CONSUMERS},
                **{f"{c}TokenSecret": creds[c].token_secret for c in CONSUMERS},
            }
        )

    # ------------------------------------------------------------------ helpers

    def _pool(self, name: str, key: str, poolid: str, comment: str) -> ProxmoxPool:
        return ProxmoxPool(
            f"{name}-pool-{key}",
            ProxmoxPoolArgs(poolid=poolid, comment=f"{comment} (managed by Pulumi)"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _template(self, name: str, tname: str, tpl: TemplateConfig, args: ProxmoxClusterArgs) -> TemplateRef:
        if tpl.cloud_image_url is None:
            return TemplateRef(name=tname, vmid=tpl.vmid, node=tpl.node, tags=tuple(tpl.tags))
        assert tpl.node is not None and tpl.storage is not None  # checked in _check_args
        mgmt = args.networks.management
        resource = ProxmoxTemplate(
            f"{name}-template-{tname}",
            ProxmoxTemplateArgs(
                name=tname,
                node=tpl.node,
                image_url=tpl.cloud_image_url,
                image_checksum=tpl.cloud_image_checksum,
                vmid=tpl.vmid,
                image_storage=args.image_storage,
                storage=tpl.storage,
                bridge=mgmt.bridge,
                vlan=mgmt.vlan,
                tags=[tname],
                description=f"Kubernetes platform template {tname}, built from {tpl.cloud_image_url}",
                pool=self.template_pool.poolid,
                keep_image=args.keep_template_images,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.template_pool],
                retain_on_delete=args.retain_templates_on_delete,
            ),
        )
        return TemplateRef(name=tname, vmid=resource.vmid, node=tpl.node, tags=(tname,), resource=resource)

    def clone_dependencies(self, template: str) -> list[pulumi.Resource]:
        """Resources a clone of ``template`` must wait for (the template resource if built here)."""
        ref = self.templates[template]
        return [ref.resource] if ref.resource is not None else []

    def _capmox_profile(self, args: ProxmoxClusterArgs) -> AccessProfile:
        """CAPMOX's least-privilege guide, with one VM pool per tenant and SDN grants on tenant networks."""
        p = args.prefix
        storages = sorted({s for n in args.nodes for s in n.storages} - {args.iso_storage}) or [args.iso_storage]
        base = capmox_profile(
            vm_pool=f"{p}-platform",
            template_pool=f"{p}-templates",
            image_storages=storages,
            iso_storage=args.iso_storage,
            zone=args.sdn_zone,
            bridge=args.networks.management.bridge,
            pve_major=args.pve_major_version,
        )
        kept = [g for g in base.grants if not g.path.startswith(("/sdn/", f"/pool/{p}-platform"))]
        extra: list[AclGrant] = []
        for tenant in args.tenants:
            extra.append(AclGrant(f"/pool/{p}-t-{tenant.name}", "PVEVMAdmin", False, f"worker VMs of {tenant.name}"))
        segments = sorted({(t.network.bridge, t.network.vlan) for t in args.tenants}, key=lambda s: (s[0], s[1] or 0))
        for bridge, vlan in segments:
            path = f"/sdn/zones/{args.sdn_zone}/{bridge}" + (f"/{vlan}" if vlan is not None else "")
            extra.append(AclGrant(path, "PVESDNUser", False, "NICs of tenant workers"))
        for tname, tpl in sorted(args.templates.items()):
            if tpl.cloud_image_url is None and tpl.vmid is not None:
                extra.append(AclGrant(f"/vms/{tpl.vmid}", "PVETemplateUser", False, f"clone template {tname}"))
        profile = AccessProfile(
            name=base.name,
            pve_major=base.pve_major,
            roles=base.roles,
            grants=(*kept, *extra),
            notes=base.notes,
        )
        return prefixed_profile(profile, p)

    def _tenant_capmox_profile(self, args: ProxmoxClusterArgs, tenant: TenantConfig) -> AccessProfile:
        """CAPMOX's least-privilege guide for one tenant: its pool, its network segment, nothing of the others."""
        p = args.prefix
        storages = sorted({s for n in args.nodes for s in n.storages} - {args.iso_storage}) or [args.iso_storage]
        net = tenant.network
        base = capmox_profile(
            vm_pool=f"{p}-t-{tenant.name}",
            template_pool=f"{p}-templates",
            image_storages=storages,
            iso_storage=args.iso_storage,
            zone=args.sdn_zone,
            bridge=net.bridge,
            vlans=[net.vlan] if net.vlan is not None else [],
            pve_major=args.pve_major_version,
        )
        templates = [
            AclGrant(f"/vms/{tpl.vmid}", "PVETemplateUser", False, f"clone template {tname}")
            for tname, tpl in sorted(args.templates.items())
            if tpl.cloud_image_url is None and tpl.vmid is not None
        ]
        profile = AccessProfile(
            name=f"capmox-{tenant.name}",
            pve_major=base.pve_major,
            roles=base.roles,
            grants=(*base.grants, *templates),
            notes=base.notes,
        )
        return prefixed_profile(profile, p)

    def _csi_profile(self, args: ProxmoxClusterArgs) -> AccessProfile:
        if args.csi_scope == "platform-pool":
            return csi_profile(
                vm_pool=f"{args.prefix}-platform", storages=list(args.csi_storages), pve_major=args.pve_major_version
            )
        return csi_profile(pve_major=args.pve_major_version)

    def _credentials(
        self,
        name: str,
        consumer: str,
        profile: AccessProfile,
        url: str,
        pools_by_id: Mapping[str, ProxmoxPool],
        args: ProxmoxClusterArgs,
        *,
        userid: str | None = None,
        tokenid: str | None = None,
    ) -> ApiCredentials:
        userid = userid or f"{args.prefix}-{consumer}@{args.realm}"
        child = pulumi.ResourceOptions(parent=self)
        user = ProxmoxUser(
            f"{name}-{consumer}-user",
            ProxmoxUserArgs(userid=userid, comment=f"{consumer} of the Kubernetes platform (managed by Pulumi)"),
            opts=child,
        )
        token = ProxmoxApiToken(
            f"{name}-{consumer}-token",
            ProxmoxApiTokenArgs(
                userid=user.userid,
                tokenid=tokenid or TOKEN_NAMES[consumer],
                privsep=True,
                comment=f"{consumer} (managed by Pulumi)",
                rotate_trigger=args.token_rotation,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[user]),
        )
        by_target: dict[tuple[str, bool], list[str]] = {}
        for grant in profile.grants:
            roles = by_target.setdefault((grant.path, grant.propagate), [])
            if grant.roleid not in roles:
                roles.append(grant.roleid)
        paths = [path for path, _ in by_target]
        acls = []
        for (path, propagate), roles in by_target.items():
            depends: list[pulumi.Resource] = [self.roles[r] for r in roles if not is_builtin_role(r)]
            pool = pools_by_id.get(path.removeprefix("/pool/")) if path.startswith("/pool/") else None
            if pool is not None:
                depends.append(pool)
            suffix = "" if paths.count(path) == 1 else ("-propagate" if propagate else "-here")
            acls.append(
                ProxmoxAcl(
                    f"{name}-{consumer}-acl-{_slug(path) or 'root'}{suffix}",
                    ProxmoxAclArgs(
                        path=path,
                        roles=sorted(roles),
                        users=[user.userid],
                        tokens=[token.full_tokenid],
                        propagate=propagate,
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
                )
            )
        return ApiCredentials(
            user=user,
            token=token,
            token_id=token.full_tokenid,
            token_secret=pulumi.Output.secret(token.value),
            url=url,
            acls=tuple(acls),
        )


def _slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-").lower()


def _check_args(args: ProxmoxClusterArgs) -> list[str]:
    """Everything wrong with the arguments, before any resource is registered."""
    problems: list[str] = []
    if not _PREFIX.fullmatch(args.prefix):
        problems.append(
            f"prefix {args.prefix!r}: 1-10 characters, lowercase letters, digits and '-', starting with a letter "
            "(security group names are '<prefix>-storage', at most 18 characters)"
        )
    if not args.nodes:
        problems.append("nodes: at least one node is required")
    names = [t.name for t in args.tenants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"tenants: duplicate names {duplicates}")
    for source in [*args.api_source_cidrs, *([args.control_plane_source] if args.control_plane_source else [])]:
        try:
            check_address(source)
        except ValueError as exc:
            problems.append(f"firewall source: {exc}")
    if args.csi_scope == "platform-pool" and not args.csi_storages:
        problems.append("csi_storages: required with csi_scope='platform-pool'")
    if not problems:
        try:
            SecurityGroupSpec.from_inputs(
                {"group": f"{args.prefix}-mgmt", "rules": [r.to_inputs() for r in args.extra_management_rules]}
            )
        except ValueError as exc:
            problems.append(f"extra_management_rules: {exc}")
    problems += check_templates(args.templates, args.nodes)
    if not problems and args.template_lookup is not None:
        problems += check_templates(args.templates, args.nodes, args.template_lookup())
    return problems
