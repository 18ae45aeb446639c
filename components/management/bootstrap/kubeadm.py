"""Pure renderers of the files the kubeadm bootstrap writes on the nodes.

* ``init_configuration``: kubeadm ``InitConfiguration`` + ``ClusterConfiguration`` +
  ``KubeletConfiguration`` (API ``kubeadm.k8s.io/v1beta4``, Kubernetes >= v1.31). The control-plane
  endpoint is the kube-vip address; pod and service subnets are the ones Kube-OVN is given; with
  Cilium's kube-proxy replacement the ``addon/kube-proxy`` phase is skipped; no CNI is installed
  (kubeadm never installs one; Cilium and Kube-OVN come later through the kubernetes provider); API
  server audit logging is on (policy file, log path, rotation flags, host mounts).
* ``join_configuration``: a ``JoinConfiguration`` for a worker or a control plane (with the
  ``controlPlane`` section: the file form of ``--control-plane --certificate-key``).
* ``kube_vip_manifest``: the kube-vip static pod (ARP mode, leader election) holding the endpoint.
* ``audit_policy``: the API server audit policy.
* ``JoinCredentials.parse``: the JSON line ``join-credentials.sh`` prints.

Nothing here imports pulumi; every function is deterministic, so a changed output means a changed
input.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

__all__ = [
    "AUDIT_LOG_DIR",
    "AUDIT_LOG_PATH",
    "AUDIT_POLICY_DIR",
    "AUDIT_POLICY_PATH",
    "CRI_SOCKET",
    "KUBEADM_API_VERSION",
    "KUBE_VIP_IMAGE",
    "AuditLogSettings",
    "ClusterSettings",
    "JoinCredentials",
    "NodeIdentity",
    "audit_policy",
    "init_configuration",
    "join_configuration",
    "kube_vip_manifest",
]

KUBEADM_API_VERSION: Final = "kubeadm.k8s.io/v1beta4"
"""kubeadm configuration API (served by kubeadm v1.31 and later)."""

CRI_SOCKET: Final = "unix:///var/run/containerd/containerd.sock"
"""containerd's CRI socket."""

AUDIT_POLICY_DIR: Final = "/etc/kubernetes/audit"
AUDIT_POLICY_PATH: Final = f"{AUDIT_POLICY_DIR}/policy.yaml"
AUDIT_LOG_DIR: Final = "/var/log/kubernetes/audit"
AUDIT_LOG_PATH: Final = f"{AUDIT_LOG_DIR}/audit.log"

KUBE_VIP_IMAGE: Final = "ghcr.io/kube-vip/kube-vip:v1.2.2"
"""Pinned kube-vip image (v1.2.2, August 2026)."""

_MIN_MINOR: Final = 31
_VERSION: Final = re.compile(r"^v1\.(\d+)\.(\d+)$")
_TOKEN: Final = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_CA_HASH: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_CERT_KEY: Final = re.compile(r"^[0-9a-f]{64}$")
_NODE_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_IFACE: Final = re.compile(r"^[A-Za-z0-9_.+\-]{1,15}$")


@dataclass(frozen=True, kw_only=True)
class AuditLogSettings:
    """Rotation of the API server audit log (``--audit-log-max*`` flags)."""

    max_age_days: int = 30
    """Days to keep rotated audit logs."""

    max_backups: int = 10
    """Rotated audit log files to keep."""

    max_size_mib: int = 100
    """Size in MiB at which the audit log is rotated."""

    def __post_init__(self) -> None:
        for name in ("max_age_days", "max_backups", "max_size_mib"):
            if getattr(self, name) < 1:
                raise ValueError(f"audit log {name} must be at least 1")


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """What every node of the cluster agrees on."""

    cluster_name: str
    """kubeadm ``clusterName`` (also the name in the admin kubeconfig)."""

    kubernetes_version: str
    """Exact release, e.g. ``v1.34.8`` (>= v1.31 for kubeadm v1beta4)."""

    control_plane_host: str
    """kube-vip address of the API (IPv4)."""

    pod_subnet: str
    """kubeadm ``podSubnet`` (= Kube-OVN ``POD_CIDR``)."""

    service_subnet: str
    """kubeadm ``serviceSubnet`` (= Kube-OVN ``SVC_CIDR``)."""

    kube_proxy_replacement: bool = True
    """Cilium replaces kube-proxy: skip kubeadm's ``addon/kube-proxy`` phase."""

    schedulable_control_planes: bool = False
    """Leave control planes untainted (a cluster without workers)."""

    api_server_port: int = 6443
    """Port of the API server and of the endpoint."""

    audit: AuditLogSettings = field(default_factory=AuditLogSettings)
    """Audit log rotation."""

    def __post_init__(self) -> None:
        match = _VERSION.match(self.kubernetes_version)
        if not match:
            raise ValueError(f"kubernetes_version must look like v1.34.8, got {self.kubernetes_version!r}")
        if int(match.group(1)) < _MIN_MINOR:
            raise ValueError(
                f"kubernetes_version {self.kubernetes_version}: the kubeadm v1beta4 configuration needs "
                f"v1.{_MIN_MINOR} or later"
            )
        ipaddress.IPv4Address(self.control_plane_host)
        for name in ("pod_subnet", "service_subnet"):
            ipaddress.IPv4Network(getattr(self, name))
        if not _NODE_NAME.match(self.cluster_name):
            raise ValueError(f"cluster_name {self.cluster_name!r} must be a DNS-1123 label")

    @property
    def endpoint(self) -> str:
        """``host:port`` of the control plane (kubeadm ``controlPlaneEndpoint``)."""
        return f"{self.control_plane_host}:{self.api_server_port}"


