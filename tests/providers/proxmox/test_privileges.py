"""The least-privilege data in providers/proxmox/privileges.py: privilege names, PVE 8/9 variants, profiles, ACL paths.

Pure data tests, no Proxmox. The PVE 9 privilege list is checked against the PVE 9 API schema that the
fakepve package ships (the properties of ``GET /access/roles/{roleid}``). Whether each role set is
*sufficient* for its consumer is not something a test here can prove: the simulator grants per user with
no roles and always propagates (reference section 2.10).
"""

from __future__ import annotations

from typing import Any

import pytest
from fakepve import schema

from providers.proxmox import privileges as pv
from providers.proxmox.access import AclSpec, RoleSpec
from providers.proxmox.privileges import PrivilegeError

# Privileges no consumer here should ever hold: they administer access control or the hosts themselves.
NEVER = {
    "Permissions.Modify",
    "User.Modify",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "Group.Allocate",
    "Sys.PowerMgmt",
    "Sys.Incoming",
    "Mapping.Modify",
    "SDN.Allocate",
    "Pool.Allocate",
}


def all_profiles(pve_major: int) -> list[pv.AccessProfile]:
    return [
        pv.capmox_profile(pve_major=pve_major),
        pv.capmox_profile(vlans=[10, 20], pve_major=pve_major),
        pv.csi_profile(pve_major=pve_major),
        pv.csi_profile(zfs_replication=True, pve_major=pve_major),
        pv.csi_profile(vm_pool="k8s", storages=["local-lvm", "ceph"], pve_major=pve_major),
        pv.metrics_exporter_profile(pve_major=pve_major),
        pv.provider_profile(vm_pool="k8s", image_storages=["local-lvm"], template_pool="tpl", pve_major=pve_major),
        pv.provider_profile(
            vm_pool="k8s",
            image_storages=["local-lvm", "ceph"],
            template_vmids=[9000, 9001],
            iso_storage="local",
            bridges=["vmbr0", "vmbr1"],
            vlans=[10],
            migrate=True,
            agent_exec=True,
            manage_ha=True,
            set_startup=True,
            pve_major=pve_major,
        ),
    ]


# --------------------------------------------------------------------------- names


def test_pve9_privileges_match_the_pve9_api_schema() -> None:
    properties = schema.load().paths["/access/roles/{roleid}"]["GET"]["returns"]["properties"]
    assert set(properties) == pv.PVE9_PRIVILEGES


def test_pve8_differs_only_by_the_guest_agent() -> None:
    assert pv.GUEST_AGENT_PRIVILEGES | {"VM.Monitor"} == pv.PVE8_PRIVILEGES ^ pv.PVE9_PRIVILEGES
    assert pv.known_privileges() == pv.PVE8_PRIVILEGES | pv.PVE9_PRIVILEGES
    assert pv.known_privileges(8) == pv.PVE8_PRIVILEGES and pv.known_privileges(9) == pv.PVE9_PRIVILEGES
    with pytest.raises(PrivilegeError, match="pve_major"):
        pv.known_privileges(7)


def test_check_privileges_sorts_dedupes_and_names_unknowns() -> None:
    assert pv.check_privileges(["VM.Clone", "VM.Audit", "VM.Clone"]) == ("VM.Audit", "VM.Clone")
    with pytest.raises(PrivilegeError) as err:
        pv.check_privileges(["VM.Audit", "Vm.Audit", "Bogus.Thing"])
    text = str(err.value)
    assert "'Vm.Audit' (did you mean 'VM.Audit'?)" in text and "'Bogus.Thing'" in text
    assert pv.unknown_privileges(["VM.Monitor", "VM.Audit"], 9) == ["VM.Monitor"]
    assert pv.unknown_privileges(["VM.GuestAgent.FileRead"], 8) == ["VM.GuestAgent.FileRead"]


def test_version_hints() -> None:
    with pytest.raises(PrivilegeError, match=r"PVE 9 removed VM\.Monitor"):
        pv.check_privileges(["VM.Monitor"], 9)
    with pytest.raises(PrivilegeError, match=r"PVE 8 guards the guest agent with VM\.Monitor"):
        pv.check_privileges(["VM.GuestAgent.Audit"], 8)


