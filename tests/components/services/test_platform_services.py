"""Platform-service components under pulumi mocks: wiring, ordering, providers and secrets.

The harness at the top (``record``, ``build_platform``) is also used by ``tests/conformance``: it
runs a program under ``pulumi.runtime.set_mocks`` with a monitor that records every
``RegisterResource`` request - type, name, parent, provider, explicit/implicit dependencies,
``additionalSecretOutputs`` and the inputs *as sent*, so secret inputs still carry Pulumi's secret
signature and can be asserted on. No Helm chart is fetched: chart contents are out of reach offline,
so these tests assert on what the program registers, not on what the charts would render.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pytest
import yaml
from pulumi.runtime import rpc

from components import k8s as k8s_util
from components.k8s import ChartInstall
from components.services.cluster_api import ClusterApi, ClusterApiArgs
from components.services.csi import CsiNode, CsiSnapshots, CsiStorageClass, ProxmoxCsi, ProxmoxCsiArgs
from components.services.kamaji import EtcdDataStore, Kamaji, KamajiArgs, MetalLbConfig, PostgresDataStore
from components.services.network import ClusterNetwork, ClusterNetworkArgs
from config.versions import (
    DEFAULT_VERSIONS,
    ChartRef,
    VersionOverrideError,
    kubernetes_minor,
    resolve_versions,
)
from tools.recording import (
    CHART,
    PROVIDER_NAME,
    RELEASE,
    Recording,
    plaintext_strings,
    record,
)

# ---------------------------------------------------------------------------------------------
# Recording harness

PROVIDER_TYPE = "pulumi:providers:kubernetes"

# Credential values the sample platform uses; none of them may ever appear outside a secret.
SECRET_VALUES = {
    "csi_token_secret": "csi-5b0c7c1e-token-secret",
    "capmox_token_secret": "capmox-91d2a3f4-token-secret",
    "luks_passphrase": "luks-correct-horse-battery",
    "pg_password": "pg-s3cr3t-password",
    "pg_username": "kamaji-pg-admin",
    "root_password": "root-pam-password-x",
    "github_token": "ghp_exampletoken123",
}
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n"


# ---------------------------------------------------------------------------------------------
# Sample platform (the wiring __main__ is expected to do)


def mgmt_provider() -> kubernetes.Provider:
    """The explicit provider every component receives."""
    return kubernetes.Provider(PROVIDER_NAME, kubeconfig=pulumi.Output.secret("{}"), cluster_identifier="mgmt")


def network_args(provider: kubernetes.Provider, **kw: Any) -> ClusterNetworkArgs:
    """Typical ClusterNetwork arguments."""
    base: dict[str, Any] = {
        "provider": provider,
        "api_server_host": "10.10.10.10",
        "control_plane_node_ips": ["10.10.10.11", "10.10.10.12", "10.10.10.13"],
        "excluded_cidrs": ["10.10.10.0/24"],
    }
    return ClusterNetworkArgs(**(base | kw))


def csi_args(provider: kubernetes.Provider, **kw: Any) -> ProxmoxCsiArgs:
    """Typical ProxmoxCsi arguments: local LVM-thin (encrypted), Ceph RBD (default), NFS backups."""
    base: dict[str, Any] = {
        "provider": provider,
        "proxmox_url": "https://pve.example:8006",
        "region": "pve-cluster-1",
        "token_id": pulumi.Output.secret("kubernetes-csi@pve!csi"),
        "token_secret": pulumi.Output.secret(SECRET_VALUES["csi_token_secret"]),
        "nodes": [
            CsiNode(name="mgmt-cp-1", proxmox_node="pve1"),
            CsiNode(name="mgmt-cp-2", proxmox_node="pve2"),
            CsiNode(name="mgmt-cp-3", proxmox_node="pve3"),
        ],
        "storage_classes": [
            CsiStorageClass(
                name="proxmox-local",
                storage="local-lvm",
                storage_type="lvmthin",
                ssd=True,
                cache="none",
                disk_iops=4000,
                disk_mbps=1000,
                encrypted=True,
                zones=["pve1", "pve2"],
            ),
            CsiStorageClass(name="proxmox-ceph", storage="ceph-vm", storage_type="rbd", fstype="xfs", default=True),
            CsiStorageClass(name="proxmox-nfs", storage="nfs-data", storage_type="nfs", backup=True),
        ],
        "luks_passphrase": pulumi.Output.secret(SECRET_VALUES["luks_passphrase"]),
    }
    return ProxmoxCsiArgs(**(base | kw))


def capi_args(provider: kubernetes.Provider, **kw: Any) -> ClusterApiArgs:
    """Typical ClusterApi arguments."""
    base: dict[str, Any] = {
        "provider": provider,
        "proxmox_url": "https://pve.example:8006/api2/json",
        "capmox_token_id": pulumi.Output.secret("capmox@pve!capi"),
        "capmox_token_secret": pulumi.Output.secret(SECRET_VALUES["capmox_token_secret"]),
    }
    return ClusterApiArgs(**(base | kw))


def postgres_datastore() -> PostgresDataStore:
    """An external PostgreSQL DataStore with TLS."""
    return PostgresDataStore(
        endpoints=["pg-rw.postgres.svc:5432"],
        username=pulumi.Output.secret(SECRET_VALUES["pg_username"]),
        password=pulumi.Output.secret(SECRET_VALUES["pg_password"]),
        ca_certificate=CA_PEM,
    )


@dataclass
class Platform:
    """The four components of one sample program."""

    network: ClusterNetwork
    csi: ProxmoxCsi
    capi: ClusterApi
    kamaji: Kamaji


def build_platform(*, render: bool = False, postgres: bool = False, full: bool = True) -> Platform:
    """Instantiate all platform services the way ``__main__`` wires them (call inside ``record``)."""
    provider = mgmt_provider()
    charts = ChartInstall(template=render)
    network = ClusterNetwork("net", network_args(provider, charts=charts, hubble=full))
    csi_extra: dict[str, Any] = {}
    capi_extra: dict[str, Any] = {}
    kamaji_extra: dict[str, Any] = {}
    if full:
        csi_extra = {
            "snapshots": CsiSnapshots(root_password=pulumi.Output.secret(SECRET_VALUES["root_password"])),
            "proxmox_ca_bundle": CA_PEM,
            "controller_vmid": 9999,
        }
        capi_extra = {
            "proxmox_ca_bundle": CA_PEM,
            "github_token": pulumi.Output.secret(SECRET_VALUES["github_token"]),
            "kubeadm_control_plane": True,
        }
        kamaji_extra = {"load_balancer": MetalLbConfig(addresses=["10.10.10.200-10.10.10.220"])}
    csi = ProxmoxCsi("csi", csi_args(provider, charts=charts, depends_on=network.ready, **csi_extra))
    capi = ClusterApi("capi", capi_args(provider, charts=charts, depends_on=network.ready, **capi_extra))
    assert capi.cert_manager is not None
    kamaji = Kamaji(
        "kamaji",
        KamajiArgs(
            provider=provider,
            charts=charts,
            datastore=postgres_datastore() if postgres else EtcdDataStore(storage_class="proxmox-ceph"),
            depends_on=[capi.cert_manager, *csi.storage_classes.values(), *network.ready],
            **kamaji_extra,
        ),
    )
    return Platform(network=network, csi=csi, capi=capi, kamaji=kamaji)


@pytest.fixture(scope="module")
def platform() -> Recording:
    """Everything on, live mode (helm.v3.Release), etcd DataStore."""
    return record(lambda: build_platform())


# ---------------------------------------------------------------------------------------------
# versions.py


def test_default_versions_follow_the_reference_matrix() -> None:
    v = DEFAULT_VERSIONS
    assert (v.capi_core, v.capmox, v.ipam_in_cluster, v.kamaji_control_plane_provider) == (
        "v1.12.8",
        "v0.9.0",
        "v1.1.0",
        "v0.20.0",
    )
    assert v.cilium.version.startswith("1.19.") and v.kube_ovn.version.startswith("v1.16.")
    assert v.proxmox_csi.version.startswith("0.5.") and v.proxmox_csi.is_oci
    assert v.kamaji_image_tag.endswith("-edge") and v.kamaji.version == "0.0.0+latest"
    assert kubernetes_minor(v.kubernetes) == "1.34"


def test_overrides_merge_strings_and_partial_chart_mappings() -> None:
    v = resolve_versions(
        {
            "cilium": "1.19.6",
            "kubeOvn": {"version": "v1.16.3"},
            "kamaji-image-tag": "26.9.1-edge",
            "proxmox_csi": {"repo": "oci://registry.lab/charts"},
        }
    )
    assert v.cilium == ChartRef(chart="cilium", repo="https://helm.cilium.io/", version="1.19.6")
    assert v.kube_ovn.version == "v1.16.3" and v.kube_ovn.chart == "kube-ovn"
    assert v.kamaji_image_tag == "26.9.1-edge"
    assert v.proxmox_csi.oci_reference == "oci://registry.lab/charts/proxmox-csi-plugin"
    assert DEFAULT_VERSIONS.cilium.version == "1.19.5", "defaults must not be mutated"
    assert resolve_versions(None) == DEFAULT_VERSIONS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ciliun": "1.19.6"}, r"unknown version key\(s\) ciliun; known keys: .*cilium"),
        ({"cilium": {"tag": "1.19.6"}}, r"unknown key\(s\) tag under cilium"),
        ({"cilium": "^1.19"}, "is a range"),
        ({"capmox": ""}, "non-empty string"),
        ({"capmox": 9}, "non-empty string"),
        ({"kamaji": {"repo": "http://insecure/charts"}}, "must start with https:// or oci://"),
        ({"kubernetes": "1.34"}, "must look like v1.34.8"),
    ],
)
def test_overrides_reject_unknown_keys_and_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(VersionOverrideError, match=message):
        resolve_versions(overrides)


def test_stack_config_version_keys_are_all_accepted() -> None:
    """The stack config's ``versions`` (camelCase) must map 1:1 onto Versions, with the same defaults."""
    from config import DEFAULT_VERSION_SET

    defaults = dict(DEFAULT_VERSION_SET)
    assert resolve_versions(defaults) == DEFAULT_VERSIONS
    assert resolve_versions({**defaults, "kubeOvn": "v1.16.3"}).kube_ovn.version == "v1.16.3"


