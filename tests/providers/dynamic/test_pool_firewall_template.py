"""Pools, firewall security groups and cloud-image templates against fakepve over verified HTTPS.

What the simulator models **statefully** (so these tests assert on the state it keeps):

* ``/pools`` (create, ``?poolid=`` read, comment update, delete, members, nested pools, "not empty");
* ``/cluster/firewall/groups`` and their rules (order, ``enable``, digests, "not empty"), and a guest's
  ``firewall/rules`` and ``firewall/options``;
* ``download-url`` (the file appears on the storage, the storage must allow the ``import`` content),
  storage content listing and deletion, ``POST /nodes/{n}/qemu`` (a VM with its disks, tags, pool
  membership), ``POST .../template`` (the disk becomes a base volume), ``DELETE`` of a VM.

What it does **not** model, so these tests only check the request (or say what real PVE does instead):

* the download's checksum is not verified, and a second download of an existing file overwrites it
  (PVE refuses): the tests check that a checksum is *sent* and that an existing file is *not* fetched;
* ``import-from`` is not read: the imported disk has size 0 and a missing import file is accepted;
* deleting a template that linked clones still use succeeds (PVE fails the task with "base volume ...
  is still in use by linked cloned"): the hint on that error is tested with an injected task error;
* a blank form value (``comment=``, which PVE stores as an empty comment) is dropped by the simulator:
  clearing a comment is checked on the request only;
* access-control objects (users, roles, tokens, ACLs) are not stored at all; they are not used here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from providers.dynamic import runtime
from providers.dynamic.firewall import ProxmoxSecurityGroupProvider
from providers.dynamic.pool import ProxmoxPoolProvider
from providers.dynamic.template import ProxmoxTemplateProvider
from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import ProxmoxAlreadyExistsError, ProxmoxError, ProxmoxValidationError
from providers.proxmox.firewall import (
    FirewallApi,
    FirewallConflictError,
    FirewallRule,
    FirewallSpecError,
    SecurityGroupSpec,
    VmGroupBinding,
)
from providers.proxmox.pools import PoolApi, PoolConflictError, PoolNotEmptyError, PoolSpec, PoolSpecError
from providers.proxmox.templates import TemplateOperations, TemplateSpec, TemplateSpecError, description_with_marker
from tests.support.faults import body_field, requests_matching

MARKER = "0123456789abcdef0123456789abcdef"
OWNER = "platform/test/tpl"
URL = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
SHA256 = "sha256:" + "ab" * 32


@pytest.fixture
def pools(client: ProxmoxClient) -> PoolApi:
    return PoolApi(client)


@pytest.fixture
def firewall(client: ProxmoxClient) -> FirewallApi:
    return FirewallApi(client)


@pytest.fixture
def templates(client: ProxmoxClient, pve: Any) -> TemplateOperations:
    """Template operations; the simulator's 'local' storage accepts imports (an operator enabled it)."""
    pve.storages["local"]["content"] = "iso,vztmpl,backup,import"
    return TemplateOperations(client, poll_interval=0.01)


@pytest.fixture
def configured(settings: ConnectionSettings) -> Iterator[None]:
    """The dynamic providers' per-process connection, pointed at the simulator for one test."""
    runtime.configure(settings)
    yield
    runtime.configure(None)


def tpl_spec(**overrides: Any) -> TemplateSpec:
    inputs: dict[str, Any] = {
        "name": "ubuntu-2404-kube",
        "node": "pve1",
        "image_url": URL,
        "image_checksum": SHA256,
        "vmid": 9100,
        "storage": "local-lvm",
        "bridge": "vmbr0",
        "vlan": 10,
        "tags": ["ubuntu-2404-kube", "K8s"],
        "marker": MARKER,
        "owner": OWNER,
    }
    inputs.update(overrides)
    return TemplateSpec.from_inputs(inputs)


def fw_groups(pve: Any) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = pve.firewall_config("cluster")["groups"]
    return groups