def test_for_pve_translates_the_guest_agent() -> None:
    nine = ("VM.Audit", "VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted")
    assert pv.for_pve(nine, 8) == ("VM.Audit", "VM.Monitor")
    assert pv.for_pve(["VM.Audit", "VM.Monitor"], 9) == ("VM.Audit", "VM.GuestAgent.Audit")
    assert pv.for_pve(nine, 9) == nine


def test_builtin_and_reserved_role_ids() -> None:
    for roleid in ["PVEVMAdmin", "PVEAnything", "Administrator", "NoAccess"]:
        assert pv.is_builtin_role(roleid)
        with pytest.raises(PrivilegeError):
            pv.check_custom_roleid(roleid)
    for bad in ["", "has space", "a/b", "x:y"]:
        with pytest.raises(PrivilegeError, match="may only contain"):
            pv.check_custom_roleid(bad)
    assert pv.check_custom_roleid("Pulumi.VM_1-a") == "Pulumi.VM_1-a"
    assert not pv.is_builtin_role("PulumiVM")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/access",
        "/access/groups/ops",
        "/access/realm/pve",
        "/nodes",
        "/nodes/pve1",
        "/pool/k8s",
        "/pool/a/b/c",
        "/sdn/zones/localnetwork/vmbr0",
        "/sdn/zones/localnetwork/vmbr0/4094",
        "/sdn/vnets/v1",
        "/storage/local-lvm",
        "/vms",
        "/vms/100",
        "/mapping/pci/gpu0",
    ],
)
def test_valid_acl_paths(path: str) -> None:
    assert pv.check_acl_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "pool/k8s", "/pool/k8s/", "//pool", "/pool/a/b/c/d", "/vms/99", "/vms/abc", "/storage/a b", "/etc", "/vms/1x"],
)
def test_invalid_acl_paths(path: str) -> None:
    with pytest.raises(PrivilegeError, match="not a Proxmox VE ACL path"):
        pv.check_acl_path(path)


# --------------------------------------------------------------------------- every profile


@pytest.mark.parametrize("pve_major", [8, 9])
def test_every_profile_is_consistent_and_least_privilege(pve_major: int) -> None:
    for profile in all_profiles(pve_major):
        assert profile.pve_major == pve_major
        custom = {r.roleid for r in profile.roles}
        for role in profile.roles:
            assert not pv.is_builtin_role(role.roleid)
            assert role.privileges == tuple(sorted(set(role.privileges)))
            assert not pv.unknown_privileges(role.privileges, pve_major), (profile.name, role.roleid)
            assert not NEVER & set(role.privileges), (profile.name, role.roleid)
            # The resources accept exactly this data.
            RoleSpec.from_inputs(
                {"roleid": role.roleid, "privileges": list(role.privileges), "pve_major_version": pve_major}
            )
        used = {g.roleid for g in profile.grants}
        assert custom <= used, f"{profile.name}: a custom role nobody is granted"
        for grant in profile.grants:
            assert grant.roleid in custom or pv.is_builtin_role(grant.roleid)
            AclSpec.from_inputs({"path": grant.path, "roles": [grant.roleid], "tokens": ["svc@pve!iac"]})
        all_privileges = {p for r in profile.roles for p in r.privileges}
        if pve_major == 8:
            assert not all_privileges & pv.GUEST_AGENT_PRIVILEGES
        else:
            assert "VM.Monitor" not in all_privileges


def test_profile_validation() -> None:
    role = pv.RoleDefinition("R", ("VM.Audit",), "x")
    with pytest.raises(PrivilegeError, match="unknown role Nope"):
        pv.AccessProfile("p", 9, (role,), (pv.AclGrant("/", "Nope", True, "x"),))
    with pytest.raises(PrivilegeError, match="duplicate"):
        pv.AccessProfile("p", 9, (role, role), ())
    with pytest.raises(PrivilegeError, match="PVE 9"):
        pv.AccessProfile("p", 9, (pv.RoleDefinition("M", ("VM.Monitor",), "x"),), ())
    with pytest.raises(PrivilegeError, match="ACL path"):
        pv.AclGrant("pool/x", "R", True, "x")
    profile = pv.AccessProfile(
        "p", 9, (role,), (pv.AclGrant("/", "R", True, "x"), pv.AclGrant("/", "PVEAuditor", True, ""))
    )
    assert profile.role("R") is role and profile.paths() == ("/",)
    assert profile.privileges_on("/") == {"VM.Audit"}
    with pytest.raises(KeyError):
        profile.role("Other")


