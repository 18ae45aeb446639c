"""The declared shape of a Proxmox VM, validated: what a ProxmoxVm resource asks for.

Inputs arrive as plain dicts (from the Pulumi engine, snake_case keys). ``VmSpec.from_inputs`` turns
them into a frozen, normalised model, and reports every bad field by its input path so ``check()`` can
answer with one CheckFailure per field. Only the slots declared here (``scsiN``/``virtioN``/``sataN``
disks, ``netN`` NICs) are ever managed: anything else on the VM, such as volumes the Proxmox CSI driver
hot-plugs, is left alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from providers.proxmox.firewall import check_group_name
from providers.proxmox.wire import plain_numbers

DISK_SLOT = re.compile(r"^(scsi([0-9]|[1-2][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5])$")
NIC_SLOT = re.compile(r"^net([0-9]|[1-2][0-9]|3[0-1])$")
TAG = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$")
DNS_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
# pve-storage-id: at least two characters, ending in a letter or digit.
STORAGE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]$")
# pve-volume-id: ``<storage>:<volume>``, as cicustom's values must be.
VOLUME_ID = r"[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]:[^,\s]+"
BRIDGE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
MARKER = re.compile(r"^[0-9a-f]{32}$")
MARKER_TAG_PREFIX = "pulumi-"

# PVE's limit of the description (the ownership footer included).
PVE_DESCRIPTION_BYTES = 8192
MIN_VMID = 100
MAX_VMID = 999_999_999


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class VmidRange(_Model):
    """The VMIDs this VM may be given; allocated inside create, never reused across owners."""

    start: Annotated[int, Field(ge=MIN_VMID, le=MAX_VMID)] = 10_000
    end: Annotated[int, Field(ge=MIN_VMID, le=MAX_VMID)] = 99_999

    @model_validator(mode="after")
    def _ordered(self) -> VmidRange:
        if self.start > self.end:
            raise ValueError(f"start ({self.start}) must not be greater than end ({self.end})")
        return self


class Cpu(_Model):
    """CPU topology and model."""

    sockets: Annotated[int, Field(ge=1, le=4)] = 1
    cores: Annotated[int, Field(ge=1, le=512)] = 2
    type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$")] = "x86-64-v2-AES"


class Disk(_Model):
    """One managed disk slot. The template's boot disk is grown to ``size_gib``; new slots are allocated."""

    size_gib: Annotated[int, Field(ge=1, le=65_536)]
    storage: Annotated[str, Field(pattern=STORAGE_ID.pattern)] | None = None
    ssd: bool = True
    discard: bool = True
    iothread: bool = True


class Nic(_Model):
    """One managed NIC slot; the MAC address is assigned by Proxmox and kept."""

    bridge: Annotated[str, Field(pattern=BRIDGE.pattern)]
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    model: Literal["virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"] = "virtio"
    firewall: bool = True
    mtu: Annotated[int, Field(ge=576, le=65_520)] | None = None

    @field_validator("mtu")
    @classmethod
    def _mtu_virtio_only(cls, mtu: int | None, info: ValidationInfo) -> int | None:
        # qemu-server passes host_mtu only to virtio-net devices; on other models the value would do nothing.
        if mtu is not None and info.data.get("model", "virtio") != "virtio":
            raise ValueError(f"only virtio NICs take an MTU (model is {info.data.get('model')!r})")
        return mtu