def import_files(pve: Any) -> set[str]:
    return {v for v in pve.storages["local"].get("volumes", {}) if v.startswith("import/")}


def outs(result: Any) -> dict[str, Any]:
    """The ``outs`` of a Create/Update/ReadResult (never None on success)."""
    assert result.outs is not None
    found: dict[str, Any] = result.outs
    return found


def paths(pve: Any, since: int) -> list[tuple[str, str]]:
    return [(m, p.removeprefix("/api2/json")) for m, p, _ in pve.requests[since:]]


# =========================================================================== pools


def test_pool_lifecycle(pve: Any, pools: PoolApi) -> None:
    """Stateful: create, read, comment update and delete of a pool. Request shape only: clearing the comment."""
    assert pools.create(PoolSpec("k8s-platform", "VMs of the management cluster")) is False
    assert "k8s-platform" in pve.pools
    assert pve.pool_info["k8s-platform"]["comment"] == "VMs of the management cluster"

    found = pools.get("k8s-platform")
    assert found is not None and found.comment == "VMs of the management cluster" and found.members == ()

    pools.update(PoolSpec("k8s-platform", "renamed"))
    assert pve.pool_info["k8s-platform"]["comment"] == "renamed"
    # Clearing sends 'comment=' (PVE stores ''); the simulator drops blank form values, so only the request
    # can be checked here.
    before = len(pve.requests)
    pools.update(PoolSpec("k8s-platform", ""))
    (put,) = requests_matching(pve, "PUT", r"/pools$", since=before)
    assert body_field(put[2], "comment") == "" and body_field(put[2], "poolid") == "k8s-platform"

    assert pools.delete("k8s-platform") is True
    assert "k8s-platform" not in pve.pools
    assert pools.get("k8s-platform") is None
    assert pools.delete("k8s-platform") is False


def test_existing_pool_is_adopted_only_when_identical(pve: Any, pools: PoolApi) -> None:
    """Stateful: PVE's 'already exists' answer and the stored comment."""
    pools.create(PoolSpec("k8s-templates", "templates"))
    assert pools.create(PoolSpec("k8s-templates", "templates")) is True
    with pytest.raises(PoolConflictError, match=r"already exists and differs.*'templates'.*'other'"):
        pools.create(PoolSpec("k8s-templates", "other"))
    assert pve.pool_info["k8s-templates"]["comment"] == "templates"


def test_pool_with_members_is_refused_before_any_delete(pve: Any, pools: PoolApi, client: ProxmoxClient) -> None:
    """Stateful: pool membership (added with PUT /pools vms=); no DELETE is sent."""
    pools.create(PoolSpec("k8s-templates"))
    client.put("/pools", poolid="k8s-templates", vms="9000")
    found = pools.get("k8s-templates")
    assert found is not None and found.vmids == (9000,)
    before = len(pve.requests)
    with pytest.raises(PoolNotEmptyError, match=r"not empty \(qemu/9000\)"):
        pools.delete("k8s-templates")
    assert not requests_matching(pve, "DELETE", r"/pools$", since=before)
    assert "k8s-templates" in pve.pools


def test_nested_pools(pve: Any, pools: PoolApi) -> None:
    """Stateful: nested pools (the parent must exist; a parent with children is not deleted)."""
    with pytest.raises(ProxmoxError, match="parent 'k8s' of pool 'k8s/tenant-a' does not exist"):
        pools.create(PoolSpec("k8s/tenant-a"))
    pools.create(PoolSpec("k8s"))
    pools.create(PoolSpec("k8s/tenant-a", "tenant a"))
    nested = pools.get("k8s/tenant-a")
    assert nested is not None and nested.comment == "tenant a"
    with pytest.raises(PoolNotEmptyError, match="pool k8s/tenant-a"):
        pools.delete("k8s")
    assert pools.delete("k8s/tenant-a") and pools.delete("k8s")
    assert pve.pools == {}


