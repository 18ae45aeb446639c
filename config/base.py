"""Building blocks of the stack configuration: the model base, scalar types, problems and range checks.

Every domain module of this package builds on these; this module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# --------------------------------------------------------------------------------------------------
# Scalar types. Patterns double as JSON-schema patterns; PATTERN_HELP turns them into plain words.
# --------------------------------------------------------------------------------------------------

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"
STORAGE_ID = r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
BRIDGE = r"^[A-Za-z][A-Za-z0-9_.-]*$"
TOKEN_ID = r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$"
RELEASE = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
CHART = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$"
KAMAJI_TAG = r"^[0-9]{2}\.[0-9]{1,2}\.[0-9]+-edge$"
TEMPLATE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_+.-]*$"
SSH_KEY = (
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)
LINUX_USER = r"^[a-z_][a-z0-9_-]*$"
HOST_PORT = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$"
SCHEDULE = r"^[A-Za-z0-9*,:./~ -]+$"
CHECKSUM = r"^(sha256|sha512):[0-9a-f]+$"

PATTERN_HELP: Final[Mapping[str, str]] = {
    DNS_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
    "with a letter or digit",
    DNS_SUBDOMAIN: "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'",
    HOSTNAME: "must be a host name: letters, digits and '-', starting and ending with a letter or digit",
    STORAGE_ID: "must be a Proxmox storage ID: a letter, then letters, digits, '-', '_' or '.'",
    BRIDGE: "must be a Linux bridge or SDN VNet name such as vmbr0",
    TOKEN_ID: "must be a Proxmox API token ID 'user@realm!tokenname', e.g. capmox@pve!capi "
    "(the token secret goes in the secret config key proxmoxTokenSecret)",
    RELEASE: "must be a release tag like v1.12.8 (with the leading 'v')",
    CHART: "must be a chart version like 1.19.5 or v1.20.2",
    KAMAJI_TAG: "must be a Kamaji edge image tag like 26.8.2-edge",
    TEMPLATE_TAG: "must be a Proxmox tag: letters, digits, '_', '-', '+' and '.'",
    SSH_KEY: "must be one OpenSSH public key line like 'ssh-ed25519 AAAA... comment'",
    LINUX_USER: "must be a Linux user name: lowercase letters, digits, '_' and '-'",
    HOST_PORT: "must be host:port, e.g. postgres.db.svc:5432 (no scheme)",
    SCHEDULE: "must be a Proxmox calendar event such as '02:00' or 'sun 01:30'",
    CHECKSUM: "must be 'sha256:<hex>' or 'sha512:<hex>'",
}
"""Plain-language meaning of each pattern used in the model, for error messages."""


def pattern(regex: str, max_length: int | None = None) -> StringConstraints:
    """A string constraint whose pattern PATTERN_HELP can explain."""
    return StringConstraints(pattern=regex, max_length=max_length)


TenantName = Annotated[str, pattern(DNS_LABEL, 30)]
PoolName = Annotated[str, pattern(DNS_LABEL, 20)]
TemplateName = Annotated[str, pattern(DNS_LABEL, 63)]
NodeName = Annotated[str, pattern(HOSTNAME, 63)]
StorageId = Annotated[str, pattern(STORAGE_ID, 64)]
StorageClassName = Annotated[str, pattern(DNS_SUBDOMAIN, 253)]
BridgeName = Annotated[str, pattern(BRIDGE, 15)]
KubeVersion = Annotated[str, pattern(RELEASE)]
ReleaseTag = Annotated[str, pattern(RELEASE)]
ChartVersion = Annotated[str, pattern(CHART)]
TemplateTag = Annotated[str, pattern(TEMPLATE_TAG, 64)]
SshPublicKey = Annotated[str, pattern(SSH_KEY)]
Vmid = Annotated[int, Field(ge=100, le=999_999_999)]


def _parse_cidr(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if "/" not in value:
        raise ValueError(f"must be an IPv4 network in CIDR notation like 10.0.0.0/24 (got {value!r})")
    try:
        net = ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"must be an IPv4 network in CIDR notation like 10.0.0.0/24 (got {value!r})") from None
    if not isinstance(net, IPv4Network):
        raise ValueError(f"must be an IPv4 network; this stack is IPv4-only (got {value!r})")
    if str(net) != value.strip():
        raise ValueError(f"{value!r} has host bits set; the network is {net}")
    return net


Cidr = Annotated[IPv4Network, BeforeValidator(_parse_cidr)]


class ConfigModel(BaseModel):
    """Base of every config model: camelCase YAML keys, unknown keys refused, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class VmidRange(ConfigModel):
    """An inclusive range of Proxmox VMIDs."""

    start: Vmid
    """First VMID of the range (100..999999999)."""
    end: Vmid
    """Last VMID of the range, inclusive."""

    @property
    def size(self) -> int:
        """Number of VMIDs in the range (0 when start > end)."""
        return max(0, self.end - self.start + 1)

    def contains(self, vmid: int) -> bool:
        """Whether ``vmid`` lies inside the range."""
        return self.start <= vmid <= self.end

    def overlaps(self, other: VmidRange) -> bool:
        """Whether the two ranges share at least one VMID."""
        return self.start <= other.end and other.start <= self.end


