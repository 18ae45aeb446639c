"""ProxmoxTemplate: a Pulumi dynamic resource for a VM template built from a cloud image URL.

Written like ``providers/dynamic/vm.py``: the provider class is importable and holds no state, so dill
pickles it *by reference*; the connection comes from the stack config in ``configure()``
(``providers/dynamic/runtime.py``). All Proxmox work is in ``providers/proxmox/templates.py``.

* check() validates locally, derives the content-addressed image file name, and fixes the ownership
  marker once (a new one whenever a change builds a new template, so a successor never adopts, or is
  confused with, the template it replaces).
* diff() is explicit: the image, node, VMID, storage, network and pool rebuild the template
  (``REPLACE_FIELDS``; with a fixed VMID the old one is deleted first); name, tags, description, cores,
  memory and CPU type are written in place; the image staging options change nothing in Proxmox.
* The id is ``<node>/<vmid>``. Anything that clones the template should take ``vmid`` from this
  resource's output, which makes it depend on the template.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pulumi
from pulumi import dynamic

from providers.dynamic import runtime
from providers.dynamic.base import ProxmoxProvider
from providers.dynamic.inputs import has_unknown as _has_unknown
from providers.proxmox.templates import (
    CONFIG_FIELDS,
    REPLACE_FIELDS,
    TemplateOperations,
    TemplateSpec,
    TemplateSpecError,
)

log = logging.getLogger(__name__)

INPUT_FIELDS = tuple(f.name for f in fields(TemplateSpec))
OUTPUT_FIELDS = ("vmid", "current_node", "current_tags", "boot_disk", "adopted")


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in INPUT_FIELDS if k in props}


def _canonical(props: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return TemplateSpec.from_inputs(_inputs(props)).to_inputs()
    except TemplateSpecError:
        return _inputs(props)


def _parse_id(id_: str) -> tuple[str, int]:
    node, _, vmid = id_.partition("/")
    if not node or not vmid.isdigit():
        raise ValueError(f"a ProxmoxTemplate id is '<node>/<vmid>', got {id_!r}")
    return node, int(vmid)


def _marker(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str:
    """Keep the marker unless a change builds a new template."""
    old_marker = olds.get("marker")
    if not old_marker:
        return str(news.get("marker") or uuid.uuid4().hex)
    old, new = _canonical(olds), _canonical(news)
    if any(old.get(f) != new.get(f) for f in REPLACE_FIELDS):
        return uuid.uuid4().hex
    return str(old_marker)


def _ops() -> TemplateOperations:
    client, _ = runtime.client()
    return TemplateOperations(client)


class ProxmoxTemplateProvider(ProxmoxProvider):
    """CRUD of cloud-image VM templates for the Pulumi engine."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate without calling Proxmox; canonicalise; fix the ownership marker."""
        inputs = _inputs(news)
        if _has_unknown(inputs):
            inputs["marker"] = str(_olds.get("marker") or uuid.uuid4().hex)
            return dynamic.CheckResult(inputs, [])
        inputs["marker"] = _marker(_olds, inputs)
        try:
            spec = TemplateSpec.from_inputs(inputs)
        except TemplateSpecError as exc:
            return dynamic.CheckResult(inputs, [dynamic.CheckFailure(n, r) for n, r in exc.problems])
        return dynamic.CheckResult(spec.to_inputs(), [])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """Replace on image/placement changes, update in place otherwise (see the module docstring)."""
        _, vmid = _parse_id(id_)
        old = _canonical(olds)
        if _has_unknown(news):
            new = _inputs(news)
            unknown = [k for k, v in new.items() if _has_unknown(v)]
            known = [k for k, v in new.items() if k not in unknown and k != "marker" and v != old.get(k)]
            replaces = [k for k in (*unknown, *known) if k in REPLACE_FIELDS]
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=_reuses_vmid(new, vmid))
        new = _canonical(news)
        changed = [k for k in INPUT_FIELDS if k != "marker" and old.get(k) != new.get(k)]
        replaces = [k for k in changed if k in REPLACE_FIELDS]
        if "vmid_range" in changed and new.get("vmid") is None:
            spec = TemplateSpec.from_inputs(new)
            if not spec.in_range(vmid):
                replaces.append("vmid_range")
        return dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=_reuses_vmid(new, vmid)
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Download the image, create the VM, convert it; nothing is left behind on failure."""
        spec = TemplateSpec.from_inputs(props)
        state = _ops().create(spec)
        log.info("ProxmoxTemplate %s: %s/%s", spec.name, state.node, state.vmid)
        return dynamic.CreateResult(f"{state.node}/{state.vmid}", {**spec.to_inputs(), **state.outputs()})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``ResourceOptions(import_="<node>/<vmid>")`` with the program's inputs)."""
        _, vmid = _parse_id(id_)
        importing = "vmid" not in props or props.get("current_node") is None
        inputs = _inputs(props)
        inputs.setdefault("marker", uuid.uuid4().hex)
        if not inputs.get("marker"):
            inputs["marker"] = uuid.uuid4().hex
        spec = TemplateSpec.from_inputs(inputs)
        found = _ops().read(vmid, spec, adopt_unmarked=importing)
        if found is None:
            return dynamic.ReadResult(None, {})
        state, refreshed = found
        state.adopted = bool(props.get("adopted")) or importing
        new_inputs = refreshed.to_inputs()
        return dynamic.ReadResult(f"{state.node}/{state.vmid}", {**new_inputs, **state.outputs()}, new_inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Write name, tags, description, cores, memory and CPU type; staging options are only stored."""
        _, vmid = _parse_id(id_)
        old, new = TemplateSpec.from_inputs(_canonical(olds)), TemplateSpec.from_inputs(news)
        old_inputs, new_inputs = old.to_inputs(), new.to_inputs()
        ops = _ops()
        if any(old_inputs[k] != new_inputs[k] for k in CONFIG_FIELDS):
            state = ops.update(vmid, old, new)
            outputs = state.outputs()
        else:
            outputs = {k: olds.get(k) for k in OUTPUT_FIELDS}
        outputs["adopted"] = bool(olds.get("adopted"))
        return dynamic.UpdateResult({**new_inputs, **outputs})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Destroy the template if it still carries this resource's marker."""
        _, vmid = _parse_id(id_)
        _ops().delete(vmid, TemplateSpec.from_inputs(_canonical(props)))


def _reuses_vmid(new: Mapping[str, Any], current_vmid: int) -> bool:
    """A replacement with the same fixed VMID must delete the old template first."""
    return new.get("vmid") == current_vmid


@dataclass
class ProxmoxTemplateArgs:
    """Inputs of a ProxmoxTemplate (a VM template built from a cloud image through the API)."""

    name: pulumi.Input[str]
    """VM name of the template (letters, digits, '-', '.')."""
    node: pulumi.Input[str]
    """Node that builds and holds the template."""
    image_url: pulumi.Input[str]
    """http(s) URL of the cloud image (.qcow2, .raw, .vmdk, or .img which is taken as qcow2)."""
    image_checksum: pulumi.Input[str] | None = None
    """``<algorithm>:<hex>`` (md5, sha1, sha224, sha256, sha384, sha512); PVE verifies the download."""
    vmid: pulumi.Input[int] | None = None
    """Fixed VMID; None picks the lowest free VMID of ``vmid_range``."""
    vmid_range: pulumi.Input[Mapping[str, int]] | None = None
    """``{"start": .., "end": ..}`` for an automatic VMID (default 9000-9999)."""
    image_storage: pulumi.Input[str] = "local"
    """File storage with the ``import`` content type that receives the download."""
    image_filename: pulumi.Input[str] | None = None
    """File name on that storage; default derived from the URL and checksum (content-addressed)."""
    storage: pulumi.Input[str] = "local-lvm"
    """Storage of the template's disk and cloud-init drive (content ``images``)."""
    bridge: pulumi.Input[str] = "vmbr0"
    """Bridge of ``net0`` (created with ``firewall=1``)."""
    vlan: pulumi.Input[int] | None = None
    """VLAN tag of ``net0``."""
    tags: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    """Tags that select the template (CAPMOX ``templateSelector.matchTags``, ``ProxmoxVm.template_tags``)."""
    description: pulumi.Input[str] = ""
    """Free text; the ownership footer is appended."""
    pool: pulumi.Input[str] | None = None
    """Resource pool the template joins at creation (the pool ACLs of CAPMOX and our provider)."""
    cores: pulumi.Input[int] = 2
    """vCPU cores clones inherit unless they set their own."""
    memory_mib: pulumi.Input[int] = 2048
    """Memory clones inherit unless they set their own."""
    cpu_type: pulumi.Input[str] = "x86-64-v2-AES"
    """QEMU CPU type clones inherit."""
    keep_image: pulumi.Input[bool] = False
    """Keep the downloaded image file after the build (default: remove an image this build fetched)."""
    timeout_s: pulumi.Input[int] = 1800
    """Seconds for each task (download, create, convert)."""
    owner: pulumi.Input[str] | None = None
    """Ownership label in the description; default ``<project>/<stack>/<resource name>``."""


class ProxmoxTemplate(dynamic.Resource):
    """A VM template built from a cloud image, owned by this stack (ownership marker in its description)."""

    vmid: pulumi.Output[int]
    current_node: pulumi.Output[str]
    current_tags: pulumi.Output[list[str]]
    boot_disk: pulumi.Output[str]
    adopted: pulumi.Output[bool]
    name: pulumi.Output[str]
    tags: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ProxmoxTemplateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props = {k: v for k, v in props.items() if v is not None}
        props.setdefault("owner", f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}")
        props["marker"] = None
        for out in OUTPUT_FIELDS:
            props.setdefault(out, None)
        super().__init__(ProxmoxTemplateProvider(), name, props, opts)


__all__ = ["ProxmoxTemplate", "ProxmoxTemplateArgs", "ProxmoxTemplateProvider"]