def test_pool_ids_are_validated_locally() -> None:
    """Local validation only: no request."""
    for bad in ("1pool", "a b", "a/b/c/d", "", None, "x" * 65):
        with pytest.raises(PoolSpecError, match="poolid"):
            PoolSpec.from_inputs({"poolid": bad})
    assert PoolSpec.from_inputs({"poolid": "a/b-c/d_e"}).poolid == "a/b-c/d_e"


def test_pool_provider_end_to_end(pve: Any, configured: None) -> None:
    """Stateful: the dynamic provider's check/diff/create/update/read/delete on the simulator's pools."""
    provider = ProxmoxPoolProvider()
    bad = provider.check({}, {"poolid": "9lives"})
    assert [f.property for f in bad.failures] == ["poolid"]
    checked = provider.check({}, {"poolid": "k8s-platform", "comment": None})
    assert checked.inputs == {"poolid": "k8s-platform", "comment": ""}

    created = provider.create(checked.inputs)
    state = outs(created)
    assert created.id == "k8s-platform" and state["adopted"] is False
    assert "k8s-platform" in pve.pools

    diff = provider.diff("k8s-platform", state, {"poolid": "k8s-platform", "comment": "x"})
    assert diff.changes is True and diff.replaces == []
    assert provider.diff("k8s-platform", state, {"poolid": "other", "comment": ""}).replaces == ["poolid"]
    assert provider.diff("k8s-platform", state, checked.inputs).changes is False

    provider.update("k8s-platform", state, {"poolid": "k8s-platform", "comment": "x"})
    pve.pool_info["k8s-platform"]["comment"] = "changed by hand"
    read = provider.read("k8s-platform", state)
    assert read.inputs == {"poolid": "k8s-platform", "comment": "changed by hand"}

    provider.delete("k8s-platform", state)
    assert "k8s-platform" not in pve.pools
    assert provider.read("k8s-platform", state).id is None


# =========================================================================== firewall

MGMT_RULES = (
    FirewallRule(proto="tcp", dport="22", source="10.10.0.0/24", comment="ssh"),
    FirewallRule(proto="tcp", dport="6443", comment="api"),
    FirewallRule(proto="tcp", dport="2379:2380", source="10.10.0.11,10.10.0.12", comment="etcd"),
    FirewallRule(proto="icmp", icmp_type="echo-request", source="10.10.0.0/24", comment="ping"),
)


def test_group_lifecycle_keeps_order_and_enables_rules(pve: Any, firewall: FirewallApi) -> None:
    """Stateful: the group, its comment and its rules in declared order, enabled."""
    spec = SecurityGroupSpec("k8s-mgmt", "management", MGMT_RULES)
    assert firewall.create_group(spec) is False

    stored = fw_groups(pve)["k8s-mgmt"]
    assert [r["comment"] for r in stored] == ["ssh", "api", "etcd", "ping"]
    assert all(r["enable"] == 1 for r in stored)
    assert pve.firewall_config("cluster")["group_comments"]["k8s-mgmt"] == "management"
    found = firewall.get_group("k8s-mgmt")
    assert found is not None and list(found.rules) == list(MGMT_RULES)

    firewall.set_comment("k8s-mgmt", "mgmt v2")
    assert firewall.list_groups()["k8s-mgmt"] == "mgmt v2"

    assert firewall.delete_group("k8s-mgmt") is True
    assert "k8s-mgmt" not in fw_groups(pve)
    assert firewall.get_group("k8s-mgmt") is None
    assert firewall.delete_group("k8s-mgmt") is False


