"""Least-privilege access for Proxmox VE, as data: privilege names, role definitions and ACL grants.

Four consumers talk to the Proxmox API and each gets its own role set (reference
``proxmox_provider.md`` section 3):

* **CAPMOX** (Cluster API provider), following its "Proxmox RBAC with least privileges" guide;
* the **Proxmox CSI driver** (proxmox-csi-plugin), with or without the extras ZFS replication needs;
* a **read-only metrics exporter** (e.g. prometheus-pve-exporter);
* **our own provider** (VM CRUD from templates, section 3.4).

A profile is a pure value: the custom roles to create and the ACL grants (path, role, propagate) to
give to a user, token or group. Nothing here talks to Proxmox; ``providers/proxmox/access.py`` and the
dynamic resources in ``providers/dynamic/access.py`` turn profiles into objects.

PVE 9 dropped ``VM.Monitor`` and split the guest agent into ``VM.GuestAgent.*``. Every profile is
written for PVE 9 and takes ``pve_major=8`` to get the PVE 8 variant, where each ``VM.GuestAgent.*``
privilege becomes ``VM.Monitor`` (which guarded all agent calls there).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------- privilege names

GUEST_AGENT_PRIVILEGES = frozenset(
    {
        "VM.GuestAgent.Audit",
        "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt",
        "VM.GuestAgent.FileWrite",
        "VM.GuestAgent.Unrestricted",
    }
)
"""PVE 9's guest agent privileges (pve-access-control, "add VM.GuestAgent privileges", July 2025)."""

PVE8_ONLY_PRIVILEGES = frozenset({"VM.Monitor"})
"""Privileges PVE 9 removed: ``VM.Monitor`` guarded the guest agent and the HMP monitor on PVE 8."""

PVE9_PRIVILEGES = frozenset(
    {
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.AllocateTemplate",
        "Datastore.Audit",
        "Group.Allocate",
        "Mapping.Audit",
        "Mapping.Modify",
        "Mapping.Use",
        "Permissions.Modify",
        "Pool.Allocate",
        "Pool.Audit",
        "Realm.Allocate",
        "Realm.AllocateUser",
        "SDN.Allocate",
        "SDN.Audit",
        "SDN.Use",
        "Sys.AccessNetwork",
        "Sys.Audit",
        "Sys.Console",
        "Sys.Incoming",
        "Sys.Modify",
        "Sys.PowerMgmt",
        "Sys.Syslog",
        "User.Modify",
        "VM.Allocate",
        "VM.Audit",
        "VM.Backup",
        "VM.Clone",
        "VM.Config.CDROM",
        "VM.Config.CPU",
        "VM.Config.Cloudinit",
        "VM.Config.Disk",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
        "VM.Console",
        "VM.Migrate",
        "VM.PowerMgmt",
        "VM.Replicate",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
        *GUEST_AGENT_PRIVILEGES,
    }
)
"""Every privilege of PVE 9 (the properties of ``GET /access/roles/{roleid}`` in the PVE 9 API schema)."""

PVE8_PRIVILEGES = (PVE9_PRIVILEGES - GUEST_AGENT_PRIVILEGES) | PVE8_ONLY_PRIVILEGES
"""PVE 8.x: PVE 9's list without ``VM.GuestAgent.*``, plus ``VM.Monitor``.

``Sys.AccessNetwork`` and ``VM.Replicate`` are kept here although early 8.x releases may not know
them (not verified against every minor release); PVE itself rejects a name it does not know with
``invalid privilege '<name>'``, so accepting them locally can only defer an error, never hide one.
"""

KNOWN_PRIVILEGES = PVE9_PRIVILEGES | PVE8_PRIVILEGES
"""Every privilege name of PVE 8 or 9; used when the cluster version is not stated."""

SUPPORTED_PVE_MAJORS = (8, 9)

