"""ClusterNetwork: Cilium chained onto Kube-OVN on the management cluster.

Order and values follow ``reference/k8s_stack.md`` section 3 (Kube-OVN upstream e2e and Cozystack):

1. the ``cni-configuration`` ConfigMap in Cilium's namespace (the generic-veth chain:
   kube-ovn -> portmap -> cilium-cni);
2. Cilium with ``cni.chainingMode=generic-veth``, ``cni.customConf``, native routing, no masquerading,
   optional kube-proxy replacement; Cilium writes ``05-cilium.conflist``;
   The Cilium release does not wait for readiness: pods that are not on the host network (e.g.
   hubble-relay) cannot get an IP before Kube-OVN runs, so waiting would deadlock the install;
3. Kube-OVN **after** Cilium with ``ENABLE_NP=false``, ``ENABLE_LB=false`` and
   ``CNI_CONFIG_PRIORITY=10`` so its ``10-kube-ovn.conflist`` sorts after Cilium's chained list (with
   the default ``01-`` Cilium silently drops out of the chain), and with the control-plane node IPs
   passed explicitly (``MASTER_NODES``) instead of the chart's ``lookup`` of labelled nodes.

The Proxmox virtio NIC names (``ens18`` ...) are passed to both: Cilium's ``devices`` and Kube-OVN's
``IFACE``; the upstream docs' ``eth+`` does not match Proxmox VMs.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes

from components.k8s import (
    PSA_PRIVILEGED_LABELS,
    ChartInstall,
    child_opts,
    install_chart,
    namespace,
    require_dns_label,
    require_provider,
)
from config.versions import DEFAULT_VERSIONS, Versions

__all__ = ["CNI_CONFIG_MAP_NAME", "ClusterNetwork", "ClusterNetworkArgs", "cni_chain_config"]

CNI_CONFIG_MAP_NAME: Final = "cni-configuration"
"""Name of the ConfigMap Cilium reads the chained CNI configuration from (``cni.configMap``)."""

_KUBE_OVN_SOCKET: Final = "/run/openvswitch/kube-ovn-daemon.sock"
_IFACE: Final = re.compile(r"[A-Za-z0-9_.+\-]{1,15}")


def cni_chain_config() -> str:
    """Return the generic-veth CNI chain (kube-ovn, portmap, cilium-cni) as the ``cni-config`` JSON."""
    chain = {
        "name": "generic-veth",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "kube-ovn",
                "server_socket": _KUBE_OVN_SOCKET,
                "ipam": {"type": "kube-ovn", "server_socket": _KUBE_OVN_SOCKET},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
            {"type": "cilium-cni"},
        ],
    }
    return json.dumps(chain, indent=2)


def _ipv4(value: str, what: str) -> ipaddress.IPv4Address:
    """Parse an IPv4 address or raise a ValueError naming the field (the stack is IPv4-only)."""
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(
            f"{what} {value!r} is not an IPv4 address (IPv6 chaining of Cilium onto Kube-OVN is broken upstream)"
        ) from None


def _ipv4_net(value: str, what: str) -> ipaddress.IPv4Network:
    """Parse an IPv4 network (no host bits) or raise a ValueError naming the field."""
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"{what} {value!r} is not an IPv4 network: {err}") from None


@dataclass(frozen=True, kw_only=True)
class ClusterNetworkArgs:
    """Inputs of ClusterNetwork; all plain values, validated when constructed."""

    provider: kubernetes.Provider
    """Explicit provider of the management cluster (default providers are disabled)."""

    api_server_host: str
    """IP or DNS name of a real kube-apiserver endpoint (Cilium ``k8sServiceHost``; needed without kube-proxy)."""

    control_plane_node_ips: Sequence[str]
    """IPv4 addresses of the control-plane nodes, passed to Kube-OVN as ``MASTER_NODES`` (ovn-central)."""

    api_server_port: int = 6443
    """Port of that kube-apiserver endpoint (Cilium ``k8sServicePort``)."""

    pod_cidr: str = "10.244.0.0/16"
    """Pod CIDR; must equal kubeadm ``podSubnet`` (Kube-OVN ``POD_CIDR``; Cilium IPAM mode ``kubernetes``
    also needs the node podCIDRs kube-controller-manager allocates from it)."""

    service_cidr: str = "10.96.0.0/16"
    """Service CIDR; must equal kube-apiserver ``--service-cluster-ip-range`` (Kube-OVN ``SVC_CIDR``)."""

    join_cidr: str = "100.64.0.0/16"
    """Kube-OVN node-to-pod join network; must not overlap the Proxmox LAN."""

    excluded_cidrs: Sequence[str] = ()
    """Networks the three CIDRs above must not overlap (the Proxmox LAN, tenant VPCs, ...)."""

    node_interfaces: Sequence[str] = ("ens18",)
    """Node NIC names or patterns (``ens18`` for Proxmox virtio, ``eth0`` on some images, ``ens+``)."""

    kube_proxy_replacement: bool = True
    """Let Cilium replace kube-proxy (socket LB, NodePort, externalIPs); Kube-OVN's LB stays off either way."""

    hubble: bool = False
    """Enable Hubble (with relay) for flow visibility."""

    cilium_operator_replicas: int = 1
    """Replicas of the Cilium operator."""

    ovn_db_tls: bool = True
    """Encrypt OVN NB/SB database traffic (Kube-OVN ``networking.ENABLE_SSL``)."""

    cilium_namespace: str = "kube-system"
    """Namespace of the Cilium release and of the ``cni-configuration`` ConfigMap."""

    kube_ovn_namespace: str = "kube-system"
    """Namespace of the Kube-OVN release."""

    versions: Versions = DEFAULT_VERSIONS
    """Pinned chart versions (``cilium``, ``kube_ovn``)."""

    charts: ChartInstall = field(default_factory=ChartInstall)
    """How charts are installed (templated or as releases, from repositories or a local directory)."""

    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist first (e.g. the management cluster's bootstrap)."""

    def __post_init__(self) -> None:
        if not self.api_server_host or "/" in self.api_server_host or ":" in self.api_server_host:
            raise ValueError(f"api_server_host {self.api_server_host!r} must be a bare host name or IPv4")
        if not 0 < self.api_server_port < 65536:
            raise ValueError(f"api_server_port {self.api_server_port} is not a TCP port")
        if not self.control_plane_node_ips:
            raise ValueError("control_plane_node_ips must list at least one node (Kube-OVN MASTER_NODES)")
        ips = [_ipv4(ip, "control-plane node IP") for ip in self.control_plane_node_ips]
        if len(set(ips)) != len(ips):
            raise ValueError(f"control_plane_node_ips has duplicates: {list(self.control_plane_node_ips)}")
        named = {
            "pod_cidr": _ipv4_net(self.pod_cidr, "pod_cidr"),
            "service_cidr": _ipv4_net(self.service_cidr, "service_cidr"),
            "join_cidr": _ipv4_net(self.join_cidr, "join_cidr"),
        }
        for (a, net_a), (b, net_b) in itertools.combinations(named.items(), 2):
            if net_a.overlaps(net_b):
                raise ValueError(f"{a} {net_a} overlaps {b} {net_b}")
        for other in self.excluded_cidrs:
            other_net = _ipv4_net(other, "excluded CIDR")
            for key, net in named.items():
                if net.overlaps(other_net):
                    raise ValueError(f"{key} {net} overlaps excluded network {other_net}")
        for ip in ips:
            for key, net in named.items():
                if ip in net:
                    raise ValueError(f"control-plane node {ip} lies inside {key} {net}")
        if not self.node_interfaces:
            raise ValueError("node_interfaces must name at least one NIC (e.g. ens18)")
        for iface in self.node_interfaces:
            if not _IFACE.fullmatch(iface):
                raise ValueError(f"node interface {iface!r} is not a valid Linux interface name or pattern")
        if self.cilium_operator_replicas < 1:
            raise ValueError("cilium_operator_replicas must be >= 1")
        require_dns_label(self.cilium_namespace, "cilium_namespace")
        require_dns_label(self.kube_ovn_namespace, "kube_ovn_namespace")

    @property
    def pod_gateway(self) -> str:
        """First host address of the pod CIDR (Kube-OVN ``POD_GATEWAY``)."""
        return str(next(ipaddress.IPv4Network(self.pod_cidr).hosts()))


def cilium_values(args: ClusterNetworkArgs) -> dict[str, Any]:
    """Cilium chart values for generic-veth chaining onto Kube-OVN."""
    kpr = args.kube_proxy_replacement
    return {
        "cni": {
            "chainingMode": "generic-veth",
            "chainingTarget": "kube-ovn",
            "customConf": True,
            "configMap": CNI_CONFIG_MAP_NAME,
        },
        "routingMode": "native",
        "autoDirectNodeRoutes": False,
        "enableIPv4Masquerade": False,
        "enableIPv6Masquerade": False,
        "bpf": {"masquerade": False},
        "enableIdentityMark": False,
        "ipv6": {"enabled": False},
        "ipam": {"mode": "kubernetes"},
        "devices": " ".join([*args.node_interfaces, "ovn0", "genev_sys_6081"]),
        "forceDeviceDetection": True,
        "kubeProxyReplacement": kpr,
        "k8sServiceHost": args.api_server_host,
        "k8sServicePort": args.api_server_port,
        "socketLB": {"enabled": kpr},
        "nodePort": {"enabled": kpr},
        "externalIPs": {"enabled": kpr},
        # Kube-OVN VPC NAT gateways are dropped by Cilium's source-IP check below Cilium 1.20.
        "daemon": {"enableSourceIPVerification": False},
        "sctp": {"enabled": True},
        "cgroup": {"autoMount": {"enabled": True}},
        "hubble": {"enabled": args.hubble, "relay": {"enabled": args.hubble}},
        "operator": {"replicas": args.cilium_operator_replicas, "rollOutPods": True},
        "rollOutCiliumPods": True,
    }


def kube_ovn_values(args: ClusterNetworkArgs) -> dict[str, Any]:
    """Kube-OVN (classic chart) values: policy and LB left to Cilium, chained CNI config priority 10."""
    return {
        "namespace": args.kube_ovn_namespace,
        "MASTER_NODES": ",".join(args.control_plane_node_ips),
        "func": {"ENABLE_NP": False, "ENABLE_LB": False, "ENABLE_LB_SVC": False},
        "cni_conf": {"CNI_CONFIG_PRIORITY": "10"},
        "ipv4": {
            "POD_CIDR": args.pod_cidr,
            "POD_GATEWAY": args.pod_gateway,
            "SVC_CIDR": args.service_cidr,
            "JOIN_CIDR": args.join_cidr,
        },
        "networking": {
            "NET_STACK": "ipv4",
            "ENABLE_SSL": args.ovn_db_tls,
            "IFACE": ",".join(args.node_interfaces),
        },
    }


class ClusterNetwork(pulumi.ComponentResource):
    """Cilium (chaining mode) then Kube-OVN on the management cluster."""

    cni_config_map: kubernetes.core.v1.ConfigMap
    """The generic-veth chain ConfigMap in Cilium's namespace."""

    cilium: pulumi.Resource
    """The Cilium Release (or rendered Chart)."""

    kube_ovn: pulumi.Resource
    """The Kube-OVN Release (or rendered Chart); depends on Cilium."""

    ready: list[pulumi.Resource]
    """What dependents should ``depends_on`` to wait for a working pod network."""

    cilium_values: dict[str, Any]
    """Cilium chart values."""

    kube_ovn_values: dict[str, Any]
    """Kube-OVN chart values."""

    def __init__(self, name: str, args: ClusterNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:network:ClusterNetwork", name, None, opts)
        provider = require_provider(args.provider, "ClusterNetwork")
        first = list(args.depends_on)

        namespaces: dict[str, pulumi.Resource] = {}
        for ns in dict.fromkeys([args.cilium_namespace, args.kube_ovn_namespace]):
            if ns != "kube-system":
                namespaces[ns] = namespace(
                    f"{name}-ns-{ns}",
                    ns,
                    labels=PSA_PRIVILEGED_LABELS,
                    opts=child_opts(self, provider, depends_on=first),
                )

        def ns_deps(ns: str) -> list[pulumi.Resource]:
            return [*first, *([namespaces[ns]] if ns in namespaces else [])]

        self.cni_config_map = kubernetes.core.v1.ConfigMap(
            f"{name}-cni-configuration",
            metadata={"name": CNI_CONFIG_MAP_NAME, "namespace": args.cilium_namespace},
            data={"cni-config": cni_chain_config()},
            opts=child_opts(self, provider, depends_on=ns_deps(args.cilium_namespace)),
        )
        self.cilium_values = cilium_values(args)
        self.cilium = install_chart(
            f"{name}-cilium",
            chart=args.versions.cilium,
            release_name="cilium",
            namespace=args.cilium_namespace,
            values=self.cilium_values,
            install=args.charts,
            # Only hostNetwork pods can start before Kube-OVN exists (hubble-relay could not): don't wait.
            skip_await=True,
            opts=child_opts(self, provider, depends_on=[*ns_deps(args.cilium_namespace), self.cni_config_map]),
        )
        self.kube_ovn_values = kube_ovn_values(args)
        self.kube_ovn = install_chart(
            f"{name}-kube-ovn",
            chart=args.versions.kube_ovn,
            release_name="kube-ovn",
            namespace=args.kube_ovn_namespace,
            values=self.kube_ovn_values,
            install=args.charts,
            opts=child_opts(self, provider, depends_on=[*ns_deps(args.kube_ovn_namespace), self.cilium]),
        )
        self.ready = [self.cilium, self.kube_ovn]
        self.register_outputs(
            {
                "ciliumValues": self.cilium_values,
                "kubeOvnValues": self.kube_ovn_values,
            }
        )