def test_replacing_rules_adds_the_new_ones_before_removing_the_old(pve: Any, firewall: FirewallApi) -> None:
    """Stateful: the resulting rules; the request order proves no gap."""
    firewall.create_group(SecurityGroupSpec("k8s-mgmt", "", MGMT_RULES))
    new_rules = [MGMT_RULES[1], FirewallRule(proto="tcp", dport="10250", source="10.10.0.0/24", comment="kubelet")]
    before = len(pve.requests)

    writes = firewall.set_rules("k8s-mgmt", new_rules)

    assert writes == len(new_rules) + len(MGMT_RULES)
    assert [r["comment"] for r in fw_groups(pve)["k8s-mgmt"]] == ["api", "kubelet"]
    sent = [(m, p) for m, p in paths(pve, before) if m in ("POST", "DELETE")]
    assert [m for m, _ in sent] == ["POST"] * 2 + ["DELETE"] * 4, sent
    # bottom-up: the old rules sat at positions 2..5 below the two new ones
    assert [p.rsplit("/", 1)[1] for m, p in sent if m == "DELETE"] == ["5", "4", "3", "2"]
    assert firewall.set_rules("k8s-mgmt", new_rules) == 0


def test_a_concurrent_edit_during_replacement_is_reported(
    pve: Any, firewall: FirewallApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stateful: a rule added behind our back is detected and kept."""
    firewall.create_group(SecurityGroupSpec("k8s-mgmt", "", MGMT_RULES[:1]))
    original = FirewallApi._post_rules

    def post_then_someone_edits(self: FirewallApi, group: str, rules: Any) -> None:
        original(self, group, rules)
        fw_groups(pve)[group].append({"type": "in", "action": "DROP", "enable": 1, "comment": "by hand"})

    monkeypatch.setattr(FirewallApi, "_post_rules", post_then_someone_edits)
    with pytest.raises(ProxmoxError, match="changed while its rules were replaced"):
        firewall.set_rules("k8s-mgmt", MGMT_RULES[1:2])
    # nothing the other editor added was deleted
    assert fw_groups(pve)["k8s-mgmt"][-1]["comment"] == "by hand"


def test_failed_rule_removes_the_half_made_group(pve: Any, firewall: FirewallApi) -> None:
    """Stateful: the simulator's verify_rule refuses the alias; the group is removed."""
    # An alias name passes local validation; the simulator (like PVE) refuses an alias that does not exist.
    rules = (MGMT_RULES[0], FirewallRule(proto="tcp", dport="22", source="bastion", comment="no such alias"))
    with pytest.raises(ProxmoxValidationError, match="no such alias"):
        firewall.create_group(SecurityGroupSpec("k8s-mgmt", "", rules))
    assert "k8s-mgmt" not in fw_groups(pve)


def test_existing_group_is_adopted_only_when_identical(pve: Any, firewall: FirewallApi) -> None:
    """Stateful: an existing group is compared with the declared one."""
    firewall.create_group(SecurityGroupSpec("k8s-data", "data", MGMT_RULES[:2]))
    before = len(pve.requests)
    assert firewall.create_group(SecurityGroupSpec("k8s-data", "data", MGMT_RULES[:2])) is True
    assert not requests_matching(pve, "POST", "/groups", since=before)
    with pytest.raises(FirewallConflictError, match="other rules"):
        firewall.create_group(SecurityGroupSpec("k8s-data", "data", MGMT_RULES[:1]))
    with pytest.raises(FirewallConflictError, match="another comment"):
        firewall.create_group(SecurityGroupSpec("k8s-data", "storage", MGMT_RULES[:2]))
    assert len(fw_groups(pve)["k8s-data"]) == 2


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"proto": "tcp", "dport": "70000"}, "above 65535"),
        ({"proto": "tcp", "dport": "2380:2379"}, "backwards range"),
        ({"dport": "22"}, "needs proto"),
        ({"proto": "icmp", "dport": "22"}, "has no ports"),
        ({"source": "10.0.0.1/24"}, "host bits"),
        ({"source": "10.0.0.0/24,fd00::/64"}, "mixes IPv4 and IPv6"),
        ({"action": "ALLOW"}, "action"),
        ({"type": "group", "action": "k8s-mgmt"}, "type"),
        ({"type": "forward", "action": "REJECT"}, "forward"),
        ({"icmp_type": "echo-request"}, "needs proto icmp"),
        ({"proto": "tcp", "dport": ",".join(str(p) for p in range(1, 17))}, "more than 15"),
        ({"iface": "net0"}, "unknown rule keys"),
    ],
)
def test_rules_are_validated_before_any_request(pve: Any, rule: dict[str, Any], problem: str) -> None:
    """Local validation only: no request reaches the simulator."""
    before = len(pve.requests)
    with pytest.raises(FirewallSpecError, match=problem):
        SecurityGroupSpec.from_inputs({"group": "k8s-mgmt", "rules": [rule]})
    assert len(pve.requests) == before