BUILTIN_ROLES = frozenset(
    {
        "Administrator",
        "NoAccess",
        "PVEAdmin",
        "PVEAuditor",
        "PVEDatastoreAdmin",
        "PVEDatastoreUser",
        "PVEMappingAdmin",
        "PVEMappingUser",
        "PVEPoolAdmin",
        "PVEPoolUser",
        "PVESDNAdmin",
        "PVESDNUser",
        "PVESysAdmin",
        "PVETemplateUser",
        "PVEUserAdmin",
        "PVEVMAdmin",
        "PVEVMUser",
    }
)
"""Roles PVE creates itself (``create_roles`` in pve-access-control); they cannot be created or changed."""

ROLE_ID = re.compile(r"[A-Za-z0-9._-]+")
_ID = r"[A-Za-z0-9._-]+"
_ACL_PATH = re.compile(
    r"/"
    rf"|/access(?:/groups(?:/{_ID})?|/realm(?:/{_ID})?)?"
    rf"|/nodes(?:/{_ID})?"
    rf"|/pool(?:/{_ID}(?:/{_ID}){{0,2}})?"
    rf"|/sdn(?:/zones(?:/{_ID}(?:/{_ID}(?:/[1-9][0-9]{{0,3}})?)?)?|/(?:vnets|controllers|dns|ipams)(?:/{_ID})?)?"
    rf"|/storage(?:/{_ID})?"
    r"|/vms(?:/[1-9][0-9]{2,8})?"
    rf"|/mapping(?:/{_ID}(?:/{_ID})?)?"
)


class PrivilegeError(ValueError):
    """A privilege, role id or ACL path that Proxmox VE would refuse; the message names it."""


def _check_major(pve_major: int | None) -> None:
    if pve_major is not None and pve_major not in SUPPORTED_PVE_MAJORS:
        raise PrivilegeError(f"pve_major must be one of {SUPPORTED_PVE_MAJORS}, got {pve_major!r}")


def known_privileges(pve_major: int | None = None) -> frozenset[str]:
    """The privilege names of one PVE major version, or of 8 and 9 together when ``None``."""
    _check_major(pve_major)
    if pve_major == 8:
        return PVE8_PRIVILEGES
    if pve_major == 9:
        return PVE9_PRIVILEGES
    return KNOWN_PRIVILEGES


