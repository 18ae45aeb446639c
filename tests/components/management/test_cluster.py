"""ManagementCluster, its kubernetes provider and the kubeadm bootstrap scripts.

The component runs under ``pulumi.runtime.set_mocks`` with a monitor that records every
``RegisterResource`` request: type, name, parent, dependencies, ``additionalSecretOutputs`` and the
inputs *as sent*, so secret inputs still carry Pulumi's secret signature. Dynamic resources
(``ProxmoxVm``) register as ``pulumi-python:dynamic:Resource``, commands as ``command:remote:Command``;
the mocks answer the commands' ``stdout`` (join credentials, a kubeconfig) like the nodes would.

No VM exists here: the scripts are checked with shellcheck and ``bash -n``, and the idempotency of
``kubeadm-init.sh``/``kubeadm-join.sh`` and the output contract of ``join-credentials.sh`` are run
against fake ``kubeadm``/``kubectl`` binaries in a scratch ``K8S_DIR``. Whether kubeadm accepts the
rendered configuration and kube-vip holds the address can only be shown on real VMs.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from components.k8s import cluster_provider, kubeconfig_server, require_plain_identifier
from components.management.cluster import (
    ManagementCluster,
    ManagementClusterArgs,
    plan_nodes,
    spread_over_nodes,
)
from config import (
    ManagementClusterConfig,
    NetworksConfig,
    NodeConfig,
    StackSecrets,
    load_stack_config,
)
from tools.recording import Recording, Registration, plaintext_strings
from tools.recording import record as shared_record

# ---------------------------------------------------------------------------------------------
# Recording harness

VM = "pulumi-python:dynamic:Resource"
COMMAND = "command:remote:Command"
PROVIDER = "pulumi:providers:kubernetes"
COMPONENT = "platform:cluster:ManagementCluster"

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXJrZXlmb3J0ZXN0aW5nb25seQ platform@example"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nprivate-key-material-4f1d\n-----END OPENSSH PRIVATE KEY-----\n"
TOKEN = "abcdef.0123456789abcdef"
CERT_KEY = "c0ffee" + "0" * 58
CA_HASH = "sha256:" + "ab" * 32
CLIENT_KEY = "client-key-data-9a8b7c"
KUBECONFIG = textwrap.dedent(
    f"""\
    apiVersion: v1
    kind: Config
    clusters:
    - name: mgmt
      cluster: {{server: "https://10.10.10.10:6443", certificate-authority-data: Y2E=}}
    contexts:
    - name: admin@mgmt
      context: {{cluster: mgmt, user: admin}}
    current-context: admin@mgmt
    users:
    - name: admin
      user: {{client-certificate-data: Y2VydA==, client-key-data: {CLIENT_KEY}}}
    """
)
EXTERNAL_KUBECONFIG = KUBECONFIG.replace("10.10.10.10", "byo.example.com")
SECRET_VALUES = (PRIVATE_KEY, TOKEN, CERT_KEY, CLIENT_KEY)


class NodeMocks(Mocks):
    """Answer like Proxmox and the nodes would: VMIDs for VMs, stdout for commands."""

    def __init__(self) -> None:
        self.next_vmid = 100_000

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == VM:
            self.next_vmid += 1
            state.update(vmid=self.next_vmid, current_node=args.inputs["node"], status="running")
            return f"{args.inputs['node']}/{self.next_vmid}", state
        if args.typ == COMMAND:
            if args.name.endswith("-join-credentials"):
                stdout = json.dumps({"token": TOKEN, "caCertHash": CA_HASH, "certificateKey": CERT_KEY}) + "\n"
            elif args.name.endswith("-kubeconfig"):
                stdout = KUBECONFIG
            else:
                stdout = "ok\n"
            state.update(stdout=stdout, stderr="")
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def record(program: Callable[[], object]) -> Recording:
    """Run ``program`` under the shared recording harness with mocks that answer like the nodes."""
    return shared_record(program, mocks=NodeMocks())


# ---------------------------------------------------------------------------------------------
# Sample inputs

NETWORKS = NetworksConfig.model_validate(
    {
        "management": {
            "bridge": "vmbr0",
            "cidr": "10.10.10.0/24",
            "gateway": "10.10.10.1",
            "dnsServers": ["10.10.10.1", "10.10.10.2"],
        }
    }
)
NODES = tuple(NodeConfig(name=f"pve{i}", storages=("local-lvm",)) for i in (1, 2, 3))


def mc_config(**overrides: Any) -> ManagementClusterConfig:
    """A managementCluster section: 3 control planes, 2 workers, addresses from .20, VIP .10."""
    raw: dict[str, Any] = {
        "controlPlanes": {"count": 3},
        "workers": {"count": 2},
        "ipRange": {"start": "10.10.10.20", "end": "10.10.10.39"},
        "controlPlaneEndpoint": "10.10.10.10",
        "sshPublicKeys": [SSH_KEY],
        **overrides,
    }
    return ManagementClusterConfig.model_validate(raw)


def make_args(**kw: Any) -> ManagementClusterArgs:
    """Args of a bootstrapped cluster unless overridden."""
    base: dict[str, Any] = {
        "config": mc_config(),
        "networks": NETWORKS,
        "nodes": NODES,
        "template_vmid": 9000,
        "ssh_private_key": PRIVATE_KEY,  # plain on purpose: the component must make it secret
    }
    base.update(kw)
    return ManagementClusterArgs(**base)


def build(**kw: Any) -> Recording:
    """Record a ManagementCluster named ``mgmt`` built from ``make_args(**kw)``."""
    return record(lambda: ManagementCluster("mgmt", make_args(**kw)))


def commands(rec: Recording) -> dict[str, Registration]:
    """Commands by logical name."""
    return {r.name: r for r in rec.of_type(COMMAND)}


def vms(rec: Recording) -> dict[str, Registration]:
    """VMs by VM name."""
    return {r.inputs["name"]: r for r in rec.of_type(VM)}


# ---------------------------------------------------------------------------------------------
# Resources, names, parents


def test_three_control_planes_and_two_workers_register_vms_commands_and_one_provider() -> None:
    rec = build()
    assert sorted(vms(rec)) == ["mgmt-cp-1", "mgmt-cp-2", "mgmt-cp-3", "mgmt-worker-1", "mgmt-worker-2"]
    assert sorted(r.name for r in rec.of_type(VM)) == [f"mgmt-{n}" for n in sorted(vms(rec))]
    assert sorted(commands(rec)) == sorted(
        [
            *(f"mgmt-prepare-{n}" for n in vms(rec)),
            "mgmt-init",
            "mgmt-join-credentials",
            "mgmt-join-mgmt-cp-2",
            "mgmt-join-mgmt-cp-3",
            "mgmt-join-mgmt-worker-1",
            "mgmt-join-mgmt-worker-2",
            "mgmt-kubeconfig",
        ]
    )
    assert [r.name for r in rec.of_type(PROVIDER)] == ["mgmt-k8s"]
    assert [r.name for r in rec.of_type(COMPONENT)] == ["mgmt"]


def test_every_child_is_parented_to_the_component() -> None:
    rec = build()
    component = rec.named("mgmt")
    children = [r for r in rec.registrations if r is not component]
    assert len(children) == 5 + 12 + 1
    assert {r.parent for r in children} == {component.urn}


def test_vm_inputs_carry_template_sizes_tags_cloud_init_and_the_management_nic() -> None:
    rec = build(config=mc_config(controlPlanes={"count": 3, "cores": 4, "memoryMiB": 8192, "diskGiB": 50}))
    cp, worker = vms(rec)["mgmt-cp-1"].inputs, vms(rec)["mgmt-worker-2"].inputs
    assert cp["template_vmid"] == 9000 and cp["template_tags"] == []
    assert cp["vmid_range"] == {"start": 100_000, "end": 100_999}
    assert cp["cpu"] == {"cores": 4} and cp["memory_mib"] == 8192 and cp["disks"] == {"scsi0": {"size_gib": 50}}
    assert (
        worker["cpu"] == {"cores": 4}
        and worker["memory_mib"] == 8192
        and worker["disks"] == {"scsi0": {"size_gib": 60}}
    )
    assert sorted(cp["tags"]) == ["control-plane", "k8s", "mgmt"]
    assert sorted(worker["tags"]) == ["k8s", "mgmt", "worker"]
    assert cp["nics"] == {"net0": {"bridge": "vmbr0", "model": "virtio", "mtu": 1500}}
    assert cp["cloud_init"] == {
        "user": "ubuntu",
        "ssh_keys": [SSH_KEY],
        "ip_configs": {"net0": {"ipv4": "10.10.10.20/24", "gateway4": "10.10.10.1"}},
        "dns_servers": ["10.10.10.1", "10.10.10.2"],
    }
    assert cp["on_boot"] is True
    assert "cloud_init_password" not in cp or cp["cloud_init_password"] is None


def test_data_and_storage_networks_become_net1_and_net2() -> None:
    networks = NetworksConfig.model_validate(
        {
            **NETWORKS.model_dump(mode="json", by_alias=True),
            "data": {"bridge": "vmbr1", "vlan": 20, "cidr": "10.10.20.0/24"},
            "storage": {"bridge": "vmbr2", "cidr": "10.10.30.0/24", "mtu": 9000},
        }
    )
    rec = build(networks=networks)
    nics = vms(rec)["mgmt-worker-1"].inputs["nics"]
    assert nics == {
        "net0": {"bridge": "vmbr0", "model": "virtio", "mtu": 1500},
        "net1": {"bridge": "vmbr1", "model": "virtio", "mtu": 1500, "vlan": 20},
        "net2": {"bridge": "vmbr2", "model": "virtio", "mtu": 9000},
    }
    assert vms(build())["mgmt-worker-1"].inputs["nics"].keys() == {"net0"}


GROUPS = {"management": "k8s-mgmt", "data": "k8s-data", "storage": "k8s-storage"}
ALL_NETWORKS = NetworksConfig.model_validate(
    {
        **NETWORKS.model_dump(mode="json", by_alias=True),
        "data": {"bridge": "vmbr1", "vlan": 20, "cidr": "10.10.20.0/24"},
        "storage": {"bridge": "vmbr2", "cidr": "10.10.30.0/24", "mtu": 9000},
    }
)


def build_with_groups(networks: NetworksConfig = ALL_NETWORKS, **kw: Any) -> Recording:
    """The cluster with the security groups passed by name and (stand-ins for) their resources in depends_on."""

    def program() -> None:
        stand_ins = [
            pulumi.CustomResource("test:proxmox:SecurityGroup", f"fw-{net}", {"group": group})
            for net, group in GROUPS.items()
        ]
        ManagementCluster("mgmt", make_args(networks=networks, security_groups=GROUPS, depends_on=stand_ins, **kw))

    return record(program)


def test_each_nic_binds_its_networks_security_group_behind_inbound_drop() -> None:
    rec = build_with_groups()
    for name, vm in vms(rec).items():
        assert vm.inputs["firewall"] == {
            "enabled": True,
            "policy_in": "DROP",
            "policy_out": "ACCEPT",
            "groups": {"net0": ["k8s-mgmt"], "net1": ["k8s-data"], "net2": ["k8s-storage"]},
        }, name
        assert set(vm.inputs["firewall"]["groups"]) == set(vm.inputs["nics"]), name
    # Only the networks a VM has a NIC on: no data network, no net1 and no data group.
    only_storage = NetworksConfig.model_validate(
        {k: v for k, v in ALL_NETWORKS.model_dump(mode="json", by_alias=True).items() if k != "data"}
    )
    cp = vms(build_with_groups(only_storage))["mgmt-cp-1"].inputs
    assert cp["firewall"]["groups"] == {"net0": ["k8s-mgmt"], "net2": ["k8s-storage"]}
    assert set(cp["nics"]) == {"net0", "net2"}


def test_every_vm_depends_on_every_security_group() -> None:
    rec = build_with_groups()
    stand_ins = [rec.named(f"fw-{net}") for net in GROUPS]
    for name, vm in vms(rec).items():
        for group in stand_ins:
            assert vm.depends_on(group), f"{name} does not wait for {group.name}"


def test_without_security_groups_the_vm_firewall_is_not_managed() -> None:
    for vm in build().of_type(VM):
        assert vm.inputs.get("firewall") is None, vm.name


def test_security_groups_must_cover_every_nic_and_name_known_networks() -> None:
    with pytest.raises(ValueError, match="no group for the storage network"):
        make_args(networks=ALL_NETWORKS, security_groups={"management": "k8s-mgmt", "data": "k8s-data"})
    with pytest.raises(ValueError, match="unknown networks"):
        make_args(security_groups={"management": "k8s-mgmt", "tenant": "k8s-t"})
    # A group for a network the VMs have no NIC on is simply not bound.
    args = make_args(security_groups=GROUPS)
    assert args.firewall() == {
        "enabled": True,
        "policy_in": "DROP",
        "policy_out": "ACCEPT",
        "groups": {"net0": ["k8s-mgmt"]},
    }


def test_a_new_template_never_replaces_the_running_vms() -> None:
    for vm in build().of_type(VM):
        assert sorted(vm.ignore_changes) == ["template_tags", "template_vmid"], vm.name


def test_template_by_tags_is_passed_instead_of_a_vmid() -> None:
    rec = build(template_vmid=None, template_tags=("ubuntu-2404", "k8s"))
    vm = vms(rec)["mgmt-cp-1"].inputs
    assert "template_vmid" not in vm
    assert vm["template_tags"] == ["ubuntu-2404", "k8s"]


# ---------------------------------------------------------------------------------------------
# Placement and addresses


def test_placement_spreads_round_robin_with_equal_weights() -> None:
    nodes = [("pve1", 1), ("pve2", 1), ("pve3", 1)]
    assert spread_over_nodes(3, nodes) == ("pve1", "pve2", "pve3")
    assert spread_over_nodes(5, nodes) == ("pve1", "pve2", "pve3", "pve1", "pve2")


def test_placement_follows_weights_and_keeps_prefixes() -> None:
    nodes = [("a", 1), ("b", 3)]
    six = spread_over_nodes(6, nodes)
    assert six == ("b", "a", "b", "b", "b", "a")
    for n in range(7):
        assert spread_over_nodes(n, nodes) == six[:n]
    assert spread_over_nodes(8, nodes).count("b") == 6


def test_placement_refuses_no_nodes_bad_weights_and_duplicates() -> None:
    assert spread_over_nodes(0, []) == ()
    with pytest.raises(ValueError, match="no Proxmox node"):
        spread_over_nodes(1, [])
    with pytest.raises(ValueError, match="at least 1"):
        spread_over_nodes(1, [("a", 0)])
    with pytest.raises(ValueError, match="duplicate"):
        spread_over_nodes(1, [("a", 1), ("a", 2)])


def test_component_places_control_planes_on_distinct_nodes_and_workers_as_their_own_sequence() -> None:
    rec = build()
    placed = {name: r.inputs["node"] for name, r in vms(rec).items()}
    assert placed == {
        "mgmt-cp-1": "pve1",
        "mgmt-cp-2": "pve2",
        "mgmt-cp-3": "pve3",
        "mgmt-worker-1": "pve1",
        "mgmt-worker-2": "pve2",
    }
    assert placed == {name: r.inputs["node"] for name, r in vms(build()).items()}  # deterministic


def test_node_weights_and_the_management_node_list_drive_placement() -> None:
    nodes = (NODES[0], NodeConfig(name="pve3", storages=("local-lvm",), weight=2))
    plan = plan_nodes(cluster_name="mgmt", config=mc_config(workers={"count": 3}), networks=NETWORKS, nodes=nodes)
    assert [n.proxmox_node for n in plan if n.role == "control-plane"] == ["pve3", "pve1", "pve3"]
    assert [n.proxmox_node for n in plan if n.role == "worker"] == ["pve3", "pve1", "pve3"]


def test_static_addresses_control_planes_first_then_workers() -> None:
    plan = plan_nodes(cluster_name="mgmt", config=mc_config(), networks=NETWORKS, nodes=NODES)
    assert [(n.name, n.address) for n in plan] == [
        ("mgmt-cp-1", "10.10.10.20"),
        ("mgmt-cp-2", "10.10.10.21"),
        ("mgmt-cp-3", "10.10.10.22"),
        ("mgmt-worker-1", "10.10.10.23"),
        ("mgmt-worker-2", "10.10.10.24"),
    ]
    rec = build()
    for node in plan:
        assert vms(rec)[node.name].inputs["cloud_init"]["ip_configs"]["net0"]["ipv4"] == f"{node.address}/24"
        assert commands(rec)[f"mgmt-prepare-{node.name}"].inputs["connection"]["host"] == node.address


def test_too_small_ip_range_is_refused() -> None:
    small = mc_config(ipRange={"start": "10.10.10.20", "end": "10.10.10.23"})
    with pytest.raises(ValueError, match="holds 4 addresses; 5 VMs"):
        make_args(config=small)


# ---------------------------------------------------------------------------------------------
# Secrets


def test_credentials_and_kubeconfig_commands_keep_stdout_secret_and_unlogged() -> None:
    cmds = commands(build())
    for name in ("mgmt-join-credentials", "mgmt-kubeconfig"):
        assert "stdout" in cmds[name].additional_secret_outputs
        assert cmds[name].inputs["logging"] == "stderr"
    assert "stdout" not in cmds["mgmt-init"].additional_secret_outputs
    assert all(c.inputs["addPreviousOutputInEnv"] is False for c in cmds.values())


def test_kubeconfig_output_and_provider_input_are_secret() -> None:
    def program() -> object:
        mc = ManagementCluster("mgmt", make_args())
        assert mc.kubeconfig is not None
        pulumi.CustomResource("test:index:Sink", "sink", {"value": mc.kubeconfig})
        return mc.kubeconfig.apply(lambda kc: kc == KUBECONFIG or pytest.fail("kubeconfig is not the stdout"))

    rec = record(program)
    assert rpc.is_rpc_secret(rec.named("sink").raw_inputs["value"])
    provider = rec.named("mgmt-k8s")
    assert rpc.is_rpc_secret(provider.raw_inputs["kubeconfig"])
    assert provider.inputs["kubeconfig"] == KUBECONFIG


def test_join_scripts_are_secret_and_no_secret_appears_in_plaintext() -> None:
    rec = build()
    for name, cmd in commands(rec).items():
        connection = cmd.raw_inputs["connection"]
        assert rpc.is_rpc_secret(connection) or rpc.is_rpc_secret(connection["privateKey"]), name
        assert cmd.inputs["connection"]["privateKey"] == PRIVATE_KEY
        if name.startswith("mgmt-join-mgmt-"):
            assert rpc.is_rpc_secret(cmd.raw_inputs["stdin"]), name
            assert TOKEN in cmd.inputs["stdin"]
    for reg in rec.registrations:
        for text in plaintext_strings(reg.raw_inputs):
            for secret in SECRET_VALUES:
                assert secret not in text, f"{reg.name} carries a secret in plaintext"


def test_control_plane_joins_carry_the_certificate_key_and_workers_do_not() -> None:
    cmds = commands(build())
    cp = yaml.safe_load(_embedded(cmds["mgmt-join-mgmt-cp-2"].inputs["stdin"], "KUBEADM_CONFIG"))
    worker = yaml.safe_load(_embedded(cmds["mgmt-join-mgmt-worker-1"].inputs["stdin"], "KUBEADM_CONFIG"))
    assert cp["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.10.10.21", "bindPort": 6443},
        "certificateKey": CERT_KEY,
    }
    assert "controlPlane" not in worker
    for join in (cp, worker):
        assert join["discovery"]["bootstrapToken"] == {
            "apiServerEndpoint": "10.10.10.10:6443",
            "token": TOKEN,
            "caCertHashes": [CA_HASH],
        }
    assert "\nKUBE_VIP_MANIFEST=" in cmds["mgmt-join-mgmt-cp-2"].inputs["stdin"]
    assert "\nKUBE_VIP_MANIFEST=" not in cmds["mgmt-join-mgmt-worker-1"].inputs["stdin"]


def test_credentials_ask_for_a_certificate_key_only_when_control_planes_join() -> None:
    three = commands(build())["mgmt-join-credentials"].inputs["stdin"]
    one = commands(build(config=mc_config(controlPlanes={"count": 1})))["mgmt-join-credentials"].inputs["stdin"]
    assert _embedded(three, "CERTIFICATE_KEY") == "true"
    assert _embedded(one, "CERTIFICATE_KEY") == "false"


# ---------------------------------------------------------------------------------------------
# Ordering


def test_every_command_depends_on_its_vm_and_reruns_when_it_is_replaced() -> None:
    rec = build()
    by_address = {
        n.address: n.name for n in plan_nodes(cluster_name="mgmt", config=mc_config(), networks=NETWORKS, nodes=NODES)
    }
    by_vm = vms(rec)
    for name, cmd in commands(rec).items():
        vm_name = by_address[cmd.inputs["connection"]["host"]]
        vm = by_vm[vm_name]
        assert cmd.depends_on(vm), name
        assert cmd.inputs["triggers"][0] == vm.id, name
        assert vm.id.startswith(f"{vm.inputs['node']}/")
        if name.startswith("mgmt-prepare-"):
            assert name == f"mgmt-prepare-{vm_name}"
        if name in ("mgmt-init", "mgmt-join-credentials", "mgmt-kubeconfig"):
            assert vm_name == "mgmt-cp-1", name


def test_init_after_prepare_and_every_join_after_init_and_the_credentials() -> None:
    cmds = commands(build())
    init, creds = cmds["mgmt-init"], cmds["mgmt-join-credentials"]
    assert init.depends_on(cmds["mgmt-prepare-mgmt-cp-1"])
    assert creds.depends_on(init)
    joins = [c for n, c in cmds.items() if n.startswith("mgmt-join-mgmt-")]
    assert len(joins) == 4
    for join in joins:
        node = join.name.removeprefix("mgmt-join-")
        assert join.depends_on(init) and join.depends_on(creds), join.name
        assert join.depends_on(cmds[f"mgmt-prepare-{node}"]), join.name


def test_control_planes_join_one_after_the_other_and_workers_do_not_wait_for_them() -> None:
    cmds = commands(build())
    assert cmds["mgmt-join-mgmt-cp-3"].depends_on(cmds["mgmt-join-mgmt-cp-2"])
    assert not cmds["mgmt-join-mgmt-cp-2"].depends_on(cmds["mgmt-join-mgmt-cp-3"])
    for worker in ("mgmt-join-mgmt-worker-1", "mgmt-join-mgmt-worker-2"):
        assert not cmds[worker].depends_on(cmds["mgmt-join-mgmt-cp-2"])


def test_kubeconfig_and_provider_come_after_every_join() -> None:
    rec = build()
    cmds = commands(rec)
    provider = rec.named("mgmt-k8s")
    kubeconfig = cmds["mgmt-kubeconfig"]
    assert provider.depends_on(kubeconfig)
    for name, cmd in cmds.items():
        if name.startswith("mgmt-join-mgmt-"):
            assert kubeconfig.depends_on(cmd), name
            assert provider.depends_on(cmd), name


def test_ready_resolves_only_in_the_bootstrapped_shape() -> None:
    seen: dict[str, Any] = {}

    def program() -> object:
        mc = ManagementCluster("mgmt", make_args())
        return pulumi.Output.all(mc.ready, mc.api_endpoint, mc.control_planes, mc.workers).apply(
            lambda v: seen.update(ready=v[0], endpoint=v[1], cps=v[2], workers=v[3])
        )

    record(program)
    assert seen["ready"] is True
    assert seen["endpoint"] == "https://10.10.10.10:6443"
    assert [(e["name"], e["node"], e["ip"]) for e in seen["cps"]] == [
        ("mgmt-cp-1", "pve1", "10.10.10.20"),
        ("mgmt-cp-2", "pve2", "10.10.10.21"),
        ("mgmt-cp-3", "pve3", "10.10.10.22"),
    ]
    assert all(isinstance(e["vmid"], int) and e["vmid"] > 100_000 for e in seen["cps"] + seen["workers"])
    assert [e["name"] for e in seen["workers"]] == ["mgmt-worker-1", "mgmt-worker-2"]


# ---------------------------------------------------------------------------------------------
# Bring your own, render mode, provider


def test_bring_your_own_creates_no_vm_and_no_command_only_the_provider() -> None:
    seen: dict[str, Any] = {}

    def program() -> object:
        mc = ManagementCluster(
            "mgmt",
            ManagementClusterArgs(
                config=ManagementClusterConfig(external=True),
                networks=NETWORKS,
                external_kubeconfig=pulumi.Output.secret(EXTERNAL_KUBECONFIG),
            ),
        )
        assert mc.nodes == () and mc.vms == {} and mc.api_server_host is None
        return mc.api_endpoint.apply(lambda e: seen.update(endpoint=e))

    rec = record(program)
    assert rec.of_type(VM) == [] and rec.of_type(COMMAND) == []
    provider = rec.named("mgmt-k8s")
    assert rpc.is_rpc_secret(provider.raw_inputs["kubeconfig"])
    assert provider.inputs["kubeconfig"] == EXTERNAL_KUBECONFIG
    assert provider.inputs["clusterIdentifier"] == "mgmt-external"
    assert "renderYamlToDirectory" not in provider.inputs
    assert seen["endpoint"] == "https://byo.example.com:6443"


def test_render_mode_creates_vms_but_no_command_and_a_rendering_provider() -> None:
    def program() -> object:
        mc = ManagementCluster("mgmt", make_args(bootstrap=False, render_dir="rendered", ssh_private_key=None))
        assert mc.kubeconfig is None
        return mc.ready

    rec = record(program)
    assert len(rec.of_type(VM)) == 5
    assert rec.of_type(COMMAND) == []
    provider = rec.named("mgmt-k8s")
    assert provider.inputs["renderYamlToDirectory"] == "rendered"
    assert provider.inputs.get("kubeconfig", "") == ""
    assert all(provider.depends_on(vm) for vm in rec.of_type(VM))


def test_vms_bootstrapped_elsewhere_get_no_command_and_a_live_provider_after_the_vms() -> None:
    kubeconfig = (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
        "    server: https://127.0.0.3:36443\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
        "users:\n- name: u\n  user: {token: not-a-real-token}\n"
    )

    def program() -> object:
        mc = ManagementCluster("mgmt", make_args(bootstrap=False, ssh_private_key=None, external_kubeconfig=kubeconfig))
        assert mc.kubeconfig is not None
        return mc.api_endpoint.apply(lambda url: seen.append(url))

    seen: list[str] = []
    rec = record(program)
    assert len(rec.of_type(VM)) == 5
    assert rec.of_type(COMMAND) == []
    provider = rec.named("mgmt-k8s")
    assert "renderYamlToDirectory" not in provider.inputs
    assert provider.inputs["clusterIdentifier"] == "mgmt"  # the same cluster as with kubeadm: no replacement
    assert all(provider.depends_on(vm) for vm in rec.of_type(VM))
    clear = [text for reg in rec.registrations for text in plaintext_strings(reg.raw_inputs)]
    assert clear and not any("not-a-real-token" in text for text in clear), "the kubeconfig went in the clear"
    assert seen == ["https://127.0.0.3:36443"]


def test_vms_bootstrapped_elsewhere_need_the_kubeconfig() -> None:
    with pytest.raises(ValueError, match="bootstrap: external needs the secret managementKubeconfig"):
        make_args(bootstrap=False, ssh_private_key=None)
    with pytest.raises(ValueError, match="only for a cluster bootstrapped elsewhere"):
        make_args(external_kubeconfig="apiVersion: v1")


def test_live_provider_has_a_plain_identifier_and_server_side_apply() -> None:
    provider = build().named("mgmt-k8s")
    assert provider.inputs["clusterIdentifier"] == "mgmt"
    assert not rpc.is_rpc_secret(provider.raw_inputs["clusterIdentifier"])
    assert provider.inputs["enableServerSideApply"] == "true"
    assert "renderYamlToDirectory" not in provider.inputs


def test_cluster_provider_modes_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")

    def program() -> None:
        cluster_provider("render", cluster_identifier="c1", render_dir="out")
        with pytest.raises(ValueError, match="exactly one"):
            cluster_provider("both", cluster_identifier="c1", kubeconfig="x", render_dir="out")
        with pytest.raises(ValueError, match="exactly one"):
            cluster_provider("neither", cluster_identifier="c1")
        with pytest.raises(TypeError, match="plain str"):
            cluster_provider("late", cluster_identifier=pulumi.Output.from_input("c1"), kubeconfig="x")  # type: ignore[arg-type]

    rec = record(program)
    render = rec.named("render")
    assert render.inputs["kubeconfig"] == ""  # the ambient $KUBECONFIG never reaches a render provider
    assert render.inputs["renderYamlToDirectory"] == "out"
    assert render.inputs["enableServerSideApply"] == "true"
    assert [r.name for r in rec.of_type(PROVIDER)] == ["render"]


def test_identifier_and_kubeconfig_server_helpers() -> None:
    assert require_plain_identifier("mgmt.prod/eu-1") == "mgmt.prod/eu-1"
    for bad in ("", "-x", "a b", None):
        with pytest.raises(ValueError):
            require_plain_identifier(bad)
    assert kubeconfig_server(KUBECONFIG) == "https://10.10.10.10:6443"
    with pytest.raises(ValueError) as err:
        kubeconfig_server(KUBECONFIG.replace("https://", "http://"))
    assert CLIENT_KEY not in str(err.value)
    with pytest.raises(ValueError, match="not valid YAML"):
        kubeconfig_server("a: [")


# ---------------------------------------------------------------------------------------------
# Args


def test_args_refuse_incomplete_combinations() -> None:
    with pytest.raises(ValueError, match="sshPrivateKey"):
        make_args(ssh_private_key=None)
    with pytest.raises(ValueError, match="sshPublicKeys"):
        make_args(config=mc_config(sshPublicKeys=[]))
    with pytest.raises(ValueError, match="render_dir"):
        make_args(bootstrap=False)
    with pytest.raises(ValueError, match="exactly one of template_vmid or template_tags"):
        make_args(template_vmid=None)
    with pytest.raises(ValueError, match="controlPlaneEndpoint"):
        make_args(config=mc_config(controlPlaneEndpoint=None))
    with pytest.raises(ValueError, match="managementKubeconfig"):
        ManagementClusterArgs(config=ManagementClusterConfig(external=True), networks=NETWORKS)
    with pytest.raises(ValueError, match=r"v1\.31 or later"):
        make_args(kubernetes_version="v1.30.4")
    assert make_args(bootstrap=False, render_dir="out", ssh_private_key=None).bootstrap is False


STACK: dict[str, Any] = {
    "proxmox": {"endpoint": "https://pve1.example.com:8006", "tokenId": "pulumi@pve!platform", "clusterName": "lab"},
    "nodes": [
        {"name": "pve1", "storages": ["local-lvm"]},
        {"name": "pve2", "storages": ["local-lvm"], "weight": 2},
        {"name": "pve3", "storages": ["local-lvm"]},
    ],
    "templates": {"ubuntu-2404-kube": {"tags": ["ubuntu-2404", "kube"]}, "pinned": {"vmid": 9000, "node": "pve1"}},
    "networks": NETWORKS.model_dump(mode="json", by_alias=True),
    "storage": [{"storage": "local-lvm", "storageClass": "local", "default": True}],
    "managementCluster": {
        "controlPlanes": {"count": 1},
        "workers": {"count": 2},
        "nodes": ["pve2", "pve3"],
        "ipRange": {"start": "10.10.10.20", "end": "10.10.10.29"},
        "controlPlaneEndpoint": "10.10.10.10",
        "sshPublicKeys": [SSH_KEY],
    },
}


def _secrets(**kw: Any) -> StackSecrets:
    base: dict[str, Any] = {
        "proxmox_token_secret": "t",
        "management_kubeconfig": None,
        "ssh_private_key": PRIVATE_KEY,
        "csi_encryption_passphrase": None,
    }
    return StackSecrets(**{**base, **kw})


def test_from_stack_maps_template_nodes_and_render_mode() -> None:
    cfg = load_stack_config(STACK)
    args = ManagementClusterArgs.from_stack(cfg, _secrets())
    assert args.bootstrap is True and args.render_dir is None
    assert [n.name for n in args.nodes] == ["pve2", "pve3"]
    assert args.template_vmid is None and tuple(args.template_tags) == ("ubuntu-2404", "kube")
    assert args.kubernetes_version == cfg.versions.kubernetes

    pinned = {**STACK, "managementCluster": {**STACK["managementCluster"], "template": "pinned"}}
    assert ManagementClusterArgs.from_stack(load_stack_config(pinned), _secrets()).template_vmid == 9000

    local = load_stack_config({**STACK, "localRender": ".local/rendered"})
    local_args = ManagementClusterArgs.from_stack(local, _secrets(ssh_private_key=None))
    assert local_args.bootstrap is False and local_args.render_dir == ".local/rendered"


def test_from_stack_external_needs_only_the_kubeconfig() -> None:
    raw = {k: v for k, v in STACK.items() if k != "managementCluster"} | {"managementCluster": {"external": True}}
    args = ManagementClusterArgs.from_stack(load_stack_config(raw), _secrets(management_kubeconfig=KUBECONFIG))
    assert args.config.external and args.external_kubeconfig == KUBECONFIG and not args.bootstrap


def _embedded(script: str, name: str) -> str:
    """The value a rendered script assigns to ``name``, as bash sees it on the node.

    The header (everything before ``common.sh``) is run by bash, then the variable is printed.
    """
    header = script.split("\n# shellcheck shell=bash", 1)[0]
    out = subprocess.run(
        ["bash", "-c", f'{header}\nprintf "%s" "${{{name}}}"'], text=True, capture_output=True, check=True
    )
    return out.stdout
