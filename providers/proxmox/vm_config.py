"""Translation between a VmSpec and Proxmox's VM config keys, both ways.

``render_options`` gives the scalar config keys a spec manages (CPU, memory, tags, cloud-init, ...),
``render_nic``/``render_new_disk`` the slot values, and ``observe`` reads a config returned by
``GET /nodes/{node}/qemu/{vmid}/config`` back into the same normalised form, so that drift and diffs
compare like with like (PVE returns numbers as strings, sorts tags, and changes MAC case).
``firewall_comment`` is the mark on the guest firewall rules a ProxmoxVm adds, and ``firewall_marker``
reads it back, so that only those rules are ever reported or removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from providers.proxmox.vm_spec import MARKER_TAG_PREFIX, Disk, Nic, VmSpec

FIREWALL_COMMENT = re.compile(r"^managed by pulumi ProxmoxVm marker=(?P<marker>[0-9a-f]{32})$")
FOOTER = re.compile(r"\n*\[managed by pulumi: owner=(?P<owner>[^\]\s]+) marker=(?P<marker>[0-9a-f]{32})\]\s*$")
SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)")
UNIT_GIB = {"K": 1 / (1024 * 1024), "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1 / (1024**3)}

# Which input field a config key belongs to, for readable diffs.
KEY_FIELDS = {
    "name": "name",
    "description": "description",
    "tags": "tags",
    "cores": "cpu",
    "sockets": "cpu",
    "cpu": "cpu",
    "memory": "memory_mib",
    "balloon": "balloon_mib",
    "agent": "agent",
    "onboot": "on_boot",
    "ciuser": "cloud_init",
    "sshkeys": "cloud_init",
    "nameserver": "cloud_init",
    "searchdomain": "cloud_init",
    "cicustom": "cloud_init",
    "ciupgrade": "cloud_init",
    "cipassword": "cloud_init_password",
}
CLOUD_INIT_KEYS = ("ciuser", "cipassword", "sshkeys", "nameserver", "searchdomain", "cicustom", "ciupgrade")


def field_of(key: str) -> str:
    """The input field a config key is rendered from."""
    if key.startswith("ipconfig"):
        return "cloud_init"
    if key.startswith("net"):
        return "nics"
    return KEY_FIELDS.get(key, key)


def description_with_marker(spec: VmSpec) -> str:
    """The description written to PVE: the user's text plus the ownership footer."""
    footer = f"[managed by pulumi: owner={quote(spec.owner, safe='/')} marker={spec.marker}]"
    return f"{spec.description}\n\n{footer}" if spec.description else footer


def split_description(text: str) -> tuple[str, str | None, str | None]:
    """(user description, owner, marker) from a description PVE returned."""
    found = FOOTER.search(text or "")
    if not found:
        return text or "", None, None
    return text[: found.start()].rstrip("\n"), unquote(found.group("owner")), found.group("marker")


def firewall_comment(marker: str) -> str:
    """The comment on every guest firewall rule the resource with this ownership marker added."""
    return f"managed by pulumi ProxmoxVm marker={marker}"


def firewall_marker(comment: str) -> str | None:
    """The ownership marker a guest firewall rule's comment names, or None for a rule nobody here added."""
    found = FIREWALL_COMMENT.match(comment.strip())
    return found.group("marker") if found else None


def render_tags(spec: VmSpec) -> str:
    """User tags plus the ownership tag, as PVE stores them (sorted, ';'-joined)."""
    return ";".join(sorted({*spec.tags, spec.marker_tag}))


def render_options(spec: VmSpec, password: str | None = None) -> dict[str, str]:
    """The scalar config keys the spec manages, as strings PVE would return them."""
    cfg: dict[str, str] = {
        "name": spec.name,
        "description": description_with_marker(spec),
        "tags": render_tags(spec),
        "cores": str(spec.cpu.cores),
        "sockets": str(spec.cpu.sockets),
        "cpu": spec.cpu.type,
        "memory": str(spec.memory_mib),
        "agent": "1" if spec.agent else "0",
        "onboot": "1" if spec.on_boot else "0",
    }
    if spec.balloon_mib is not None:
        cfg["balloon"] = str(spec.balloon_mib)
    ci = spec.cloud_init
    if ci is not None:
        if ci.user:
            cfg["ciuser"] = ci.user
        if ci.ssh_keys:
            # PVE wants the key list URL-encoded (spaces as %20), one key per line.
            cfg["sshkeys"] = quote("\n".join(ci.ssh_keys), safe="")
        if ci.dns_servers:
            cfg["nameserver"] = " ".join(ci.dns_servers)
        if ci.search_domain:
            cfg["searchdomain"] = ci.search_domain
        if ci.custom_snippet:
            cfg["cicustom"] = ci.custom_snippet
        if ci.upgrade:
            cfg["ciupgrade"] = "1"
        for slot, ip in sorted(ci.ip_configs.items()):
            cfg["ipconfig" + slot.removeprefix("net")] = ip.render()
        if password:
            cfg["cipassword"] = password
    return cfg