def _hint(name: str, pve_major: int | None) -> str:
    if name in PVE8_ONLY_PRIVILEGES and pve_major == 9:
        return (
            " (PVE 9 removed VM.Monitor: use VM.GuestAgent.Audit for guest agent reads, "
            "VM.GuestAgent.Unrestricted for agent exec, Sys.Audit for the monitor's 'info')"
        )
    if name in GUEST_AGENT_PRIVILEGES and pve_major == 8:
        return " (VM.GuestAgent.* exists from PVE 9 on; PVE 8 guards the guest agent with VM.Monitor)"
    close = difflib.get_close_matches(name, sorted(KNOWN_PRIVILEGES), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_privileges(privileges: Iterable[str], pve_major: int | None = None) -> list[str]:
    """The names in ``privileges`` that the given PVE version does not know, in input order."""
    known = known_privileges(pve_major)
    return [p for p in privileges if p not in known]


def check_privileges(privileges: Iterable[str], pve_major: int | None = None) -> tuple[str, ...]:
    """Sorted, de-duplicated privileges; PrivilegeError naming every unknown one (with a hint)."""
    items = list(privileges)
    bad = unknown_privileges(items, pve_major)
    if bad:
        where = f"PVE {pve_major}" if pve_major else "Proxmox VE"
        details = "; ".join(f"{name!r}{_hint(name, pve_major)}" for name in dict.fromkeys(bad))
        raise PrivilegeError(f"unknown privilege(s) for {where}: {details}")
    return tuple(sorted(set(items)))


def for_pve(privileges: Iterable[str], pve_major: int) -> tuple[str, ...]:
    """Translate a privilege set between PVE 8 and 9 (the only renaming: the guest agent).

    To PVE 8 every ``VM.GuestAgent.*`` becomes ``VM.Monitor``; to PVE 9 ``VM.Monitor`` becomes
    ``VM.GuestAgent.Audit`` (read-only agent calls; agent exec needs VM.GuestAgent.Unrestricted and
    the HMP monitor Sys.Audit, both to be asked for explicitly).
    """
    _check_major(pve_major)
    out: set[str] = set()
    for priv in privileges:
        if pve_major == 8 and priv in GUEST_AGENT_PRIVILEGES:
            out.add("VM.Monitor")
        elif pve_major == 9 and priv in PVE8_ONLY_PRIVILEGES:
            out.add("VM.GuestAgent.Audit")
        else:
            out.add(priv)
    return check_privileges(out, pve_major)


def is_builtin_role(roleid: str) -> bool:
    """True for PVE's own roles: ``Administrator``, ``NoAccess`` and every id starting with ``PVE``."""
    return roleid in BUILTIN_ROLES or roleid.startswith("PVE")


def check_custom_roleid(roleid: str) -> str:
    """A role id we may create; PrivilegeError for reserved (``PVE*``, built-in) or malformed ids."""
    if not isinstance(roleid, str) or not ROLE_ID.fullmatch(roleid):
        raise PrivilegeError(f"role id {roleid!r} may only contain letters, digits, '.', '-' and '_'")
    if roleid.startswith("PVE"):
        raise PrivilegeError(f"role id {roleid!r}: ids starting with 'PVE' are reserved for built-in roles")
    if roleid in BUILTIN_ROLES:
        raise PrivilegeError(f"role id {roleid!r} is a built-in role and cannot be created or changed")
    return roleid


def check_acl_path(path: str) -> str:
    """An ACL path in PVE's normalised form; PrivilegeError naming the path otherwise.

    Accepted: ``/``, ``/access[/groups|/realm[/<id>]]``, ``/nodes[/<node>]``, ``/pool[/<pool>]`` (up to
    three nesting levels), ``/sdn[/zones/<zone>[/<bridge-or-vnet>[/<vlan>]]]``, ``/storage[/<id>]``,
    ``/vms[/<vmid>]`` and ``/mapping[/<type>[/<id>]]``. PVE would normalise ``//x/`` to ``/x``, but the
    normalised form is what ``GET /access/acl`` answers, so anything else would never stop diffing.
    """
    if not isinstance(path, str) or not _ACL_PATH.fullmatch(path):
        raise PrivilegeError(
            f"ACL path {path!r} is not a Proxmox VE ACL path: expected '/', '/vms/<vmid>', '/pool/<pool>', "
            "'/storage/<storage>', '/nodes/<node>', '/sdn/zones/<zone>/<bridge>[/<vlan>]', '/access/...' "
            "or '/mapping/...', with a leading and no trailing '/'"
        )
    return path


# --------------------------------------------------------------------------- roles and grants


@dataclass(frozen=True)
class RoleDefinition:
    """A custom role to create: its id, its sorted privileges, and why it exists."""

    roleid: str
    privileges: tuple[str, ...]
    purpose: str

    def __post_init__(self) -> None:
        check_custom_roleid(self.roleid)
        object.__setattr__(self, "privileges", check_privileges(self.privileges))


@dataclass(frozen=True)
class AclGrant:
    """One ACL entry to give to a principal: ``role`` on ``path``, propagating to children or not."""

    path: str
    roleid: str
    propagate: bool
    purpose: str

    def __post_init__(self) -> None:
        check_acl_path(self.path)
        if not ROLE_ID.fullmatch(self.roleid):
            raise PrivilegeError(f"role id {self.roleid!r} is malformed")


@dataclass(frozen=True)
class AccessProfile:
    """The custom roles and ACL grants one API consumer needs, for one PVE major version.

    Grants name either a role of ``roles`` or a built-in PVE role. Give every grant to the consumer's
    **user**, and also to its **token** unless the token is created with ``privsep=0``: a privilege
    separated token only holds what both the user and the token hold (the intersection).
    """

    name: str
    pve_major: int
    roles: tuple[RoleDefinition, ...]
    grants: tuple[AclGrant, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_major(self.pve_major)
        custom = {r.roleid for r in self.roles}
        if len(custom) != len(self.roles):
            raise PrivilegeError(f"profile {self.name}: duplicate role ids")
        for role in self.roles:
            check_privileges(role.privileges, self.pve_major)
        for grant in self.grants:
            if grant.roleid not in custom and not is_builtin_role(grant.roleid):
                raise PrivilegeError(f"profile {self.name}: grant on {grant.path} names unknown role {grant.roleid}")

    def role(self, roleid: str) -> RoleDefinition:
        """The custom role with this id (KeyError if the profile has none)."""
        for role in self.roles:
            if role.roleid == roleid:
                return role
        raise KeyError(roleid)

    def paths(self) -> tuple[str, ...]:
        """Every ACL path the profile grants on, in grant order, without repeats."""
        return tuple(dict.fromkeys(g.path for g in self.grants))

    def privileges_on(self, path: str) -> frozenset[str]:
        """Privileges granted directly on ``path`` through custom roles (built-in roles are not expanded)."""
        out: set[str] = set()
        for grant in self.grants:
            if grant.path == path and not is_builtin_role(grant.roleid):
                out.update(self.role(grant.roleid).privileges)
        return frozenset(out)


def _role(roleid: str, privileges: Iterable[str], purpose: str, pve_major: int) -> RoleDefinition:
    return RoleDefinition(roleid, for_pve(privileges, pve_major), purpose)


def _names(kind: str, values: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise PrivilegeError(f"{kind}: give a list of names, not the string {values!r}")
    for value in values:
        if not isinstance(value, str) or not re.fullmatch(_ID, value):
            raise PrivilegeError(f"{kind}: {value!r} is not a valid Proxmox id")
    return tuple(dict.fromkeys(values))


# --------------------------------------------------------------------------- CAPMOX

CAPMOX_SYS_AUDIT_ROLE = "CapmoxSysAudit"
CAPMOX_ALLOCATE_SPACE_ROLE = "CapmoxDatastoreAllocateSpace"


def capmox_profile(
    *,
    vm_pool: str = "capi",
    template_pool: str = "templates",
    image_storages: Sequence[str] = ("local-lvm",),
    iso_storage: str = "local",
    zone: str = "localnetwork",
    bridge: str = "vmbr0",
    vlans: Sequence[int] = (),
    pve_major: int = 9,
) -> AccessProfile:
    """CAPMOX's least-privilege set (its docs/advanced-setups.md, "Proxmox RBAC with least privileges").

    Two small custom roles (the guide names them ``Sys.Audit`` and ``Datastore.AllocateSpace``; ours are
    prefixed so they cannot be mistaken for privileges) plus built-in roles: PVEVMAdmin on the VM pool,
    PVETemplateUser on the template pool, PVESDNUser on the bridge (or each VLAN of it), and
    PVEDatastoreAdmin on the ISO storage that receives the generated cloud-init/Ignition ISOs.
    Propagation follows the guide (only ``/nodes`` propagates).
    """
    pools = _names("pool", [vm_pool, template_pool])
    stores = _names("image_storages", image_storages)
    (iso,) = _names("iso_storage", [iso_storage])
    zone_, bridge_ = _names("zone/bridge", [zone, bridge])
    roles = (
        _role(CAPMOX_SYS_AUDIT_ROLE, ["Sys.Audit"], "read nodes (scheduling by memory) and cluster status", pve_major),
        _role(CAPMOX_ALLOCATE_SPACE_ROLE, ["Datastore.AllocateSpace"], "allocate VM disks", pve_major),
    )
    grants = [
        AclGrant("/", CAPMOX_SYS_AUDIT_ROLE, False, "cluster status and resources"),
        AclGrant("/nodes", CAPMOX_SYS_AUDIT_ROLE, True, "node status and memory for placement"),
        AclGrant(f"/pool/{pools[0]}", "PVEVMAdmin", False, "create, configure, power and delete machines"),
        AclGrant(f"/pool/{pools[-1]}", "PVETemplateUser", False, "clone the templates (selected by tags)"),
    ]
    sdn = f"/sdn/zones/{zone_}/{bridge_}"
    if vlans:
        grants += [AclGrant(f"{sdn}/{_vlan(v)}", "PVESDNUser", False, f"NICs on VLAN {v}") for v in vlans]
    else:
        grants.append(AclGrant(sdn, "PVESDNUser", False, "NICs on the bridge"))
    grants.append(AclGrant(f"/storage/{iso}", "PVEDatastoreAdmin", False, "upload and delete cloud-init ISOs"))
    grants += [AclGrant(f"/storage/{s}", CAPMOX_ALLOCATE_SPACE_ROLE, False, "VM disks") for s in stores]
    return AccessProfile(
        name="capmox",
        pve_major=pve_major,
        roles=roles,
        grants=tuple(grants),
        notes=(
            "CAPMOX's quick start uses PVEVMAdmin on '/' and a privsep=0 token; this profile is its "
            "least-privilege guide. With a privsep=1 token grant every entry to the token as well.",
            "The template pool must hold the templates and the VM pool must exist before CAPMOX runs.",
        ),
    )


def _vlan(vlan: int) -> int:
    if isinstance(vlan, bool) or not isinstance(vlan, int) or not 1 <= vlan <= 4094:
        raise PrivilegeError(f"VLAN tag must be an integer from 1 to 4094, got {vlan!r}")
    return vlan


# --------------------------------------------------------------------------- proxmox-csi-plugin

CSI_ROLE = "KubernetesCSI"
CSI_PRIVILEGES = (
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.Audit",
    "VM.Audit",
    "VM.Config.Disk",
)
"""proxmox-csi-plugin docs/install.md: ``pveum role add CSI -privs "VM.Audit VM.Config.Disk Datastore.*"``."""
CSI_ZFS_REPLICATION_PRIVILEGES = (
    "VM.Allocate",
    "VM.Clone",
    "VM.Config.CPU",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Options",
    "VM.Migrate",
    "VM.PowerMgmt",
)
"""The extras the CSI docs list for ZFS replication (volumes follow a VM that moves between nodes)."""


def csi_profile(
    *,
    zfs_replication: bool = False,
    vm_pool: str | None = None,
    storages: Sequence[str] = (),
    roleid: str = CSI_ROLE,
    pve_major: int = 9,
) -> AccessProfile:
    """The Proxmox CSI driver's role, on ``/`` as its docs say, or scoped to a pool and storages.

    Without ``vm_pool`` the grant is the documented one: the role on ``/`` with propagation. With
    ``vm_pool`` and ``storages`` it is narrowed to the Kubernetes VMs' pool and the storages that hold
    PVs. That narrowing is our derivation from the endpoints the driver calls (disk attach on the VM,
    volume allocation on the storage), not something the CSI project documents; check it on a real
    cluster before relying on it.
    """
    privileges = [*CSI_PRIVILEGES, *(CSI_ZFS_REPLICATION_PRIVILEGES if zfs_replication else ())]
    role = _role(roleid, privileges, "attach PV disks to Kubernetes VMs and allocate them on storage", pve_major)
    if vm_pool is None:
        if storages:
            raise PrivilegeError("csi_profile: storages only narrow the grant together with vm_pool")
        grants: tuple[AclGrant, ...] = (AclGrant("/", roleid, True, "as documented by proxmox-csi-plugin"),)
    else:
        (pool,) = _names("vm_pool", [vm_pool])
        stores = _names("storages", storages)
        if not stores:
            raise PrivilegeError("csi_profile: a scoped grant needs the storages that hold the PVs")
        grants = (
            AclGrant(f"/pool/{pool}", roleid, True, "attach and detach disks on the Kubernetes VMs"),
            *(AclGrant(f"/storage/{s}", roleid, False, "allocate and delete PV volumes") for s in stores),
        )
    return AccessProfile(
        name="csi-zfs-replication" if zfs_replication else "csi",
        pve_major=pve_major,
        roles=(role,),
        grants=grants,
        notes=(
            "The CSI docs create the token with privsep=0; with privsep=1 grant the role to the token too.",
            "PV volumes belong to the placeholder VMID 9999 (controllerVMID), not to a VM of the pool.",
        ),
    )


# --------------------------------------------------------------------------- metrics exporter

METRICS_ROLE = "MetricsExporter"
METRICS_PRIVILEGES = ("Datastore.Audit", "Pool.Audit", "Sys.Audit", "VM.Audit")
"""Read-only: node, guest, storage and pool status. Narrower than PVEAuditor, which on PVE 9 also
carries VM.GuestAgent.Audit (reads inside guests) and SDN/Mapping audit the exporter does not use."""


def metrics_exporter_profile(*, roleid: str = METRICS_ROLE, pve_major: int = 9) -> AccessProfile:
    """A read-only metrics exporter (prometheus-pve-exporter and similar): audit privileges on ``/``."""
    role = _role(roleid, METRICS_PRIVILEGES, "read node, guest, storage and pool status", pve_major)
    return AccessProfile(
        name="metrics-exporter",
        pve_major=pve_major,
        roles=(role,),
        grants=(AclGrant("/", roleid, True, "every node, guest, storage and pool"),),
        notes=("No write privilege at all: a leaked exporter token can read status, never change it.",),
    )


# --------------------------------------------------------------------------- our provider

PROVIDER_VM_PRIVILEGES = (
    "VM.Allocate",
    "VM.Audit",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.GuestAgent.Audit",
    "VM.PowerMgmt",
)
"""Section 3.4, ``/pool/<k8s-vms>``: clone into the pool, configure, power, read IPs, delete."""
PROVIDER_IMAGE_STORE_PRIVILEGES = ("Datastore.AllocateSpace", "Datastore.Audit")
PROVIDER_ISO_STORE_PRIVILEGES = ("Datastore.Allocate", "Datastore.AllocateTemplate", "Datastore.Audit")


def provider_profile(
    *,
    vm_pool: str,
    image_storages: Sequence[str],
    template_pool: str | None = None,
    template_vmids: Sequence[int] = (),
    iso_storage: str | None = None,
    bridges: Sequence[str] = ("vmbr0",),
    vlans: Sequence[int] = (),
    zone: str = "localnetwork",
    migrate: bool = False,
    agent_exec: bool = False,
    node_audit: bool = True,
    manage_ha: bool = False,
    set_startup: bool = False,
    role_prefix: str = "Pulumi",
    pve_major: int = 9,
) -> AccessProfile:
    """The role set of our own VM provider (reference section 3.4), for the given names.

    * ``/pool/<vm_pool>`` (propagate): VM CRUD; ``migrate`` adds VM.Migrate, ``agent_exec`` adds
      VM.GuestAgent.Unrestricted (PVE 8: everything agent-related is VM.Monitor).
    * ``/pool/<template_pool>`` or ``/vms/<tplid>``: built-in PVETemplateUser (VM.Clone, VM.Audit).
    * ``/storage/<image-store>``: allocate clone targets and grown disks; ``/storage/<iso_storage>``
      only for the NoCloud ISO pattern.
    * ``/sdn/zones/<zone>/<bridge>`` (propagate, covers every VLAN) or, with ``vlans``, only
      ``/sdn/zones/<zone>/<bridge>/<vlan>``: untagged NICs on those bridges are then refused.
    * ``/nodes`` Sys.Audit (optional) for node memory and other users' tasks; ``/`` Sys.Console only
      for HA resources, Sys.Modify only for the ``startup`` option.

    Not granted because any authenticated user may already call them: ``/cluster/nextid``,
    ``/cluster/resources`` (filtered by VM.Audit), ``/pools`` and the caller's own tasks.
    """
    (pool,) = _names("vm_pool", [vm_pool])
    stores = _names("image_storages", image_storages)
    if not stores:
        raise PrivilegeError("provider_profile: image_storages must name at least one storage")
    if template_pool is None and not template_vmids:
        raise PrivilegeError("provider_profile: give template_pool or template_vmids (the clone sources)")
    bridge_names = _names("bridges", bridges)
    (zone_,) = _names("zone", [zone])
    p = role_prefix
    vm_privileges = list(PROVIDER_VM_PRIVILEGES)
    if migrate:
        vm_privileges.append("VM.Migrate")
    if agent_exec:
        vm_privileges.append("VM.GuestAgent.Unrestricted")
    roles = [
        _role(f"{p}VM", vm_privileges, "clone into the pool, configure, power and delete VMs", pve_major),
        _role(f"{p}ImageStore", PROVIDER_IMAGE_STORE_PRIVILEGES, "clone targets, new and grown disks", pve_major),
        _role(f"{p}Network", ["SDN.Use"], "attach NICs to the bridges", pve_major),
    ]
    grants = [AclGrant(f"/pool/{pool}", f"{p}VM", True, "the Kubernetes VMs")]
    if template_pool is not None:
        (tpl,) = _names("template_pool", [template_pool])
        grants.append(AclGrant(f"/pool/{tpl}", "PVETemplateUser", True, "clone sources"))
    for vmid in template_vmids:
        if isinstance(vmid, bool) or not isinstance(vmid, int) or not 100 <= vmid <= 999_999_999:
            raise PrivilegeError(f"template_vmids: {vmid!r} is not a VMID")
        grants.append(AclGrant(f"/vms/{vmid}", "PVETemplateUser", False, "clone source"))
    grants += [AclGrant(f"/storage/{s}", f"{p}ImageStore", False, "VM disks") for s in stores]
    if iso_storage is not None:
        (iso,) = _names("iso_storage", [iso_storage])
        roles.append(_role(f"{p}IsoStore", PROVIDER_ISO_STORE_PRIVILEGES, "NoCloud ISO upload/delete", pve_major))
        grants.append(AclGrant(f"/storage/{iso}", f"{p}IsoStore", False, "NoCloud ISOs"))
    for bridge in bridge_names:
        base = f"/sdn/zones/{zone_}/{bridge}"
        if vlans:
            grants += [AclGrant(f"{base}/{_vlan(v)}", f"{p}Network", False, f"NICs on VLAN {v}") for v in vlans]
        else:
            grants.append(AclGrant(base, f"{p}Network", True, "NICs on the bridge, any VLAN"))
    if node_audit:
        roles.append(_role(f"{p}NodeAudit", ["Sys.Audit"], "node memory, other users' tasks", pve_major))
        grants.append(AclGrant("/nodes", f"{p}NodeAudit", True, "node status for placement"))
    cluster = [*(["Sys.Console"] if manage_ha else []), *(["Sys.Modify"] if set_startup else [])]
    if cluster:
        roles.append(_role(f"{p}Cluster", cluster, "HA resources and/or the startup order", pve_major))
        grants.append(AclGrant("/", f"{p}Cluster", False, "HA resources / startup order"))
    return AccessProfile(
        name="provider",
        pve_major=pve_major,
        roles=tuple(roles),
        grants=tuple(grants),
        notes=(
            "The clone adds the VM to the pool only when the clone task ends; a call on the new VM before "
            "that gets 403 on /vms/<newid> (the provider waits for the task first).",
            "With a privsep=1 token (the default) grant every entry to the user AND the token.",
        ),
    )