def test_versions_flatten_for_a_stack_output() -> None:
    flat = DEFAULT_VERSIONS.as_dict()
    assert flat["cilium"] == "cilium@1.19.5"
    assert flat["capmox"] == "v0.9.0"
    assert set(flat) >= {"kubernetes", "cert_manager", "capi_operator", "kamaji_image_tag"}


# ---------------------------------------------------------------------------------------------
# URL normalisation (CAPMOX bare URL vs CSI /api2/json)


@pytest.mark.parametrize(
    "url", ["https://pve.example:8006", "https://pve.example:8006/", "https://pve.example:8006/api2/json/"]
)
def test_proxmox_urls_normalise_both_ways(url: str) -> None:
    assert k8s_util.proxmox_base_url(url) == "https://pve.example:8006"
    assert k8s_util.proxmox_api_url(url) == "https://pve.example:8006/api2/json"


@pytest.mark.parametrize(
    "url",
    [
        "http://pve.example:8006",
        "https://pve.example:8006/api2",
        "https://root:pw@pve.example:8006",
        "pve.example:8006",
        "https://pve.example:8006/api2/json?x=1",
    ],
)
def test_proxmox_urls_reject_insecure_or_odd_forms(url: str) -> None:
    with pytest.raises(ValueError, match="Proxmox URL"):
        k8s_util.proxmox_base_url(url)