class VmIpRange(ConfigModel):
    """An inclusive range of IPv4 addresses, e.g. for VM NICs or LoadBalancer services."""

    start: IPv4Address
    """First address of the range."""
    end: IPv4Address
    """Last address of the range, inclusive."""

    @property
    def size(self) -> int:
        """Number of addresses in the range (0 when start > end)."""
        return max(0, int(self.end) - int(self.start) + 1)

    def contains(self, address: IPv4Address) -> bool:
        """Whether ``address`` lies inside the range."""
        return self.start <= address <= self.end

    def overlaps(self, other: VmIpRange) -> bool:
        """Whether the two ranges share at least one address."""
        return self.start <= other.end and other.start <= self.end

    def as_capmox(self) -> str:
        """The range in CAPMOX ``ipv4Config.addresses`` form, ``start-end``."""
        return f"{self.start}-{self.end}"


# --------------------------------------------------------------------------------------------------
# Problems: what preflight reports
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the stack configuration: where (YAML key path) and what is allowed."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def format_problems(problems: Sequence[ConfigProblem]) -> str:
    """Render problems as one readable message, one line per problem."""
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    lines = [f"Stack configuration is invalid ({count} {noun}):"]
    lines.extend(f"  - {problem}" for problem in problems)
    return "\n".join(lines)


class Problems:
    """Collects the problems of one preflight run; no check stops the others."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        """Record a problem at ``path``."""
        self.items.append(ConfigProblem(path, message))


def join(items: Iterable[object]) -> str:
    """Items as a comma-separated list, for messages."""
    return ", ".join(str(item) for item in items)


def check_subnet_member(out: Problems, path: str, address: IPv4Address, net: IPv4Network, what: str) -> bool:
    """The address lies in ``net`` and is neither its network nor its broadcast address."""
    if address not in net:
        out.add(path, f"{address} is outside {what} {net}")
        return False
    if net.prefixlen < 31 and address in (net.network_address, net.broadcast_address):
        kind = "network" if address == net.network_address else "broadcast"
        out.add(path, f"{address} is the {kind} address of {net}")
        return False
    return True


def check_range(out: Problems, path: str, rng: VmIpRange, net: IPv4Network, what: str) -> bool:
    """The range is ordered and both ends are usable addresses of ``net``."""
    if rng.start > rng.end:
        out.add(path, f"start {rng.start} is after end {rng.end}")
        return False
    ok = check_subnet_member(out, f"{path}.start", rng.start, net, what)
    return check_subnet_member(out, f"{path}.end", rng.end, net, what) and ok


def check_reserved_ip(
    out: Problems, path: str, address: IPv4Address, ranges: Sequence[tuple[str, VmIpRange | None]]
) -> None:
    """The address is outside every given range (a VIP or gateway must not be handed to a VM)."""
    for range_path, rng in ranges:
        if rng is not None and rng.contains(address):
            out.add(path, f"{address} lies inside {range_path} ({rng.start}-{rng.end}); keep it outside")