@dataclass(frozen=True, kw_only=True)
class NodeIdentity:
    """A node as kubeadm registers it."""

    name: str
    """Node name (= VM name = hostname)."""

    address: str
    """Static IPv4 address on the management network (kubelet ``node-ip``, API advertise address)."""

    def __post_init__(self) -> None:
        if not _NODE_NAME.match(self.name):
            raise ValueError(f"node name {self.name!r} must be a DNS-1123 label")
        ipaddress.IPv4Address(self.address)


@dataclass(frozen=True, kw_only=True, repr=False)
class JoinCredentials:
    """A bootstrap token, the CA public-key hash and (for control planes) a certificate key."""

    token: str
    ca_cert_hash: str
    certificate_key: str | None

    def __repr__(self) -> str:  # never show the secrets in a traceback or a log
        return "JoinCredentials(<redacted>)"

    @classmethod
    def parse(cls, stdout: str) -> JoinCredentials:
        """Parse the JSON line of ``join-credentials.sh``; errors never quote the (secret) text."""
        try:
            data = json.loads(stdout.strip().splitlines()[-1] if stdout.strip() else "")
        except (json.JSONDecodeError, IndexError):
            raise ValueError("join-credentials.sh did not print a JSON line on stdout") from None
        if not isinstance(data, dict):
            raise ValueError("join-credentials.sh printed JSON that is not an object")
        token, ca_hash, cert_key = data.get("token"), data.get("caCertHash"), data.get("certificateKey") or None
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ValueError("join credentials: token is not a kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})")
        if not isinstance(ca_hash, str) or not _CA_HASH.match(ca_hash):
            raise ValueError("join credentials: caCertHash is not sha256:<64 hex digits>")
        if cert_key is not None and (not isinstance(cert_key, str) or not _CERT_KEY.match(cert_key)):
            raise ValueError("join credentials: certificateKey is not 64 hex digits")
        return cls(token=token, ca_cert_hash=ca_hash, certificate_key=cert_key)


def _args(values: Mapping[str, str]) -> list[dict[str, str]]:
    """v1beta4 ``extraArgs``/``kubeletExtraArgs``: a list of name/value pairs, in a stable order."""
    return [{"name": k, "value": v} for k, v in sorted(values.items())]