# ---------------------------------------------------------------------------------------------
# Cross-cutting: providers, parents, names, secrets, render mode


def test_no_resource_uses_a_default_provider(platform: Recording) -> None:
    provider = platform.provider_urn()
    k8s = [r for r in platform.registrations if r.type.startswith("kubernetes:")]
    assert len(k8s) > 40
    for r in k8s:
        assert r.provider.startswith(provider + "::"), f"{r.type} {r.name} uses provider {r.provider!r}"
    assert [r.name for r in platform.of_type(PROVIDER_TYPE)] == [PROVIDER_NAME]


def test_children_are_parented_and_prefixed(platform: Recording) -> None:
    components = {r.urn: r for r in platform.registrations if r.type.startswith("platform:")}
    assert {r.type for r in components.values()} == {
        "platform:network:ClusterNetwork",
        "platform:storage:ProxmoxCsi",
        "platform:capi:ClusterApi",
        "platform:kamaji:Kamaji",
    }
    for r in platform.registrations:
        if r.type.startswith("kubernetes:"):
            parent = components.get(r.parent)
            assert parent is not None, f"{r.name} is not a child of a platform component"
            assert r.name.startswith(f"{parent.name}-"), f"{r.name} not prefixed with {parent.name}-"


def test_credentials_never_appear_in_plaintext(platform: Recording) -> None:
    for r in platform.registrations:
        plain = list(plaintext_strings(r.raw_inputs))
        for label, value in SECRET_VALUES.items():
            if label in ("pg_password", "pg_username"):
                continue  # the postgres variant has its own test
            leaks = [s for s in plain if value in s]
            assert not leaks, f"{label} leaks in plaintext through {r.type} {r.name}"


def test_every_credential_secret_is_a_pulumi_secret(platform: Recording) -> None:
    credential_secrets = [
        platform.named("csi-config"),
        platform.named("csi-luks"),
        *[r for r in platform.kind("Secret") if r.name.startswith("capi-") and r.name.endswith("-variables")],
    ]
    assert len(credential_secrets) >= 7  # CSI config, LUKS, CAPMOX + one github-token configSecret per provider
    for r in credential_secrets:
        assert rpc.is_rpc_secret(r.raw_inputs["stringData"]), f"{r.name}.stringData is not secret"
        assert {"data", "stringData"} <= set(r.additional_secret_outputs)


@pytest.mark.parametrize("render", [False, True])
def test_chart_resource_follows_render_mode(render: bool) -> None:
    rec = record(lambda: build_platform(render=render))
    releases, charts = rec.of_type(RELEASE), rec.of_type(CHART)
    used, unused = (charts, releases) if render else (releases, charts)
    assert not unused
    names = sorted(r.name for r in used)
    assert names == sorted(
        [
            "net-cilium",
            "net-kube-ovn",
            "csi-chart",
            "csi-snapshot-controller",
            "capi-cert-manager",
            "capi-capi-operator",
            "kamaji-chart",
            "kamaji-metallb",
        ]
    )
    for r in used:
        assert r.remote is render
        assert r.inputs["version"] and r.inputs["namespace"]
    cilium = rec.named("net-cilium").inputs
    assert cilium["chart"] == "cilium" and cilium["repositoryOpts"]["repo"] == "https://helm.cilium.io/"
    csi = rec.named("csi-chart").inputs
    assert csi["chart"] == "oci://ghcr.io/sergelogvinov/charts/proxmox-csi-plugin"
    assert "repositoryOpts" not in csi
    if not render:
        assert all(r.inputs["createNamespace"] is False for r in releases)