# --------------------------------------------------------------------------- CAPMOX


def grants(profile: pv.AccessProfile) -> list[tuple[str, str, bool]]:
    return [(g.path, g.roleid, g.propagate) for g in profile.grants]


def test_capmox_follows_its_least_privilege_guide() -> None:
    profile = pv.capmox_profile(
        vm_pool="capi", template_pool="templates", image_storages=["local-lvm"], iso_storage="local"
    )
    assert {r.roleid: r.privileges for r in profile.roles} == {
        "CapmoxSysAudit": ("Sys.Audit",),
        "CapmoxDatastoreAllocateSpace": ("Datastore.AllocateSpace",),
    }
    assert grants(profile) == [
        ("/", "CapmoxSysAudit", False),
        ("/nodes", "CapmoxSysAudit", True),
        ("/pool/capi", "PVEVMAdmin", False),
        ("/pool/templates", "PVETemplateUser", False),
        ("/sdn/zones/localnetwork/vmbr0", "PVESDNUser", False),
        ("/storage/local", "PVEDatastoreAdmin", False),
        ("/storage/local-lvm", "CapmoxDatastoreAllocateSpace", False),
    ]


def test_capmox_vlans_and_bad_names() -> None:
    profile = pv.capmox_profile(bridge="vmbr1", vlans=[10, 4094])
    sdn = [g.path for g in profile.grants if g.roleid == "PVESDNUser"]
    assert sdn == ["/sdn/zones/localnetwork/vmbr1/10", "/sdn/zones/localnetwork/vmbr1/4094"]
    with pytest.raises(PrivilegeError, match="VLAN"):
        pv.capmox_profile(vlans=[4095])
    with pytest.raises(PrivilegeError, match="not a valid Proxmox id"):
        pv.capmox_profile(vm_pool="my pool")
    with pytest.raises(PrivilegeError, match="list of names"):
        pv.capmox_profile(image_storages="local-lvm")


# --------------------------------------------------------------------------- CSI


def test_csi_role_as_documented() -> None:
    profile = pv.csi_profile()
    assert profile.role("KubernetesCSI").privileges == (
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.Audit",
        "VM.Audit",
        "VM.Config.Disk",
    )
    assert grants(profile) == [("/", "KubernetesCSI", True)]


def test_csi_zfs_replication_extras() -> None:
    base = set(pv.csi_profile().role("KubernetesCSI").privileges)
    zfs = set(pv.csi_profile(zfs_replication=True).role("KubernetesCSI").privileges)
    assert zfs - base == {
        "VM.Allocate",
        "VM.Clone",
        "VM.Config.CPU",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Options",
        "VM.Migrate",
        "VM.PowerMgmt",
    }
    assert pv.csi_profile(zfs_replication=True).name == "csi-zfs-replication"


def test_csi_scoped_variant() -> None:
    profile = pv.csi_profile(vm_pool="k8s", storages=["local-lvm", "ceph"], roleid="CSI")
    assert grants(profile) == [
        ("/pool/k8s", "CSI", True),
        ("/storage/local-lvm", "CSI", False),
        ("/storage/ceph", "CSI", False),
    ]
    with pytest.raises(PrivilegeError, match="together with vm_pool"):
        pv.csi_profile(storages=["local-lvm"])
    with pytest.raises(PrivilegeError, match="needs the storages"):
        pv.csi_profile(vm_pool="k8s")


# --------------------------------------------------------------------------- metrics exporter


