"""The Proxmox domain: how the API is reached, the nodes, the VM templates, and their preflight.

``Inventory`` is what the other domains may refer to (node names, their storages, template names); it
is handed to their checks so that they never need the whole stack model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

from config.base import (
    CHECKSUM,
    HOSTNAME,
    TOKEN_ID,
    ConfigModel,
    NodeName,
    Problems,
    StorageId,
    TemplateTag,
    Vmid,
    VmidRange,
    join,
    pattern,
)


def _check_endpoint(value: str) -> str:
    from urllib.parse import urlsplit

    allowed = "the base URL of the Proxmox API, e.g. https://pve1.example.com:8006"
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"must be {allowed} (got {value!r})") from None
    if parts.scheme != "https":
        raise ValueError(f"must use https: {allowed} (got {value!r})")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError(f"must be {allowed}, with a host and no user info (got {value!r})")
    if parts.path.rstrip("/") == "/api2/json":
        raise ValueError(
            f"must be {allowed} without /api2/json: the program appends it where a consumer needs it "
            "(CSI, CCM) and CAPMOX must not get it"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be {allowed}, with no path, query or fragment (got {value!r})")
    return f"https://{parts.hostname}" + (f":{port}" if port is not None else "")


def _check_ca_bundle(value: str) -> str:
    if "-----BEGIN" in value:
        if "-----BEGIN CERTIFICATE-----" not in value or "-----END CERTIFICATE-----" not in value:
            raise ValueError("must be a PEM certificate bundle or a file path; the PEM text is incomplete")
        return value
    if not value.strip() or "\n" in value:
        raise ValueError("must be a PEM certificate bundle or a file path")
    return value


class ProxmoxConfig(ConfigModel):
    """How the program reaches the Proxmox VE API (the token secret is the secret key proxmoxTokenSecret)."""

    endpoint: Annotated[
        str,
        AfterValidator(_check_endpoint),
        Field(json_schema_extra={"pattern": r"^https://[^/?#]+/?$"}),
    ]
    """Base URL of the API, https only, without /api2/json, e.g. https://pve1.example.com:8006."""
    token_id: Annotated[str, pattern(TOKEN_ID)]
    """API token ID, user@realm!tokenname."""
    verify_tls: bool = True
    """Verify the API's TLS certificate; false is the explicit, visible opt-out."""
    ca_bundle: Annotated[str, AfterValidator(_check_ca_bundle)] | None = None
    """CA bundle (PEM text or a file path) that signs the API certificate."""
    cluster_name: Annotated[str, pattern(HOSTNAME, 15)]
    """Proxmox cluster name; also the CSI/CCM topology region label."""
    http_timeout_seconds: int = Field(default=60, ge=30, le=3600)
    """Timeout of one API call, in seconds."""
    max_concurrent_clones_per_node: int = Field(default=2, ge=1, le=16)
    """How many clones may run at once on one node."""

    @property
    def api_url(self) -> str:
        """The URL with /api2/json, as the CSI driver and the CCM want it (CAPMOX wants ``endpoint``)."""
        return f"{self.endpoint}/api2/json"


class NodeConfig(ConfigModel):
    """A Proxmox VE node that may run the platform's VMs."""

    name: NodeName
    """Node name as Proxmox knows it; also the CSI topology zone."""
    storages: tuple[StorageId, ...] = Field(min_length=1)
    """Storage IDs available on this node (local and shared)."""
    weight: int | None = Field(default=None, ge=1, le=100)
    """Relative share of VMs placed on this node (default: equal shares)."""


class TemplateConfig(ConfigModel):
    """A VM template: an existing one (vmid + node), one found by tags, or one built from a cloud image."""

    vmid: Vmid | None = None
    """VMID of an existing template, or the VMID to give the template built from cloudImageUrl."""
    tags: tuple[TemplateTag, ...] = ()
    """Proxmox tags that select the template (CAPMOX templateSelector.matchTags)."""
    node: NodeName | None = None
    """Node holding the template (with vmid or cloudImageUrl)."""
    cloud_image_url: Annotated[str, pattern(r"^https://[^\s]+$")] | None = None
    """https URL of a cloud image to build the template from."""
    cloud_image_checksum: Annotated[str, pattern(CHECKSUM)] | None = None
    """Checksum of the cloud image, sha256:<hex> or sha512:<hex>."""
    storage: StorageId | None = None
    """Storage that receives the built template's disk (with cloudImageUrl)."""


@dataclass(frozen=True)
class Inventory:
    """The Proxmox things other domains refer to by name: nodes (with storages) and templates."""

    nodes: tuple[NodeConfig, ...]
    templates: Mapping[str, TemplateConfig]
    default_template: str
    """The template used where none is named (versions.vmTemplate)."""

    def node_names(self) -> tuple[str, ...]:
        """Names of the declared nodes, in order."""
        return tuple(node.name for node in self.nodes)

    def storages_on(self, node_name: str) -> frozenset[str]:
        """Storage IDs declared on a node (empty for an unknown node)."""
        for node in self.nodes:
            if node.name == node_name:
                return frozenset(node.storages)
        return frozenset()

    def all_storages(self) -> frozenset[str]:
        """Every storage ID declared on any node."""
        return frozenset(s for node in self.nodes for s in node.storages)

    def check_node_refs(self, out: Problems, path: str, names: Sequence[str]) -> None:
        """Every name is a declared node."""
        known = self.node_names()
        for j, name in enumerate(names):
            if name not in known:
                out.add(f"{path}[{j}]", f"unknown node {name!r}; declared nodes: {join(known)}")

    def check_template_ref(self, out: Problems, path: str, name: str | None) -> None:
        """The template (or the default one when ``name`` is None) is declared."""
        resolved = name if name is not None else self.default_template
        if resolved in self.templates:
            return
        declared = join(self.templates) or "none"
        if name is None:
            out.add(
                path,
                f"defaults to versions.vmTemplate {resolved!r}, which is not declared in templates "
                f"(declared: {declared}); declare it or name a template here",
            )
        else:
            out.add(path, f"unknown template {name!r}; declared templates: {declared}")