def test_components_refuse_anything_but_an_explicit_provider() -> None:
    def program() -> None:
        provider = mgmt_provider()
        args = network_args(provider)
        object.__setattr__(args, "provider", "default")
        ClusterNetwork("net", args)

    with pytest.raises(TypeError, match=r"explicit kubernetes\.Provider"):
        record(program)


# ---------------------------------------------------------------------------------------------
# ClusterNetwork


def test_cilium_goes_first_and_kube_ovn_depends_on_it(platform: Recording) -> None:
    cm = platform.named("net-cni-configuration")
    cilium = platform.named("net-cilium")
    kube_ovn = platform.named("net-kube-ovn")
    assert cilium.depends_on(cm)
    assert kube_ovn.depends_on(cilium)
    assert not cilium.depends_on(kube_ovn)
    assert platform.registrations.index(cilium) < platform.registrations.index(kube_ovn)
    # Waiting for Cilium would deadlock: its non-hostNetwork pods need Kube-OVN for an IP.
    assert cilium.inputs["skipAwait"] is True
    assert kube_ovn.inputs["skipAwait"] is False and kube_ovn.inputs["waitForJobs"] is True


def test_cni_chain_lives_in_ciliums_namespace(platform: Recording) -> None:
    cm = platform.named("net-cni-configuration").inputs
    cilium = platform.named("net-cilium").inputs
    assert cm["metadata"] == {"name": "cni-configuration", "namespace": cilium["namespace"]}
    chain = json.loads(cm["data"]["cni-config"])
    assert chain["name"] == "generic-veth"
    assert [p["type"] for p in chain["plugins"]] == ["kube-ovn", "portmap", "cilium-cni"]


def test_cilium_values_chain_onto_kube_ovn(platform: Recording) -> None:
    values = platform.named("net-cilium").inputs["values"]
    assert values["cni"] == {
        "chainingMode": "generic-veth",
        "chainingTarget": "kube-ovn",
        "customConf": True,
        "configMap": "cni-configuration",
    }
    assert values["routingMode"] == "native"
    assert values["enableIPv4Masquerade"] is False and values["enableIdentityMark"] is False
    assert values["devices"].split() == ["ens18", "ovn0", "genev_sys_6081"]
    assert values["kubeProxyReplacement"] is True
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("10.10.10.10", 6443)
    assert values["hubble"]["enabled"] is True


def test_kube_ovn_values_leave_policy_and_lb_to_cilium(platform: Recording) -> None:
    values = platform.named("net-kube-ovn").inputs["values"]
    assert values["func"]["ENABLE_NP"] is False and values["func"]["ENABLE_LB"] is False
    assert values["cni_conf"]["CNI_CONFIG_PRIORITY"] == "10"
    assert values["MASTER_NODES"] == "10.10.10.11,10.10.10.12,10.10.10.13"
    assert values["ipv4"] == {
        "POD_CIDR": "10.244.0.0/16",
        "POD_GATEWAY": "10.244.0.1",
        "SVC_CIDR": "10.96.0.0/16",
        "JOIN_CIDR": "100.64.0.0/16",
    }
    assert values["networking"]["IFACE"] == "ens18"


def test_network_options_change_values_and_namespaces() -> None:
    def program() -> None:
        provider = mgmt_provider()
        ClusterNetwork(
            "net",
            network_args(
                provider,
                kube_proxy_replacement=False,
                node_interfaces=["eth0"],
                cilium_namespace="cilium",
                kube_ovn_namespace="kube-ovn",
            ),
        )

    rec = record(program)
    values = rec.named("net-cilium").inputs["values"]
    assert values["kubeProxyReplacement"] is False and values["nodePort"]["enabled"] is False
    assert values["devices"].startswith("eth0 ")
    assert rec.named("net-kube-ovn").inputs["values"]["networking"]["IFACE"] == "eth0"
    cilium_ns, ovn_ns = rec.named("net-ns-cilium"), rec.named("net-ns-kube-ovn")
    assert cilium_ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert rec.named("net-cni-configuration").depends_on(cilium_ns)
    assert rec.named("net-kube-ovn").depends_on(ovn_ns)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"control_plane_node_ips": []}, "MASTER_NODES"),
        ({"control_plane_node_ips": ["10.0.0.1", "10.0.0.1"]}, "duplicates"),
        ({"control_plane_node_ips": ["fd00::1"]}, "IPv4"),
        ({"pod_cidr": "10.96.0.0/12"}, "overlaps service_cidr"),
        ({"join_cidr": "10.10.0.0/16"}, "overlaps excluded network"),
        ({"node_interfaces": ["ens 18"]}, "not a valid Linux interface"),
        ({"api_server_host": "https://10.0.0.1:6443"}, "bare host"),
        ({"cilium_namespace": "Kube_System"}, "RFC 1123"),
    ],
)
def test_network_args_catch_mistakes_before_anything_is_created(kw: dict[str, Any], message: str) -> None:
    def program() -> None:
        network_args(mgmt_provider(), **kw)

    with pytest.raises(ValueError, match=message):
        record(program)