def _usable_host(iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    """Refuse the subnet's own address and its IPv4 broadcast: no host can use them (RFC 3021 /31s can)."""
    net = iface.network
    if iface.version == 4 and net.prefixlen <= 30:
        if iface.ip == net.network_address:
            raise ValueError(f"{iface.ip} is the network address of {net}, not a host address")
        if iface.ip == net.broadcast_address:
            raise ValueError(f"{iface.ip} is the broadcast address of {net}, not a host address")
    if iface.version == 6 and net.prefixlen <= 126 and iface.ip == net.network_address:
        raise ValueError(f"{iface.ip} is the subnet-router anycast address of {net}, not a host address")


class IpConfig(_Model):
    """Cloud-init addressing of one NIC: ``dhcp`` or a CIDR address with an optional gateway."""

    ipv4: str | None = None
    gateway4: str | None = None
    ipv6: str | None = None
    gateway6: str | None = None

    @field_validator("ipv4")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is None or value == "dhcp":
            return value
        try:
            iface = ipaddress.IPv4Interface(value)
        except ValueError:
            raise ValueError(f"must be 'dhcp' or an IPv4 address with prefix (10.0.0.5/24), got {value!r}") from None
        if "/" not in value:
            raise ValueError(f"needs a prefix length (10.0.0.5/24), got {value!r}")
        _usable_host(iface)
        return value

    @field_validator("ipv6")
    @classmethod
    def _ipv6(cls, value: str | None) -> str | None:
        if value is None or value in ("dhcp", "auto"):
            return value
        try:
            iface = ipaddress.IPv6Interface(value)
        except ValueError:
            raise ValueError(f"must be 'dhcp', 'auto' or an IPv6 address with prefix, got {value!r}") from None
        _usable_host(iface)
        return value

    @field_validator("gateway4")
    @classmethod
    def _gw4(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            gateway = ipaddress.IPv4Address(value)
            own = info.data.get("ipv4")
            if own not in (None, "dhcp") and gateway == ipaddress.IPv4Interface(own).ip:
                raise ValueError(f"gateway4 {value} is the VM's own address")
        return value

    @field_validator("gateway6")
    @classmethod
    def _gw6(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        gateway = ipaddress.IPv6Address(value)
        if "ipv6" not in info.data:
            return value  # ipv6 itself was refused; that error is reported on its own
        own = info.data.get("ipv6")
        # PVE's pve-qm-ipconfig: gw6 requires ip6. A static gateway next to SLAAC or DHCPv6 is not applied by
        # cloud-init either (the router advertisement supplies it), so only a static ipv6 takes one.
        if own in (None, "dhcp", "auto"):
            raise ValueError("gateway6 needs a static ipv6 address (ipv6: <address>/<prefix>)")
        iface = ipaddress.IPv6Interface(own)
        if gateway == iface.ip:
            raise ValueError(f"gateway6 {value} is the VM's own address")
        # IPv6 routers are commonly addressed by their link-local address (fe80::1): that is on-link too.
        if gateway not in iface.network and not gateway.is_link_local:
            raise ValueError(f"gateway6 {value} is neither inside {iface.network} nor link-local")
        return value

    @model_validator(mode="after")
    def _gateway_in_subnet(self) -> IpConfig:
        if self.gateway4 and self.ipv4 in (None, "dhcp"):
            raise ValueError("gateway4 needs a static ipv4 address")
        if self.gateway4 and self.ipv4 and self.ipv4 != "dhcp":
            net = ipaddress.IPv4Interface(self.ipv4).network
            if ipaddress.IPv4Address(self.gateway4) not in net:
                raise ValueError(f"gateway4 {self.gateway4} is not inside {net}")
        return self

    def render(self) -> str:
        """The ``ipconfigN`` property string."""
        parts = []
        if self.ipv4:
            parts.append(f"ip={self.ipv4}")
        if self.gateway4:
            parts.append(f"gw={self.gateway4}")
        if self.ipv6:
            parts.append(f"ip6={self.ipv6}")
        if self.gateway6:
            parts.append(f"gw6={self.gateway6}")
        return ",".join(parts)


class CloudInit(_Model):
    """Cloud-init settings applied through Proxmox's cloud-init drive. The password is a separate, secret input."""

    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] | None = None
    ssh_keys: list[str] = Field(default_factory=list)
    ip_configs: dict[str, IpConfig] = Field(default_factory=dict)
    dns_servers: list[str] = Field(default_factory=list)
    search_domain: str | None = None
    custom_snippet: (
        Annotated[
            str,
            Field(
                # pve-qm-cicustom: each value is a volume id, ``user=local:snippets/user.yaml``.
                pattern=rf"^(user|network|meta|vendor)={VOLUME_ID}(,(user|network|meta|vendor)={VOLUME_ID})*$"
            ),
        ]
        | None
    ) = None
    upgrade: bool = False

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not re.match(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+", key):
                raise ValueError(f"not an OpenSSH public key: {key[:40]!r}")
        return keys

    @field_validator("ip_configs")
    @classmethod
    def _slots(cls, configs: dict[str, IpConfig]) -> dict[str, IpConfig]:
        for slot in configs:
            if not NIC_SLOT.match(slot):
                raise ValueError(f"key {slot!r} must be a NIC slot net0..net31")
        return configs

    @field_validator("dns_servers")
    @classmethod
    def _dns(cls, servers: list[str]) -> list[str]:
        for server in servers:
            ipaddress.ip_address(server)
        return servers


class VmFirewall(_Model):
    """The VM's own firewall: security groups bound to its NICs, and its default policies.

    Each group in ``groups[<slot>]`` becomes a rule ``type=group action=<group> iface=<slot>`` in the
    guest firewall (``/nodes/{node}/qemu/{vmid}/firewall/rules``), commented with this resource's
    ownership marker; then the guest firewall options are set (``enable``, ``policy_in``,
    ``policy_out``). On create this happens after the config is written and before the first start, so
    the VM never boots unprotected. Updates add missing bindings first and remove stale ones last, and
    only ever remove rules carrying this resource's marker: rules anyone else added stay, and are not
    reported either. The groups on one NIC are a set (sorted, duplicates dropped); their relative order
    among the guest's rules is not managed.

    Filtering needs all of: the **datacenter** firewall enabled (an operator's decision, never made by
    this provider: its host-level defaults can lock operators out of the Proxmox hosts), ``enabled``
    here, and ``firewall=1`` on the NIC (``nics.<slot>.firewall``, true by default). With ``policy_in``
    ``DROP`` every inbound packet no bound group accepts is dropped.

    Without a ``firewall`` input (None) the guest firewall is not managed at all; removing the input
    from a VM that had it leaves the guest firewall as it is (unbinding the groups while ``policy_in``
    stays ``DROP`` would cut the VM off). The groups must exist before the VM: depend on them.
    """

    enabled: bool = True
    policy_in: Literal["DROP", "ACCEPT", "REJECT"] = "DROP"
    policy_out: Literal["DROP", "ACCEPT", "REJECT"] = "ACCEPT"
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for slot, names in sorted(groups.items()):
            if not NIC_SLOT.match(slot):
                raise ValueError(f"key {slot!r} must be a NIC slot net0..net31")
            for name in names:
                check_group_name(name)
            if names:
                out[slot] = sorted(set(names))
        return out

    def bindings(self) -> list[tuple[str, str]]:
        """(group, NIC slot) of every binding, sorted by slot then group."""
        return [(group, slot) for slot, names in sorted(self.groups.items()) for group in names]


class WaitForIp(_Model):
    """Whether create waits for the guest agent to report an address, and for how long."""

    family: Literal["ipv4", "ipv6", "any", "none"] = "ipv4"
    timeout_s: Annotated[int, Field(ge=0, le=3600)] = 300


class Timeouts(_Model):
    """Per-operation timeouts in seconds (the Python dynamic-provider host ignores customTimeouts)."""

    clone: Annotated[int, Field(ge=10)] = 1800
    config: Annotated[int, Field(ge=10)] = 300
    start: Annotated[int, Field(ge=10)] = 300
    shutdown: Annotated[int, Field(ge=10)] = 180
    delete: Annotated[int, Field(ge=10)] = 600


class VmSpec(_Model):
    """Everything a ProxmoxVm declares. See README "ProxmoxVm inputs" for each field."""

    name: Annotated[str, Field(pattern=DNS_NAME.pattern)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    marker: Annotated[str, Field(pattern=MARKER.pattern)]
    node: Annotated[str, Field(pattern=NODE_NAME.pattern)] | None = None
    allowed_nodes: list[Annotated[str, Field(pattern=NODE_NAME.pattern)]] = Field(default_factory=list)
    template_vmid: Annotated[int, Field(ge=MIN_VMID, le=MAX_VMID)] | None = None
    template_tags: list[str] = Field(default_factory=list)
    clone_mode: Literal["full", "linked"] = "full"
    storage: Annotated[str, Field(pattern=STORAGE_ID.pattern)] | None = None
    disk_format: Literal["raw", "qcow2", "vmdk"] | None = None
    vmid_range: VmidRange = Field(default_factory=VmidRange)
    description: Annotated[str, Field(max_length=4000)] = ""
    pool: Annotated[str, Field(pattern=r"^[A-Za-z0-9\-_.]+$")] | None = None
    tags: list[str] = Field(default_factory=list)
    cpu: Cpu = Field(default_factory=Cpu)
    memory_mib: Annotated[int, Field(ge=16, le=4_194_304)] = 2048
    balloon_mib: Annotated[int, Field(ge=0, le=4_194_304)] | None = None
    disks: dict[str, Disk] = Field(default_factory=dict)
    nics: dict[str, Nic] = Field(default_factory=dict)
    cloud_init: CloudInit | None = None
    firewall: VmFirewall | None = None
    agent: bool = True
    wait_for_ip: WaitForIp = Field(default_factory=WaitForIp)
    on_boot: bool = False
    started: bool = True
    reboot_after_update: bool = False
    migrate_on_node_change: bool = False
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("tags", "template_tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        out = sorted({t.strip().lower() for t in tags})
        for tag in out:
            if not TAG.match(tag):
                raise ValueError(f"tag {tag!r} may only hold a-z, 0-9, '_', '-', '+', '.' and not start with -+.")
            if tag.startswith(MARKER_TAG_PREFIX) and len(tag) == len(MARKER_TAG_PREFIX) + 16:
                raise ValueError(f"tag {tag!r} looks like an ownership marker; the prefix pulumi- is reserved")
        return out

    @field_validator("description")
    @classmethod
    def _description_bytes(cls, text: str, info: ValidationInfo) -> str:
        # PVE's schema: at most 8192 (Perl counts UTF-8 bytes), for the text plus the ownership footer.
        footer = f"\n\n[managed by pulumi: owner={quote(str(info.data.get('owner', '')), safe='/')} marker={'0' * 32}]"
        room = PVE_DESCRIPTION_BYTES - len(footer.encode())
        if len(text.encode()) > room:
            raise ValueError(f"is {len(text.encode())} bytes as UTF-8; with the ownership footer at most {room} fit")
        return text

    @field_validator("allowed_nodes")
    @classmethod
    def _nodes(cls, nodes: list[str]) -> list[str]:
        return sorted(set(nodes))

    @field_validator("disks")
    @classmethod
    def _disk_slots(cls, disks: dict[str, Disk]) -> dict[str, Disk]:
        for slot in disks:
            if not DISK_SLOT.match(slot):
                raise ValueError(f"key {slot!r} must be a disk slot: scsi0..scsi30, virtio0..virtio15, sata0..sata5")
        return disks

    @field_validator("nics")
    @classmethod
    def _nic_slots(cls, nics: dict[str, Nic]) -> dict[str, Nic]:
        for slot in nics:
            if not NIC_SLOT.match(slot):
                raise ValueError(f"key {slot!r} must be a NIC slot net0..net31")
        return nics

    @model_validator(mode="after")
    def _consistent(self) -> VmSpec:
        if (self.template_vmid is None) == (not self.template_tags):
            raise ValueError("give exactly one of template_vmid or template_tags")
        if not self.node and not self.allowed_nodes:
            raise ValueError("give node or allowed_nodes")
        if self.node and self.allowed_nodes and self.node not in self.allowed_nodes:
            raise ValueError(f"node {self.node!r} is not in allowed_nodes {self.allowed_nodes}")
        if self.clone_mode == "linked" and (self.storage or self.disk_format):
            raise ValueError("storage and disk_format only apply to full clones (clone_mode: full)")
        if self.balloon_mib and self.balloon_mib > self.memory_mib:
            raise ValueError(f"balloon_mib ({self.balloon_mib}) must not exceed memory_mib ({self.memory_mib})")
        if self.cloud_init:
            unknown = sorted(set(self.cloud_init.ip_configs) - set(self.nics))
            if unknown and self.nics:
                raise ValueError(f"cloud_init.ip_configs names NIC slots that are not declared in nics: {unknown}")
        if self.firewall is not None:
            undeclared = sorted(set(self.firewall.groups) - set(self.nics))
            if undeclared:
                raise ValueError(f"firewall.groups names NIC slots that are not declared in nics: {undeclared}")
        return self

    def declaration_problems(self) -> list[tuple[str, str]]:
        """Declarations that are valid but do nothing; ``check()`` refuses them (refreshed state may hold them).

        Security groups bound to a NIC declared with ``firewall: false`` would filter nothing.
        """
        if self.firewall is None:
            return []
        return [
            (
                f"firewall.groups.{slot}",
                f"nics.{slot}.firewall is false: the security groups bound to {slot} would filter nothing",
            )
            for slot in sorted(self.firewall.groups)
            if slot in self.nics and not self.nics[slot].firewall
        ]

    # ------------------------------------------------------------------ helpers

    @property
    def marker_tag(self) -> str:
        """The tag every VM of this resource carries: ``pulumi-<first 16 hex digits of the marker>``."""
        return MARKER_TAG_PREFIX + self.marker[:16]

    @property
    def candidate_nodes(self) -> list[str]:
        """Where the VM may be placed, pinned node first."""
        if self.node:
            return [self.node]
        return list(self.allowed_nodes)

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any], *, known: Collection[str] | None = None) -> VmSpec:
        """Validate raw inputs; raise SpecError listing every bad field.

        With ``known`` (the provider's own non-spec keys: outputs, the password), any other top-level key
        is refused as unknown, the way nested unknown keys always are: ``check()`` passes it so a typo
        never silently does nothing. Without it, unknown keys are dropped, so state written by an older
        version (which may hold keys since removed) still loads in read, diff and delete.
        """
        inputs = plain_numbers(inputs)
        clean = {k: v for k, v in inputs.items() if not k.startswith("__") and k in cls.model_fields}
        unknown = []
        if known is not None:
            allowed = set(known)
            unknown = sorted(k for k in inputs if not k.startswith("__") and k not in set(cls.model_fields) | allowed)
        try:
            spec = cls.model_validate(clean)
        except ValidationError as exc:
            raise SpecError([*((k, "is not a known field") for k in unknown), *_problems(exc)]) from None
        if unknown:
            raise SpecError([(k, "is not a known field") for k in unknown])
        return spec

    def to_inputs(self) -> dict[str, Any]:
        """The canonical input dict (what state stores and diff compares)."""
        return self.model_dump(mode="json")


class SpecError(ValueError):
    """Invalid ProxmoxVm inputs: a list of (field path, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("invalid ProxmoxVm inputs: " + "; ".join(f"{p}: {r}" for p, r in problems))


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(resource)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a known field"
        out.append((path, message))
    return out