def _dump(*documents: Mapping[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, explicit_start=True)


def _node_registration(node: NodeIdentity, *, control_plane: bool, untainted: bool) -> dict[str, Any]:
    registration: dict[str, Any] = {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        "kubeletExtraArgs": _args({"node-ip": node.address}),
    }
    if control_plane and untainted:
        registration["taints"] = []
    return registration


def init_configuration(cluster: ClusterSettings, node: NodeIdentity) -> str:
    """The kubeadm configuration of ``kubeadm init`` on the first control plane."""
    init: dict[str, Any] = {
        "apiVersion": KUBEADM_API_VERSION,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": node.address, "bindPort": cluster.api_server_port},
        "nodeRegistration": _node_registration(node, control_plane=True, untainted=cluster.schedulable_control_planes),
    }
    if cluster.kube_proxy_replacement:
        init["skipPhases"] = ["addon/kube-proxy"]
    audit = cluster.audit
    cluster_config: dict[str, Any] = {
        "apiVersion": KUBEADM_API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": cluster.cluster_name,
        "kubernetesVersion": cluster.kubernetes_version,
        "controlPlaneEndpoint": cluster.endpoint,
        "networking": {
            "podSubnet": cluster.pod_subnet,
            "serviceSubnet": cluster.service_subnet,
            "dnsDomain": "cluster.local",
        },
        "apiServer": {
            "certSANs": [cluster.control_plane_host],
            "extraArgs": _args(
                {
                    "audit-policy-file": AUDIT_POLICY_PATH,
                    "audit-log-path": AUDIT_LOG_PATH,
                    "audit-log-maxage": str(audit.max_age_days),
                    "audit-log-maxbackup": str(audit.max_backups),
                    "audit-log-maxsize": str(audit.max_size_mib),
                }
            ),
            "extraVolumes": [
                {
                    "name": "audit-policy",
                    "hostPath": AUDIT_POLICY_DIR,
                    "mountPath": AUDIT_POLICY_DIR,
                    "readOnly": True,
                    "pathType": "DirectoryOrCreate",
                },
                {
                    "name": "audit-log",
                    "hostPath": AUDIT_LOG_DIR,
                    "mountPath": AUDIT_LOG_DIR,
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
    }
    if cluster.kube_proxy_replacement:
        # what skipping the phase records anyway; explicit so `kubeadm upgrade` never adds kube-proxy
        cluster_config["proxy"] = {"disabled": True}
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
    }
    return _dump(init, cluster_config, kubelet)


def join_configuration(
    cluster: ClusterSettings, node: NodeIdentity, credentials: JoinCredentials, *, control_plane: bool
) -> str:
    """The ``JoinConfiguration`` of a worker, or of a control plane (with ``controlPlane``)."""
    join: dict[str, Any] = {
        "apiVersion": KUBEADM_API_VERSION,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": cluster.endpoint,
                "token": credentials.token,
                "caCertHashes": [credentials.ca_cert_hash],
            }
        },
        "nodeRegistration": _node_registration(
            node, control_plane=control_plane, untainted=cluster.schedulable_control_planes
        ),
    }
    if control_plane:
        if credentials.certificate_key is None:
            raise ValueError(f"{node.name}: a control plane joins with a certificate key, and none was minted")
        join["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": node.address, "bindPort": cluster.api_server_port},
            "certificateKey": credentials.certificate_key,
        }
    return _dump(join)


def kube_vip_manifest(*, address: str, interface: str, image: str, port: int, kubeconfig: str) -> str:
    """The kube-vip static pod: ARP announcement of ``address`` by the elected control plane.

    ``kubeconfig`` is ``/etc/kubernetes/admin.conf``, or ``super-admin.conf`` while the first control
    plane runs ``kubeadm init`` (see ``kubeadm-init.sh``).
    """
    ipaddress.IPv4Address(address)
    if not _IFACE.match(interface):
        raise ValueError(f"kube-vip interface {interface!r} is not a network interface name")
    if kubeconfig not in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"):
        raise ValueError(f"kube-vip kubeconfig must be admin.conf or super-admin.conf, got {kubeconfig!r}")
    env = {
        "vip_arp": "true",
        "vip_interface": interface,
        "address": address,
        "port": str(port),
        "cp_enable": "true",
        "cp_namespace": "kube-system",
        "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "15",
        "vip_renewdeadline": "10",
        "vip_retryperiod": "2",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "containers": [
                {
                    "name": "kube-vip",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["manager"],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}},
                    "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}],
                }
            ],
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
            "hostNetwork": True,
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig, "type": "File"}}],
        },
    }
    return _dump(pod)


def audit_policy() -> str:
    """The audit policy: metadata for reads and for secrets, request bodies for other writes.

    Health probes, events and the constant lease renewals are not recorded; the bodies of Secrets,
    ConfigMaps, token requests and token reviews never are (they carry credentials).
    """
    sensitive = [
        {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
        {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
        {"group": "certificates.k8s.io", "resources": ["certificatesigningrequests"]},
    ]
    policy = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"]},
            {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
            {
                "level": "None",
                "verbs": ["get", "update", "watch"],
                "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            },
            {"level": "Metadata", "resources": sensitive},
            {"level": "Metadata", "verbs": ["get", "list", "watch"]},
            {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
            {"level": "Metadata"},
        ],
    }
    return _dump(policy)