# ---------------------------------------------------------------------------------------------
# ProxmoxCsi


def _csi_config(rec: Recording) -> dict[str, Any]:
    secret = rec.named("csi-config")
    loaded: dict[str, Any] = yaml.safe_load(secret.inputs["stringData"]["config.yaml"])
    return loaded


def test_csi_config_secret_has_api_url_and_token() -> None:
    rec = record(lambda: ProxmoxCsi("csi", csi_args(mgmt_provider())))
    secret = rec.named("csi-config")
    assert rpc.is_rpc_secret(secret.raw_inputs["stringData"])
    config = _csi_config(rec)
    (cluster,) = config["clusters"]
    assert cluster == {
        "url": "https://pve.example:8006/api2/json",
        "insecure": False,
        "region": "pve-cluster-1",
        "token_id": "kubernetes-csi@pve!csi",
        "token_secret": SECRET_VALUES["csi_token_secret"],
    }
    assert config["features"] == {"provider": "default"}
    chart = rec.named("csi-chart")
    assert chart.inputs["values"]["existingConfigSecret"] == secret.inputs["metadata"]["name"]
    assert chart.depends_on(secret)


def test_csi_labels_every_node_before_the_chart(platform: Recording) -> None:
    patches = platform.kind("NodePatch")
    assert sorted(p.inputs["metadata"]["name"] for p in patches) == ["mgmt-cp-1", "mgmt-cp-2", "mgmt-cp-3"]
    for p in patches:
        labels = p.inputs["metadata"]["labels"]
        assert labels["topology.kubernetes.io/region"] == "pve-cluster-1"
        assert labels["topology.kubernetes.io/zone"] == {"mgmt-cp-1": "pve1", "mgmt-cp-2": "pve2"}.get(
            p.inputs["metadata"]["name"], "pve3"
        )
        assert platform.named("csi-chart").depends_on(p)


def test_csi_storage_classes_carry_the_plugins_parameters(platform: Recording) -> None:
    classes = {r.inputs["metadata"]["name"]: r.inputs for r in platform.kind("StorageClass")}
    assert set(classes) == {"proxmox-local", "proxmox-ceph", "proxmox-nfs"}
    local = classes["proxmox-local"]
    assert local["provisioner"] == "csi.proxmox.sinextra.dev"
    assert local["allowVolumeExpansion"] is True
    params = local["parameters"]
    assert params["storage"] == "local-lvm" and params["ssd"] == "true" and params["cache"] == "none"
    assert (params["diskIOPS"], params["diskMBps"], params["backup"]) == ("4000", "1000", "false")
    assert local["volumeBindingMode"] == "WaitForFirstConsumer"
    assert local["allowedTopologies"] == [
        {
            "matchLabelExpressions": [
                {"key": "topology.kubernetes.io/region", "values": ["pve-cluster-1"]},
                {"key": "topology.kubernetes.io/zone", "values": ["pve1", "pve2"]},
            ]
        }
    ]
    ceph = classes["proxmox-ceph"]
    assert ceph["volumeBindingMode"] == "Immediate"
    assert ceph["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert ceph["parameters"]["csi.storage.k8s.io/fstype"] == "xfs"
    assert classes["proxmox-nfs"]["parameters"]["backup"] == "true"
    for sc in platform.kind("StorageClass"):
        assert sc.depends_on(platform.named("csi-chart"))


def test_luks_passphrase_is_secret_and_wired_to_stage_and_expand(platform: Recording) -> None:
    luks = platform.named("csi-luks")
    assert rpc.is_rpc_secret(luks.raw_inputs["stringData"])
    assert luks.inputs["stringData"] == {"encryption-passphrase": SECRET_VALUES["luks_passphrase"]}
    name, ns = luks.inputs["metadata"]["name"], luks.inputs["metadata"]["namespace"]
    local = platform.named("csi-sc-proxmox-local")
    params = local.inputs["parameters"]
    for stage in ("node-stage", "node-expand"):
        assert params[f"csi.storage.k8s.io/{stage}-secret-name"] == name
        assert params[f"csi.storage.k8s.io/{stage}-secret-namespace"] == ns
    assert local.depends_on(luks)
    ceph = platform.named("csi-sc-proxmox-ceph").inputs["parameters"]
    assert not any(k.startswith("csi.storage.k8s.io/node-") for k in ceph)


def test_no_volume_snapshot_class_without_snapshots() -> None:
    rec = record(lambda: ProxmoxCsi("csi", csi_args(mgmt_provider())))
    assert not rec.kind("VolumeSnapshotClass")
    assert not [r for r in rec.registrations if "snapshot-controller" in r.name]
    assert rec.named("csi-chart").inputs["values"]["controller"]["snapshotter"]["enabled"] is False


def test_snapshots_emit_a_class_after_the_snapshot_crds_and_switch_to_root_auth(platform: Recording) -> None:
    (vsc,) = platform.kind("VolumeSnapshotClass")
    assert vsc.inputs["driver"] == "csi.proxmox.sinextra.dev"
    assert vsc.depends_on(platform.named("csi-snapshot-controller"))
    assert vsc.depends_on(platform.named("csi-chart"))
    assert platform.named("csi-chart").inputs["values"]["controller"]["snapshotter"]["enabled"] is True
    (cluster,) = _csi_config(platform)["clusters"]
    assert cluster["username"] == "root@pam" and cluster["password"] == SECRET_VALUES["root_password"]
    assert "token_id" not in cluster
    assert _csi_config(platform)["features"]["controllerVmID"] == 9999


def test_csi_ca_bundle_is_mounted_over_the_system_bundle(platform: Recording) -> None:
    values = platform.named("csi-chart").inputs["values"]
    (volume,) = values["extraVolumes"]
    (mount,) = values["extraVolumeMounts"]
    assert volume["configMap"]["name"] == platform.named("csi-proxmox-ca").inputs["metadata"]["name"]
    assert mount["mountPath"] == "/etc/ssl/certs/ca-certificates.crt" and mount["subPath"] == "ca.crt"


def _local(**kw: Any) -> CsiStorageClass:
    return CsiStorageClass(name="local", storage="local-lvm", storage_type="lvmthin", **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"storage_classes": [_local(encrypted=True)], "luks_passphrase": None}, "luks_passphrase"),
        ({"storage_classes": [_local(default=True), _local(default=True)]}, "duplicate storage class names"),
        (
            {
                "storage_classes": [
                    _local(default=True),
                    CsiStorageClass(name="b", storage="b", storage_type="dir", default=True),
                ]
            },
            "at most one",
        ),
        ({"storage_classes": [_local(zones=["pve9"])]}, "zones"),
        (
            {
                "storage_classes": [CsiStorageClass(name="c", storage="ceph", storage_type="rbd")],
                "snapshots": CsiSnapshots(root_password="x"),
            },
            "refuses snapshots on Ceph RBD",
        ),
        (
            {"storage_classes": [CsiStorageClass(name="d", storage="d", storage_type="dir", shared=True)]}
            | {"snapshots": CsiSnapshots(root_password="x")},
            "non-shared",
        ),
        ({"proxmox_url": "http://pve:8006"}, "https"),
        ({"nodes": []}, "label_nodes needs the node list"),
        ({"tls_insecure": True, "proxmox_ca_bundle": CA_PEM}, "exclude each other"),
    ],
)
def test_csi_args_reject_what_the_plugin_cannot_do(kw: dict[str, Any], message: str) -> None:
    def program() -> None:
        csi_args(mgmt_provider(), **kw)

    with pytest.raises(ValueError, match=message):
        record(program)