def render_nic(nic: Nic, mac: str | None = None) -> str:
    """The ``netN`` property string; keeps the MAC Proxmox assigned."""
    parts = [f"{nic.model}={mac.upper()}" if mac else nic.model, f"bridge={nic.bridge}"]
    if nic.vlan is not None:
        parts.append(f"tag={nic.vlan}")
    parts.append(f"firewall={1 if nic.firewall else 0}")
    if nic.mtu is not None:
        parts.append(f"mtu={nic.mtu}")
    return ",".join(parts)


def disk_options(disk: Disk, slot: str) -> list[str]:
    """Drive options we manage on a disk slot."""
    opts = []
    if disk.discard:
        opts.append("discard=on")
    if disk.iothread and slot.startswith(("scsi", "virtio")):
        opts.append("iothread=1")
    if disk.ssd and not slot.startswith("virtio"):
        opts.append("ssd=1")
    return opts


def render_new_disk(slot: str, disk: Disk, default_storage: str) -> str:
    """The value that allocates a new volume: ``<storage>:<size in GiB>`` plus options."""
    storage = disk.storage or default_storage
    return ",".join([f"{storage}:{disk.size_gib}", *disk_options(disk, slot)])


@dataclass(frozen=True)
class ObservedNic:
    """A NIC as read from the config."""

    model: str
    mac: str | None
    bridge: str | None
    vlan: int | None
    firewall: bool
    mtu: int | None


@dataclass(frozen=True)
class ObservedDisk:
    """A disk as read from the config."""

    volume: str
    storage: str | None
    size_gib: float | None
    raw: str


@dataclass
class Observed:
    """A VM config read back and normalised."""

    options: dict[str, str] = field(default_factory=dict)
    nics: dict[str, ObservedNic] = field(default_factory=dict)
    disks: dict[str, ObservedDisk] = field(default_factory=dict)
    owner: str | None = None
    marker: str | None = None
    user_description: str = ""
    user_tags: list[str] = field(default_factory=list)
    marker_tags: list[str] = field(default_factory=list)
    digest: str | None = None
    lock: str | None = None
    template: bool = False


def parse_props(value: str) -> tuple[str, dict[str, str]]:
    """Split ``first,k=v,k=v`` into (first, {k: v}); a first item with ``=`` lands in the dict too."""
    items = [p for p in str(value).split(",") if p]
    first = items[0] if items else ""
    props: dict[str, str] = {}
    for item in items[1:]:
        key, _, val = item.partition("=")
        props[key] = val
    return first, props


def parse_nic(value: str) -> ObservedNic:
    """Parse ``virtio=BC:24:11:..,bridge=vmbr0,tag=20,firewall=1``."""
    first, props = parse_props(value)
    model, _, mac = first.partition("=")
    return ObservedNic(
        model=model,
        mac=mac.upper() or None,
        bridge=props.get("bridge"),
        vlan=int(props["tag"]) if props.get("tag") else None,
        firewall=props.get("firewall") == "1",
        mtu=int(props["mtu"]) if props.get("mtu") else None,
    )


def parse_disk(value: str) -> ObservedDisk:
    """Parse ``local-lvm:vm-101-disk-0,size=10G,ssd=1``."""
    volume, _ = parse_props(value)
    found = SIZE.search(value)
    size = float(found.group(1)) * UNIT_GIB[found.group(2)] if found else None
    storage = volume.split(":", 1)[0] if ":" in volume else None
    return ObservedDisk(volume=volume, storage=storage, size_gib=size, raw=value)


def _flag(value: Any) -> str:
    first, _ = parse_props(str(value))
    if first.startswith("enabled="):
        return "1" if first.endswith("1") else "0"
    return "1" if first in ("1", "true") else "0"


def observe(config: dict[str, Any], *, disk_slots: set[str], nic_slots: set[str]) -> Observed:
    """Normalise a PVE config; only the given disk and NIC slots are looked at."""
    obs = Observed(digest=config.get("digest"), lock=config.get("lock"), template=str(config.get("template")) == "1")
    description, obs.owner, obs.marker = split_description(str(config.get("description", "")))
    obs.user_description = description
    tags = sorted({t.lower() for t in re.split(r"[;, ]+", str(config.get("tags", ""))) if t})
    obs.marker_tags = [t for t in tags if t.startswith(MARKER_TAG_PREFIX) and len(t) == len(MARKER_TAG_PREFIX) + 16]
    obs.user_tags = [t for t in tags if t not in obs.marker_tags]
    for key in ("name", "cores", "sockets", "cpu", "memory", "balloon", *CLOUD_INIT_KEYS):
        if config.get(key) not in (None, ""):
            obs.options[key] = str(config[key])
    obs.options["description"] = str(config.get("description", ""))
    obs.options["tags"] = ";".join(tags)
    obs.options.setdefault("cores", "1")
    obs.options.setdefault("sockets", "1")
    obs.options["agent"] = _flag(config.get("agent", "0"))
    obs.options["onboot"] = _flag(config.get("onboot", "0"))
    for key, value in config.items():
        if key.startswith("ipconfig"):
            obs.options[key] = str(value)
    for slot in nic_slots:
        if slot in config:
            obs.nics[slot] = parse_nic(str(config[slot]))
    for slot in disk_slots:
        if slot in config:
            obs.disks[slot] = parse_disk(str(config[slot]))
    return obs
