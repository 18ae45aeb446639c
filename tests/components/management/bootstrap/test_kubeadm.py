"""The kubeadm configuration files the bootstrap writes (components/management/bootstrap/kubeadm.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import yaml

from components.management.bootstrap.kubeadm import (
    AUDIT_LOG_PATH,
    AUDIT_POLICY_PATH,
    AuditLogSettings,
    ClusterSettings,
    JoinCredentials,
    NodeIdentity,
    audit_policy,
    init_configuration,
    join_configuration,
    kube_vip_manifest,
)

# ---------------------------------------------------------------------------------------------
# kubeadm configuration
from tests.components.management.test_cluster import CA_HASH, CERT_KEY, TOKEN, _embedded, build, commands, mc_config

CLUSTER = ClusterSettings(
    cluster_name="mgmt",
    kubernetes_version="v1.34.8",
    control_plane_host="10.10.10.10",
    pod_subnet="10.244.0.0/16",
    service_subnet="10.96.0.0/16",
)

FIRST = NodeIdentity(name="mgmt-cp-1", address="10.10.10.20")


def _init_docs(cluster: ClusterSettings = CLUSTER) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(init_configuration(cluster, FIRST))}


def test_init_configuration_endpoint_subnets_and_no_cni() -> None:
    docs = _init_docs()
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    cc, ic = docs["ClusterConfiguration"], docs["InitConfiguration"]
    assert cc["apiVersion"] == ic["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert cc["controlPlaneEndpoint"] == "10.10.10.10:6443"
    assert cc["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cc["networking"]["serviceSubnet"] == "10.96.0.0/16"
    assert cc["kubernetesVersion"] == "v1.34.8"
    assert ic["localAPIEndpoint"] == {"advertiseAddress": "10.10.10.20", "bindPort": 6443}
    assert ic["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.10.10.20"}]
    assert "taints" not in ic["nodeRegistration"]
    assert "cni" not in init_configuration(CLUSTER, FIRST).lower()


def test_kube_proxy_is_skipped_only_with_kube_proxy_replacement() -> None:
    on = _init_docs()
    off = _init_docs(replace(CLUSTER, kube_proxy_replacement=False))
    assert on["InitConfiguration"]["skipPhases"] == ["addon/kube-proxy"]
    assert on["ClusterConfiguration"]["proxy"] == {"disabled": True}
    assert "skipPhases" not in off["InitConfiguration"] and "proxy" not in off["ClusterConfiguration"]

    with_kpr = commands(build())["mgmt-init"].inputs["stdin"]
    without = commands(build(config=mc_config(kubeProxyReplacement=False)))["mgmt-init"].inputs["stdin"]
    assert "addon/kube-proxy" in with_kpr
    assert "addon/kube-proxy" not in without


def test_api_server_audit_logging_flags_volumes_and_policy() -> None:
    cluster = replace(CLUSTER, audit=AuditLogSettings(max_age_days=7, max_backups=3, max_size_mib=50))
    api = _init_docs(cluster)["ClusterConfiguration"]["apiServer"]
    assert {a["name"]: a["value"] for a in api["extraArgs"]} == {
        "audit-policy-file": AUDIT_POLICY_PATH,
        "audit-log-path": AUDIT_LOG_PATH,
        "audit-log-maxage": "7",
        "audit-log-maxbackup": "3",
        "audit-log-maxsize": "50",
    }
    mounts = {v["name"]: v for v in api["extraVolumes"]}
    assert mounts["audit-policy"]["readOnly"] is True and AUDIT_POLICY_PATH.startswith(
        mounts["audit-policy"]["mountPath"]
    )
    assert mounts["audit-log"]["readOnly"] is False and AUDIT_LOG_PATH.startswith(mounts["audit-log"]["mountPath"])
    policy = yaml.safe_load(audit_policy())
    assert policy["kind"] == "Policy" and policy["rules"][-1] == {"level": "Metadata"}
    secrets_rule = next(r for r in policy["rules"] if any("secrets" in g["resources"] for g in r.get("resources", [])))
    assert secrets_rule["level"] == "Metadata"

    cmds = commands(build())
    assert "audit-log-path" in cmds["mgmt-init"].inputs["stdin"]
    assert _embedded(cmds["mgmt-prepare-mgmt-cp-2"].inputs["stdin"], "AUDIT_POLICY") == audit_policy()
    assert "\nAUDIT_POLICY=" not in cmds["mgmt-prepare-mgmt-worker-1"].inputs["stdin"]


def test_control_planes_are_untainted_only_without_workers() -> None:
    untainted = replace(CLUSTER, schedulable_control_planes=True)
    assert _init_docs(untainted)["InitConfiguration"]["nodeRegistration"]["taints"] == []
    creds = JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH, certificate_key=CERT_KEY)
    join = yaml.safe_load(join_configuration(untainted, FIRST, creds, control_plane=True))
    assert join["nodeRegistration"]["taints"] == []
    stdin = commands(build(config=mc_config(workers={"count": 0})))["mgmt-init"].inputs["stdin"]
    assert "taints: []" in stdin
    assert "taints" not in commands(build())["mgmt-init"].inputs["stdin"]


def test_join_credentials_parse_and_never_echo_secrets() -> None:
    line = json.dumps({"token": TOKEN, "caCertHash": CA_HASH, "certificateKey": ""})
    creds = JoinCredentials.parse("noise\n" + line + "\n")
    assert creds.token == TOKEN and creds.certificate_key is None
    assert TOKEN not in repr(creds)
    for bad in ("", "{", json.dumps({"token": "nope", "caCertHash": CA_HASH}), json.dumps([TOKEN])):
        with pytest.raises(ValueError) as err:
            JoinCredentials.parse(bad)
        assert TOKEN not in str(err.value)
    with pytest.raises(ValueError, match="certificate key"):
        join_configuration(CLUSTER, FIRST, creds, control_plane=True)


def test_kube_vip_manifest_is_a_valid_pod_holding_the_endpoint() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    text = kube_vip_manifest(
        address="10.10.10.10",
        interface="ens18",
        image="ghcr.io/kube-vip/kube-vip:v1.2.2",
        port=6443,
        kubeconfig="/etc/kubernetes/super-admin.conf",
    )
    pod = yaml.safe_load(text)
    kubernetes_validate.validate(pod, "1.34", strict=True)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["address"] == "10.10.10.10" and env["cp_enable"] == "true" and env["vip_interface"] == "ens18"
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/super-admin.conf"
    with pytest.raises(ValueError):
        kube_vip_manifest(address="10.10.10.10", interface="ens18", image="x", port=6443, kubeconfig="/tmp/x")


def test_first_control_plane_uses_super_admin_during_init_only() -> None:
    stdin = commands(build())["mgmt-init"].inputs["stdin"]
    during = yaml.safe_load(_embedded(stdin, "KUBE_VIP_INIT_MANIFEST"))
    after = yaml.safe_load(_embedded(stdin, "KUBE_VIP_MANIFEST"))
    assert during["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/super-admin.conf"
    assert after["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"