# ---------------------------------------------------------------------------------------------
# ClusterApi


def test_operator_waits_for_cert_manager_and_providers_for_the_operator(platform: Recording) -> None:
    cert_manager = platform.named("capi-cert-manager")
    operator = platform.named("capi-capi-operator")
    assert operator.depends_on(cert_manager)
    assert cert_manager.inputs["values"]["crds"]["enabled"] is True
    crs = [r for r in platform.registrations if r.type.startswith("kubernetes:operator.cluster.x-k8s.io/v1alpha2:")]
    kinds = sorted(f"{r.type.rsplit(':', 1)[1]}/{r.inputs['metadata']['name']}" for r in crs)
    assert kinds == [
        "AddonProvider/helm",
        "BootstrapProvider/kubeadm",
        "ControlPlaneProvider/kamaji",
        "ControlPlaneProvider/kubeadm",
        "CoreProvider/cluster-api",
        "IPAMProvider/in-cluster",
        "InfrastructureProvider/proxmox",
    ]
    core = platform.named("capi-coreprovider-cluster-api")
    for cr in crs:
        assert cr.depends_on(operator), f"{cr.name} does not wait for the operator (CRDs, webhooks)"
        assert cr.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=ProviderInstalled"
        if cr is not core:
            assert cr.depends_on(core)


def test_provider_versions_match_the_pins(platform: Recording) -> None:
    versions = {
        r.name: r.inputs["spec"]["version"]
        for r in platform.registrations
        if r.type.startswith("kubernetes:operator.cluster.x-k8s.io/")
    }
    assert versions["capi-coreprovider-cluster-api"] == DEFAULT_VERSIONS.capi_core
    assert versions["capi-infrastructureprovider-proxmox"] == DEFAULT_VERSIONS.capmox
    assert versions["capi-ipamprovider-in-cluster"] == DEFAULT_VERSIONS.ipam_in_cluster
    assert versions["capi-controlplaneprovider-kamaji"] == DEFAULT_VERSIONS.kamaji_control_plane_provider
    assert versions["capi-addonprovider-helm"] == DEFAULT_VERSIONS.caaph