def test_local_rule_validation_agrees_with_the_simulator(pve: Any, firewall: FirewallApi) -> None:
    """Every rule the component generates is accepted by the simulator's port of PVE's verify_rule."""
    from components.proxmox.cluster import management_rules, own_cidr_rules

    rules = [
        *management_rules("10.10.0.0/24", api_sources=["192.0.2.0/24", "198.51.100.0/24"]),
        *own_cidr_rules("10.20.0.0/24", "data"),
    ]
    firewall.create_group(SecurityGroupSpec("k8s-all", "", tuple(rules)))
    assert len(fw_groups(pve)["k8s-all"]) == len(rules)
    found = firewall.get_group("k8s-all")
    assert found is not None and list(found.rules) == rules
    for name in ("x", "k8s-management-net1", "9abc"):
        with pytest.raises(FirewallSpecError, match="group"):
            SecurityGroupSpec.from_inputs({"group": name})


def test_bind_vm_adds_group_rules_before_enabling_drop_policy(pve: Any, firewall: FirewallApi) -> None:
    """Stateful: the guest's firewall rules and options; the request order."""
    firewall.create_group(SecurityGroupSpec("k8s-mgmt", "", MGMT_RULES))
    firewall.create_group(SecurityGroupSpec("k8s-storage", "", (FirewallRule(source="10.30.0.0/24"),)))
    pve.add_vm(100, "cp-1", node="pve1", config={"net0": "virtio=BC:24:11:00:00:10,bridge=vmbr0,firewall=1"})
    before = len(pve.requests)

    added = firewall.bind_vm("pve1", 100, [VmGroupBinding("k8s-mgmt", "net0"), VmGroupBinding("k8s-storage", "net1")])

    assert added == 2
    guest = pve.firewall_config("vm", vmid=100)
    assert [(r["action"], r["iface"], r["enable"]) for r in guest["rules"]] == [
        ("k8s-storage", "net1", 1),
        ("k8s-mgmt", "net0", 1),
    ]
    assert guest["options"]["enable"] == 1 and guest["options"]["policy_in"] == "DROP"
    writes = [(m, p) for m, p in paths(pve, before) if m in ("POST", "PUT")]
    assert [m for m, _ in writes] == ["POST", "POST", "PUT"] and writes[-1][1].endswith("/firewall/options")
    assert firewall.bind_vm("pve1", 100, [VmGroupBinding("k8s-mgmt", "net0")]) == 0
    with pytest.raises(ValueError, match="NIC slot"):
        firewall.bind_vm("pve1", 100, [VmGroupBinding("k8s-mgmt", "eth0")])


def test_security_group_provider_end_to_end(pve: Any, configured: None) -> None:
    """Stateful: the dynamic provider on the simulator's security groups, drift included."""
    provider = ProxmoxSecurityGroupProvider()
    bad = provider.check({}, {"group": "k8s-mgmt", "rules": [{"proto": "tcp", "dport": "99999"}]})
    assert [f.property for f in bad.failures] == ["rules[0]"]
    news = provider.check({}, {"group": "k8s-mgmt", "rules": [r.to_inputs() for r in MGMT_RULES[:2]]}).inputs

    created = provider.create(news)
    state = outs(created)
    assert created.id == "k8s-mgmt" and len(fw_groups(pve)["k8s-mgmt"]) == 2

    changed = {**news, "rules": [r.to_inputs() for r in MGMT_RULES]}
    diff = provider.diff("k8s-mgmt", state, changed)
    assert diff.changes is True and diff.replaces == []
    assert provider.diff("k8s-mgmt", state, {**news, "group": "k8s-mgmt2"}).replaces == ["group"]
    assert provider.diff("k8s-mgmt", state, news).changes is False

    updated = outs(provider.update("k8s-mgmt", state, changed))
    assert [r["comment"] for r in fw_groups(pve)["k8s-mgmt"]] == ["ssh", "api", "etcd", "ping"]

    fw_groups(pve)["k8s-mgmt"].pop()  # someone deletes a rule by hand
    read = provider.read("k8s-mgmt", updated)
    assert read.inputs is not None and len(read.inputs["rules"]) == 3
    assert provider.diff("k8s-mgmt", outs(read), changed).changes is True

    provider.delete("k8s-mgmt", updated)
    assert "k8s-mgmt" not in fw_groups(pve)