@pytest.mark.parametrize("pve_major", [8, 9])
def test_metrics_exporter_is_read_only(pve_major: int) -> None:
    profile = pv.metrics_exporter_profile(pve_major=pve_major)
    (role,) = profile.roles
    assert role.privileges == ("Datastore.Audit", "Pool.Audit", "Sys.Audit", "VM.Audit")
    assert all(p.endswith(".Audit") for p in role.privileges)
    assert "VM.GuestAgent.Audit" not in role.privileges  # no reads inside guests
    assert grants(profile) == [("/", "MetricsExporter", True)]


# --------------------------------------------------------------------------- our provider


def test_provider_profile_section_3_4() -> None:
    profile = pv.provider_profile(vm_pool="k8s-vms", image_storages=["local-lvm"], template_pool="templates")
    assert profile.role("PulumiVM").privileges == (
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
    assert profile.role("PulumiImageStore").privileges == ("Datastore.AllocateSpace", "Datastore.Audit")
    assert profile.role("PulumiNetwork").privileges == ("SDN.Use",)
    assert profile.role("PulumiNodeAudit").privileges == ("Sys.Audit",)
    assert grants(profile) == [
        ("/pool/k8s-vms", "PulumiVM", True),
        ("/pool/templates", "PVETemplateUser", True),
        ("/storage/local-lvm", "PulumiImageStore", False),
        ("/sdn/zones/localnetwork/vmbr0", "PulumiNetwork", True),
        ("/nodes", "PulumiNodeAudit", True),
    ]
    assert "VM.Migrate" not in profile.privileges_on("/pool/k8s-vms")
    assert "/" not in profile.paths()


def test_provider_profile_options() -> None:
    profile = pv.provider_profile(
        vm_pool="k8s",
        image_storages=["local-lvm"],
        template_vmids=[9000],
        iso_storage="local",
        bridges=["vmbr0", "vmbr1"],
        vlans=[10, 20],
        zone="lan",
        migrate=True,
        agent_exec=True,
        node_audit=False,
        manage_ha=True,
        set_startup=True,
        role_prefix="Iac",
    )
    vm = set(profile.privileges_on("/pool/k8s"))
    assert {"VM.Migrate", "VM.GuestAgent.Unrestricted", "VM.GuestAgent.Audit"} <= vm
    assert profile.role("IacIsoStore").privileges == (
        "Datastore.Allocate",
        "Datastore.AllocateTemplate",
        "Datastore.Audit",
    )
    assert profile.role("IacCluster").privileges == ("Sys.Console", "Sys.Modify")
    assert ("/", "IacCluster", False) in grants(profile)
    assert ("/vms/9000", "PVETemplateUser", False) in grants(profile)
    assert [g.path for g in profile.grants if g.roleid == "IacNetwork"] == [
        "/sdn/zones/lan/vmbr0/10",
        "/sdn/zones/lan/vmbr0/20",
        "/sdn/zones/lan/vmbr1/10",
        "/sdn/zones/lan/vmbr1/20",
    ]
    assert "/nodes" not in profile.paths()


def test_provider_profile_for_pve8_uses_vm_monitor() -> None:
    profile = pv.provider_profile(
        vm_pool="k8s", image_storages=["local-lvm"], template_pool="tpl", agent_exec=True, pve_major=8
    )
    vm = profile.role("PulumiVM").privileges
    assert "VM.Monitor" in vm and not set(vm) & pv.GUEST_AGENT_PRIVILEGES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_storages": ["local-lvm"]}, "template_pool or template_vmids"),
        ({"image_storages": [], "template_pool": "t"}, "at least one storage"),
        ({"image_storages": ["local-lvm"], "template_vmids": [99]}, "not a VMID"),
        ({"image_storages": ["local-lvm"], "template_pool": "t", "vlans": [0]}, "VLAN"),
        ({"image_storages": ["local-lvm"], "template_pool": "t", "pve_major": 7}, "pve_major"),
        ({"image_storages": ["local-lvm"], "template_pool": "t", "role_prefix": "PVE"}, "reserved"),
    ],
)
def test_provider_profile_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PrivilegeError, match=message):
        pv.provider_profile(vm_pool="k8s", **kwargs)
