"""The network domain: node networks, tenant worker networks, and the platform-wide address checks.

Cilium chained onto Kube-OVN needs cluster-unique pod IPs, and every tenant needs its own layer-2
segment, so the checks here see every network of the stack at once (handed in by ``config.stack``).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

from pydantic import Field

from config.base import BridgeName, Cidr, ConfigModel, Problems, VmIpRange, check_subnet_member


class _NetworkBase(ConfigModel):
    bridge: BridgeName
    """Linux bridge or SDN VNet on the Proxmox nodes, e.g. vmbr0."""
    vlan: int | None = Field(default=None, ge=1, le=4094)
    """VLAN tag (1..4094); omit for an untagged network."""
    cidr: Cidr
    """IPv4 subnet, e.g. 10.10.10.0/24."""
    mtu: int = Field(default=1500, ge=1280, le=65520)
    """MTU of the VM NICs on this network."""


class NetworkConfig(_NetworkBase):
    """A node network that may be unrouted (data, storage)."""

    gateway: IPv4Address | None = None
    """Default gateway, inside cidr; omit for an unrouted network."""
    dns_servers: tuple[IPv4Address, ...] = ()
    """DNS servers handed to VMs on this network."""


class RoutedNetworkConfig(_NetworkBase):
    """A routed network with a gateway and DNS (the management network)."""

    gateway: IPv4Address
    """Default gateway, inside cidr."""
    dns_servers: tuple[IPv4Address, ...] = Field(min_length=1)
    """DNS servers handed to VMs on this network."""


class TenantNetworkConfig(RoutedNetworkConfig):
    """A tenant's isolated worker network: its own bridge or VLAN, and an address pool."""

    ip_range: VmIpRange
    """Addresses CAPMOX may give the tenant's worker VMs (inside cidr)."""


class NetworksConfig(ConfigModel):
    """The node networks; each must have its own bridge or VLAN."""

    management: RoutedNetworkConfig
    """Network of the management cluster's VMs, its API VIP and its LoadBalancer addresses."""
    data: NetworkConfig | None = None
    """Optional network for workload traffic."""
    storage: NetworkConfig | None = None
    """Optional network for storage traffic."""

    def declared(self) -> list[tuple[str, NetworkConfig | RoutedNetworkConfig]]:
        """(key, network) of every declared node network, management first."""
        found: list[tuple[str, NetworkConfig | RoutedNetworkConfig | None]] = [
            ("management", self.management),
            ("data", self.data),
            ("storage", self.storage),
        ]
        return [(key, net) for key, net in found if net is not None]

    def cidrs(self) -> list[tuple[str, IPv4Network]]:
        """(key path, CIDR) of every node network."""
        return [(f"networks.{key}.cidr", net.cidr) for key, net in self.declared()]


def _segment(bridge: str, vlan: int | None) -> str:
    return f"bridge {bridge} " + (f"VLAN {vlan}" if vlan is not None else "untagged")


def check_networks(
    networks: NetworksConfig, tenant_networks: Sequence[tuple[str, TenantNetworkConfig]], out: Problems
) -> None:
    """Every node and tenant network has its own segment; node gateways lie inside their subnets."""
    segments: dict[tuple[str, int | None], str] = {}
    for key, net in networks.declared():
        path = f"networks.{key}"
        seg = (net.bridge, net.vlan)
        if seg in segments:
            out.add(
                f"{path}.vlan",
                f"{_segment(*seg)} is already used by {segments[seg]}; node networks must be separated "
                "by bridge or VLAN",
            )
        segments.setdefault(seg, path)
        if net.gateway is not None:
            check_subnet_member(out, f"{path}.gateway", net.gateway, net.cidr, f"{path}.cidr")
    for path, tenant_net in tenant_networks:
        seg = (tenant_net.bridge, tenant_net.vlan)
        if seg in segments:
            out.add(
                f"{path}.vlan",
                f"{_segment(*seg)} is already used by {segments[seg]}; each tenant needs its own bridge "
                "or VLAN (isolation)",
            )
        segments.setdefault(seg, path)


def check_disjoint_cidrs(cidrs: Sequence[tuple[str, IPv4Network]], out: Problems) -> None:
    """No two of the given CIDRs overlap; each overlap is reported once, at the later key."""
    for b, (path_b, net_b) in enumerate(cidrs):
        for path_a, net_a in cidrs[:b]:
            if net_a.overlaps(net_b):
                out.add(
                    path_b,
                    f"{net_b} overlaps {path_a} ({net_a}); node networks, pod, service and join CIDRs "
                    "must all be disjoint (Cilium chaining needs cluster-unique pod IPs)",
                )
                break