# =========================================================================== templates


def test_build_template_from_a_cloud_image(pve: Any, pools: PoolApi, templates: TemplateOperations) -> None:
    """Stateful: download-url (file), create (VM, disks, pool), template (base volume), file removal.

    Request shape only: the checksum parameters (the simulator does not verify them) and the import (the
    simulator does not read the file).
    """
    pools.create(PoolSpec("k8s-templates"))
    spec = tpl_spec(pool="k8s-templates")
    assert spec.image_filename == "noble-server-cloudimg-amd64-abababababab.qcow2"
    before = len(pve.requests)

    state = templates.create(spec)

    assert (state.vmid, state.node, state.adopted) == (9100, "pve1", False)
    vm = pve.vm(9100)
    assert vm.template is True
    cfg = vm.config
    assert cfg["scsihw"] == "virtio-scsi-single"
    assert "import-from=local:import/noble-server-cloudimg-amd64-abababababab.qcow2" in cfg["scsi0"]
    assert cfg["scsi0"].startswith("local-lvm:base-9100-disk-")
    assert cfg["ide2"].startswith("local-lvm:vm-9100-disk-") and "media=cdrom" in cfg["ide2"]
    assert cfg["net0"].startswith("virtio=") and "bridge=vmbr0" in cfg["net0"] and "tag=10" in cfg["net0"]
    assert "firewall=1" in cfg["net0"]
    assert (cfg["agent"], cfg["serial0"], cfg["vga"], cfg["boot"]) == ("1", "socket", "serial0", "order=scsi0")
    assert cfg["tags"] == "k8s;ubuntu-2404-kube"
    assert cfg["description"] == description_with_marker("", OWNER, MARKER)
    assert 9100 in pve.pools["k8s-templates"]

    download = requests_matching(pve, "POST", "/download-url$", since=before)
    assert len(download) == 1
    body = parse_qs(download[0][2].decode())
    assert body["checksum"] == ["ab" * 32] and body["checksum-algorithm"] == ["sha256"]
    assert body["content"] == ["import"] and body["url"] == [URL]
    order = [p for m, p in paths(pve, before) if m in ("POST", "DELETE")]
    assert [p.rsplit("/", 1)[-1] for p in order] == ["download-url", "qemu", "template", order[-1].rsplit("/", 1)[-1]]
    assert "/content/" in order[-1]
    assert import_files(pve) == set(), "the downloaded image is removed once the disk is imported"