def check_proxmox(proxmox: ProxmoxConfig, out: Problems) -> None:
    """TLS settings that contradict each other."""
    if not proxmox.verify_tls and proxmox.ca_bundle is not None:
        out.add("proxmox.caBundle", "only used when verifyTls is true; remove one of them")


def check_nodes(nodes: Sequence[NodeConfig], out: Problems) -> None:
    """Node names are unique and no node lists a storage twice."""
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in seen:
            out.add(f"nodes[{i}].name", f"duplicate node {node.name!r} (also nodes[{seen[node.name]}])")
        seen.setdefault(node.name, i)
        dupes = sorted({s for s in node.storages if node.storages.count(s) > 1})
        if dupes:
            out.add(f"nodes[{i}].storages", f"lists {join(dupes)} more than once")


def check_templates(inventory: Inventory, out: Problems) -> None:
    """Each template has exactly one source, its node and storage exist, and VMIDs are unique."""
    vmids: dict[int, str] = {}
    for name, tpl in inventory.templates.items():
        path = f"templates.{name}"
        has_tags, has_vmid, has_url = bool(tpl.tags), tpl.vmid is not None, tpl.cloud_image_url is not None
        if not (has_tags or has_vmid or has_url):
            out.add(
                path,
                "needs exactly one source: vmid + node (an existing template), tags (found by "
                "tags), or cloudImageUrl + vmid + node + storage (built from a cloud image)",
            )
            continue
        if has_tags and (has_vmid or has_url):
            out.add(f"{path}.tags", "cannot be combined with vmid or cloudImageUrl; choose one source")
            continue
        if has_url and not has_vmid:
            out.add(f"{path}.vmid", "required with cloudImageUrl: the VMID to give the built template")
        if (has_vmid or has_url) and tpl.node is None:
            out.add(f"{path}.node", "required with vmid or cloudImageUrl: the node holding the template")
        if has_tags and tpl.node is not None:
            out.add(f"{path}.node", "only used with vmid or cloudImageUrl, not with tags")
        if has_url and tpl.storage is None:
            out.add(f"{path}.storage", "required with cloudImageUrl: the storage for the template's disk")
        if not has_url:
            for key, value in (("storage", tpl.storage), ("cloudImageChecksum", tpl.cloud_image_checksum)):
                if value is not None:
                    out.add(f"{path}.{key}", "only used with cloudImageUrl")
        if tpl.node is not None and tpl.node not in inventory.node_names():
            out.add(f"{path}.node", f"unknown node {tpl.node!r}; declared nodes: {join(inventory.node_names())}")
        elif (
            tpl.node is not None
            and has_url
            and tpl.storage is not None
            and tpl.storage not in inventory.storages_on(tpl.node)
        ):
            out.add(
                f"{path}.storage",
                f"storage {tpl.storage!r} is not on node {tpl.node} "
                f"(its storages: {join(sorted(inventory.storages_on(tpl.node)))})",
            )
        if tpl.vmid is not None:
            if tpl.vmid in vmids:
                out.add(f"{path}.vmid", f"VMID {tpl.vmid} is also used by templates.{vmids[tpl.vmid]}")
            vmids.setdefault(tpl.vmid, name)


def check_vmid_ranges(
    out: Problems,
    ranges: Sequence[tuple[str, VmidRange]],
    templates: Mapping[str, TemplateConfig],
    reserved: Mapping[int, str],
) -> list[tuple[str, VmidRange]]:
    """VMID ranges are ordered, disjoint, avoid reserved VMIDs and template VMIDs; return the valid ones."""
    valid: list[tuple[str, VmidRange]] = []
    for path, rng in ranges:
        if rng.start > rng.end:
            out.add(path, f"start {rng.start} is after end {rng.end}")
            continue
        clash = next(((p, r) for p, r in valid if r.overlaps(rng)), None)
        if clash is not None:
            out.add(path, f"{rng.start}-{rng.end} overlaps {clash[0]} ({clash[1].start}-{clash[1].end})")
        for vmid, owner in reserved.items():
            if rng.contains(vmid):
                out.add(path, f"contains VMID {vmid}, reserved for {owner}")
        valid.append((path, rng))
    for name, tpl in templates.items():
        if tpl.vmid is None:
            continue
        for path, rng in valid:
            if rng.contains(tpl.vmid):
                out.add(f"templates.{name}.vmid", f"VMID {tpl.vmid} lies inside {path} ({rng.start}-{rng.end})")
    return valid