def test_caaph_is_an_addon_provider_that_dependents_wait_for() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        capi = ClusterApi("capi", capi_args(mgmt_provider()))
        seen["ready"] = capi.ready
        seen["addon"] = capi.providers["AddonProvider/helm"]

    rec = record(program)
    addon = rec.named("capi-addonprovider-helm")
    assert addon.inputs["metadata"] == {
        "name": "helm",
        "namespace": "caaph-system",
        "annotations": {"pulumi.com/waitFor": "condition=ProviderInstalled"},
    }
    assert addon.inputs["spec"] == {"version": DEFAULT_VERSIONS.caaph}, "clusterctl's built-in URL, no fetchConfig"
    assert addon.depends_on(rec.named("capi-capi-operator")), "the AddonProvider CRD and webhooks come first"
    assert addon.depends_on(rec.named("capi-coreprovider-cluster-api"))
    assert addon.depends_on(rec.named("capi-ns-caaph-system"))
    assert seen["addon"] in seen["ready"], "tenants' HelmChartProxies need CAAPH's CRD and webhooks"


def test_capmox_gets_the_bare_url_and_verifies_tls() -> None:
    rec = record(lambda: ClusterApi("capi", capi_args(mgmt_provider())))
    secret = rec.named("capi-capmox-variables")
    assert rpc.is_rpc_secret(secret.raw_inputs["stringData"])
    assert secret.inputs["stringData"] == {
        "PROXMOX_URL": "https://pve.example:8006",
        "PROXMOX_TOKEN": "capmox@pve!capi",
        "PROXMOX_SECRET": SECRET_VALUES["capmox_token_secret"],
    }
    infra = rec.named("capi-infrastructureprovider-proxmox")
    spec = infra.inputs["spec"]
    assert spec["configSecret"] == {"name": secret.object_name, "namespace": "capmox-system"}
    assert "name" not in secret.inputs["metadata"], "auto-named so that new content gets a new name"
    (container,) = spec["deployment"]["containers"]
    assert {"name": "PROXMOX_INSECURE", "value": "false"} in container["env"]
    assert "patches" not in spec
    assert infra.depends_on(secret)
    assert not rec.kind("ControlPlaneProvider") or all(
        r.inputs["metadata"]["name"] != "kubeadm" for r in rec.kind("ControlPlaneProvider")
    )


def test_capmox_ca_bundle_is_mounted_and_passed_as_root_cert(platform: Recording) -> None:
    spec = platform.named("capi-infrastructureprovider-proxmox").inputs["spec"]
    (container,) = spec["deployment"]["containers"]
    assert container["args"] == {"--proxmox-root-cert-file": "/etc/capmox/proxmox-ca/ca.pem"}
    (patch,) = spec["patches"]
    assert patch["target"]["kind"] == "Deployment" and patch["target"]["name"] == "capmox-controller-manager"
    # RFC 6902 appends: the operator applies map-shaped patches as RFC 7396 merge patches, which would
    # replace the Deployment's whole volumes/containers lists.
    ops = yaml.safe_load(patch["patch"])
    assert isinstance(ops, list) and all(op["op"] == "add" and op["path"].endswith("/-") for op in ops)
    volume = next(op["value"] for op in ops if op["path"] == "/spec/template/spec/volumes/-")
    mount = next(op["value"] for op in ops if "volumeMounts" in op["path"])
    assert volume["configMap"]["name"] == platform.named("capi-capmox-proxmox-ca").inputs["metadata"]["name"]
    assert mount == {"name": volume["name"], "mountPath": "/etc/capmox/proxmox-ca", "readOnly": True}


def test_github_token_reaches_every_provider_as_a_secret(platform: Recording) -> None:
    crs = [r for r in platform.registrations if r.type.startswith("kubernetes:operator.cluster.x-k8s.io/")]
    secrets = {r.object_name: r for r in platform.kind("Secret")}
    for cr in crs:
        ref = cr.inputs["spec"]["configSecret"]
        secret = secrets[ref["name"]]
        assert secret.inputs["metadata"]["namespace"] == ref["namespace"] == cr.inputs["metadata"]["namespace"]
        assert secret.inputs["stringData"]["github-token"] == SECRET_VALUES["github_token"]
        assert rpc.is_rpc_secret(secret.raw_inputs["stringData"])
        assert cr.depends_on(secret)


def test_operator_chart_renders_no_providers_as_hooks(platform: Recording) -> None:
    values = platform.named("capi-capi-operator").inputs["values"]
    assert not {"core", "bootstrap", "controlPlane", "infrastructure", "ipam", "addon"} & set(values)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"proxmox_url": "https://pve:8006/api"}, "unexpected path"),
        ({"proxmox_ca_bundle": "not a pem"}, "PEM"),
        ({"tls_insecure": True, "proxmox_ca_bundle": CA_PEM}, "exclude each other"),
    ],
)
def test_cluster_api_args_validation(kw: dict[str, Any], message: str) -> None:
    def program() -> None:
        capi_args(mgmt_provider(), **kw)

    with pytest.raises(ValueError, match=message):
        record(program)


# ---------------------------------------------------------------------------------------------
# Kamaji