def test_an_existing_image_is_reused_and_kept(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: a file already on the storage is neither fetched again nor removed."""
    spec = tpl_spec()
    pve.store_file("local", spec.image_filename, 1024, content="import")
    before = len(pve.requests)
    templates.create(spec)
    assert not requests_matching(pve, "POST", "/download-url$", since=before)
    assert import_files(pve) == {f"import/{spec.image_filename}"}, "a file that was there before is never deleted"


def test_keep_image(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: keep_image leaves the downloaded file on the storage."""
    spec = tpl_spec(keep_image=True)
    templates.create(spec)
    assert import_files(pve) == {f"import/{spec.image_filename}"}


def test_storage_without_import_content_fails_before_any_download(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: the storage's content types decide; nothing is downloaded."""
    pve.storages["local"]["content"] = "iso,vztmpl,backup"
    before = len(pve.requests)
    with pytest.raises(ProxmoxValidationError, match=r"does not accept the 'import' content type.*Content > Import"):
        templates.create(tpl_spec())
    assert not requests_matching(pve, "POST", "/download-url$|/qemu$", since=before)


def test_failed_conversion_rolls_back_the_vm_and_the_image(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: an injected template error; the VM, its disks and the image are gone."""
    pve.fail("POST", "/nodes/pve1/qemu/9100/template", error="you_can_t_convert_template_2")
    with pytest.raises(ProxmoxError, match="convert a VM to template"):
        templates.create(tpl_spec())
    assert pve.vm(9100) is None
    assert import_files(pve) == set()
    assert not [v for v in pve.storages["local-lvm"]["volumes"] if "9100" in v], "no disk of VM 9100 is left"


def test_failed_create_task_leaves_nothing(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: an injected create task error; no VM and no image are left."""
    pve.fail("POST", "/nodes/pve1/qemu", error="unable_parse_drive_interface", times=1)
    with pytest.raises(ProxmoxError, match="unable to parse drive interface"):
        templates.create(tpl_spec())
    assert pve.vm(9100) is None
    assert import_files(pve) == set()


def test_fixed_vmid_taken_by_a_foreign_vm(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: a seeded template without our marker is never touched."""
    before = len(pve.requests)
    with pytest.raises(ProxmoxAlreadyExistsError, match="VMID 9000 is taken by 'ubuntu-2404-pve1'"):
        templates.create(tpl_spec(vmid=9000))
    assert pve.vm(9000).template is True and "managed by pulumi" not in pve.vm(9000).config.get("description", "")
    assert not requests_matching(pve, "POST", "/download-url$", since=before)


def test_automatic_vmid_from_the_range(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: /cluster/nextid and the VMs the simulator holds."""
    state = templates.create(tpl_spec(vmid=None, vmid_range={"start": 9000, "end": 9010}))
    assert state.vmid == 9002  # 9000 and 9001 are the seeded templates
    assert pve.vm(9002).template is True


def test_a_retried_create_adopts_its_own_template(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: the marker in the description identifies our finished template."""
    templates.create(tpl_spec())
    before = len(pve.requests)
    again = templates.create(tpl_spec())
    assert again.adopted is True and again.vmid == 9100
    assert not requests_matching(pve, "POST", "/download-url$|/qemu$|/template$", since=before)


def test_a_half_made_template_from_an_interrupted_run_is_rebuilt(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: a marked VM that is no template is destroyed and rebuilt."""
    pve.add_vm(
        9100, "ubuntu-2404-kube", node="pve1", config={"description": description_with_marker("", OWNER, MARKER)}
    )
    state = templates.create(tpl_spec())
    assert state.adopted is False
    assert pve.vm(9100).template is True and "import-from" in pve.vm(9100).config["scsi0"]


def test_read_update_and_delete(pve: Any, templates: TemplateOperations) -> None:
    """Stateful: drift on refresh, config update, ownership checks, destroy."""
    spec = tpl_spec()
    templates.create(spec)

    pve.vm(9100).config["tags"] = "k8s;manual;ubuntu-2404-kube"
    found = templates.read(9100, spec)
    assert found is not None
    state, refreshed = found
    assert state.tags == ["k8s", "manual", "ubuntu-2404-kube"] and refreshed.tags == (
        "k8s",
        "manual",
        "ubuntu-2404-kube",
    )

    new = tpl_spec(tags=["k8s"], cores=4, description="ubuntu 24.04 for kubernetes")
    templates.update(9100, spec, new)
    cfg = pve.vm(9100).config
    assert cfg["tags"] == "k8s" and str(cfg["cores"]) == "4"
    assert cfg["description"] == description_with_marker("ubuntu 24.04 for kubernetes", OWNER, MARKER)

    other = tpl_spec(marker="f" * 32)
    assert templates.read(9100, other) is None, "a template without our marker is not ours"
    templates.delete(9100, other)
    assert pve.vm(9100) is not None, "delete never touches a template that is not ours"

    templates.delete(9100, new)
    assert pve.vm(9100) is None
    assert templates.read(9100, new) is None
    templates.delete(9100, new)  # already gone is fine


def test_delete_with_linked_clones(pve: Any, templates: TemplateOperations, client: ProxmoxClient) -> None:
    """The simulator deletes a template that linked clones use (PVE refuses); the hint is shown on PVE's error."""
    spec = tpl_spec()
    templates.create(spec)
    pve.fail("DELETE", "/nodes/pve1/qemu/9100", error="base_volume_still_use_linked", times=1)
    with pytest.raises(ProxmoxError, match="still has linked clones"):
        templates.delete(9100, spec)
    assert pve.vm(9100) is not None

    upid = client.post("/nodes/pve1/qemu/9100/clone", newid=200, full=0)
    client.wait_task(upid, timeout=10)
    templates.delete(9100, spec)
    assert pve.vm(9100) is None and pve.vm(200) is not None  # a simulator gap: real PVE keeps the template


def test_template_inputs_are_validated_locally() -> None:
    """Local validation only: no request."""
    for field, value, problem in (
        ("image_url", "ftp://x/a.img", "image_url"),
        ("image_url", "https://x/image.iso", "cannot tell the disk format"),
        ("image_checksum", "sha256:abc", "64 hex digits"),
        ("image_checksum", "crc32:abcd", "algorithm"),
        ("image_filename", "noble.img", r"\.qcow2"),
        ("vmid", 99, "from 100"),
        ("vlan", 5000, "from 1 to 4094"),
        ("tags", ["bad tag"], "not Proxmox tags"),
        ("description", "x [managed by pulumi: y]", "footer"),
        ("marker", None, "marker"),
    ):
        with pytest.raises(TemplateSpecError, match=problem):
            tpl_spec(**{field: value})


def test_template_provider_end_to_end(pve: Any, configured: None) -> None:
    """Stateful: the dynamic provider's check/diff/create/update/read/delete on a built template."""
    pve.storages["local"]["content"] = "iso,vztmpl,backup,import"
    provider = ProxmoxTemplateProvider()
    raw = {k: v for k, v in tpl_spec().to_inputs().items() if k != "marker"}
    checked = provider.check({}, raw)
    assert not checked.failures
    inputs = checked.inputs
    assert len(inputs["marker"]) == 32

    created = provider.create(inputs)
    state = outs(created)
    assert created.id == "pve1/9100" and state["vmid"] == 9100

    # in place: tags; replace: the image; a fixed VMID is deleted before its replacement is built
    assert provider.diff("pve1/9100", state, {**inputs, "tags": ["k8s"]}).replaces == []
    replace = provider.diff("pve1/9100", state, {**inputs, "image_url": URL.replace("noble", "jammy")})
    assert replace.replaces is not None and "image_url" in replace.replaces
    assert replace.delete_before_replace is True
    assert provider.diff("pve1/9100", state, inputs).changes is False
    # a replacement gets a fresh marker, an in-place change keeps it
    jammy = {**raw, "image_url": URL.replace("noble", "jammy")}
    assert provider.check(state, jammy).inputs["marker"] != inputs["marker"]
    assert provider.check(state, {**raw, "tags": ["k8s"]}).inputs["marker"] == inputs["marker"]

    updated = outs(provider.update("pve1/9100", state, {**inputs, "tags": ["k8s"], "keep_image": True}))
    assert pve.vm(9100).config["tags"] == "k8s" and updated["keep_image"] is True

    pve.vm(9100).config["name"] = "renamed-by-hand"
    read = provider.read("pve1/9100", updated)
    assert read.id == "pve1/9100" and read.inputs is not None and read.inputs["name"] == "renamed-by-hand"

    provider.delete("pve1/9100", updated)
    assert pve.vm(9100) is None
    assert provider.read("pve1/9100", updated).id is None