def test_kamaji_chart_is_pinned_in_kamaji_system(platform: Recording) -> None:
    chart = platform.named("kamaji-chart").inputs
    assert (chart["name"], chart["namespace"]) == ("kamaji", "kamaji-system")
    image = chart["values"]["image"]
    assert image == {
        "repository": "docker.io/clastix/kamaji",
        "tag": DEFAULT_VERSIONS.kamaji_image_tag,
        "pullPolicy": "IfNotPresent",
    }
    assert chart["values"]["defaultDatastoreName"] == "default"
    assert platform.named("kamaji-chart").depends_on(platform.named("capi-cert-manager"))


def test_etcd_datastore_follows_the_chart_and_meets_its_cel_rules(platform: Recording) -> None:
    ds = platform.named("kamaji-datastore")
    assert ds.depends_on(platform.named("kamaji-chart")), "the DataStore CRD ships with the Kamaji chart"
    spec = ds.inputs["spec"]
    assert spec["driver"] == "etcd"
    assert spec["endpoints"][0] == "kamaji-etcd-0.kamaji-etcd.kamaji-system.svc.cluster.local:2379"
    assert len(spec["endpoints"]) == 3
    tls = spec["tlsConfig"]
    # CEL rules of the DataStore CRD for driver etcd (not evaluable offline, so asserted here).
    assert tls["certificateAuthority"]["privateKey"]["secretReference"]["keyPath"] == "ca.key"
    assert tls["clientCertificate"]["certificate"]["secretReference"]["name"] == "kamaji-etcd-root-client-certs"
    assert tls["clientCertificate"]["privateKey"]["secretReference"]["keyPath"] == "tls.key"
    etcd = platform.named("kamaji-chart").inputs["values"]["kamaji-etcd"]
    assert etcd["deploy"] is True and etcd["datastore"] == {"enabled": False}
    assert etcd["persistentVolumeClaim"]["storageClassName"] == "proxmox-ceph"


def test_postgres_datastore_keeps_credentials_secret() -> None:
    rec = record(lambda: build_platform(postgres=True, full=False))
    creds = rec.named("kamaji-datastore-credentials")
    assert rpc.is_rpc_secret(creds.raw_inputs["stringData"])
    assert creds.inputs["stringData"] == {
        "username": SECRET_VALUES["pg_username"],
        "password": SECRET_VALUES["pg_password"],
    }
    ds = rec.named("kamaji-datastore")
    spec = ds.inputs["spec"]
    assert spec["driver"] == "PostgreSQL" and spec["endpoints"] == ["pg-rw.postgres.svc:5432"]
    assert spec["basicAuth"]["password"]["secretReference"]["name"] == creds.inputs["metadata"]["name"]
    assert spec["tlsConfig"]["certificateAuthority"]["certificate"]["secretReference"]["keyPath"] == "ca.crt"
    assert ds.depends_on(creds) and ds.depends_on(rec.named("kamaji-datastore-ca"))
    assert rec.named("kamaji-chart").inputs["values"]["kamaji-etcd"] == {"deploy": False}
    for r in rec.registrations:
        for s in plaintext_strings(r.raw_inputs):
            assert SECRET_VALUES["pg_password"] not in s, f"password leaks via {r.name}"
            assert SECRET_VALUES["pg_username"] not in s, f"username leaks via {r.name}"


def test_load_balancer_is_off_by_default_and_ordered_when_on(platform: Recording) -> None:
    rec = record(lambda: build_platform(full=False))
    assert not [r for r in rec.registrations if "metallb" in r.name]
    metallb = platform.named("kamaji-metallb")
    pool = platform.named("kamaji-metallb-pool")
    l2 = platform.named("kamaji-metallb-l2")
    assert pool.depends_on(metallb) and l2.depends_on(pool)
    assert pool.inputs["spec"]["addresses"] == ["10.10.10.200-10.10.10.220"]
    assert l2.inputs["spec"]["ipAddressPools"] == [pool.inputs["metadata"]["name"]]
    ns = platform.named("kamaji-metallb-namespace").inputs["metadata"]
    assert ns["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: EtcdDataStore(replicas=2), "odd"),
        (lambda: EtcdDataStore(storage_size="8GB"), "8Gi"),
        (lambda: PostgresDataStore(endpoints=["postgres://db:5432"], username="u", password="p"), "scheme"),
        (lambda: PostgresDataStore(endpoints=[], username="u", password="p"), "at least one endpoint"),
        (lambda: MetalLbConfig(addresses=["10.0.0.20-10.0.0.10"]), "ends before"),
        (lambda: MetalLbConfig(addresses=["10.0.0.0/33"]), "MetalLB address"),
        (lambda: MetalLbConfig(addresses=[]), "at least one"),
    ],
)
def test_kamaji_settings_validation(factory: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def test_component_outputs_expose_dependency_handles() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        p = build_platform(full=False)
        seen["network"] = [type(r).__name__ for r in p.network.ready]
        seen["capi"] = len(p.capi.ready)
        seen["kamaji"] = p.kamaji.datastore_name
        seen["csi"] = sorted(p.csi.storage_classes)

    record(program)
    assert seen == {
        "network": ["Release", "Release"],
        "capi": 6,
        "kamaji": "default",
        "csi": ["proxmox-ceph", "proxmox-local", "proxmox-nfs"],
    }
