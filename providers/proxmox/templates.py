"""VM templates built through the Proxmox VE API from a cloud image URL. No pulumi import.

The build is three API calls and no SSH:

1. ``POST /nodes/{node}/storage/{image_storage}/download-url`` ``content=import filename url
   [checksum checksum-algorithm]`` -> task: PVE fetches the image onto a file storage that allows the
   ``import`` content type (PVE 8.4+/9), and verifies the checksum when one is given;
2. ``POST /nodes/{node}/qemu`` ``vmid name scsihw=virtio-scsi-single
   scsi0=<storage>:0,import-from=<image_storage>:import/<file> ide2=<storage>:cloudinit agent=1
   serial0=socket vga=serial0 boot=order=scsi0 net0=virtio,bridge=..,firewall=1 ...`` -> task: creates
   the VM and imports the image as its boot disk;
3. ``POST /nodes/{node}/qemu/{vmid}/template`` -> task: converts it (the disk becomes a base volume).

Rules kept, as in ``providers/proxmox/vm_ops.py``:

* **Ownership.** The template's description carries the same footer as a ProxmoxVm
  (``[managed by pulumi: owner=... marker=...]``). Read and delete only touch a VMID whose config
  carries this resource's marker *and* is a template; clones of the template (which copy the
  description) are never mistaken for it, because they are not templates.
* **Transactional create.** If anything fails after the create was dispatched, the half-made VM is
  destroyed (if it carries our marker) and an image this call downloaded is removed, then the error is
  raised. A retried create adopts its own finished template and rebuilds a half-made one.
* **Images.** The file name is content-addressed (``<stem>-<first 12 hex of the checksum>.<ext>``, or
  of the URL's hash without a checksum), so an existing file of that name is the same image and is not
  fetched again. An image this create downloaded is deleted once the template is built (the disk has
  been imported), unless ``keep_image``; a file that was already there is never deleted. Within one
  provider process, builds from the same file are serialised, so a cleanup never removes an image
  another build is importing.
* **Delete** destroys the template with ``purge=1``. Real PVE refuses while **linked clones** use its
  base volume (task error "base volume ... is still in use by linked cloned"); that error is raised
  with a hint. The simulator does not model this and lets the delete succeed.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import (
    ProxmoxAlreadyExistsError,
    ProxmoxConnectionError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxValidationError,
    is_kind,
)
from providers.proxmox.vm_config import split_description
from providers.proxmox.vm_spec import MARKER, NODE_NAME, TAG
from providers.proxmox.wire import plain_numbers

log = logging.getLogger(__name__)

VM_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
STORAGE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]")
BRIDGE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.(qcow2|raw|vmdk)")
CHECKSUM_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
IMPORT_EXTENSIONS = ("qcow2", "raw", "vmdk")
# Cloud images published as .img are qcow2 files (Ubuntu, Debian); PVE wants the real extension.
IMG_AS = "qcow2"
DEFAULT_VMID_RANGE = (9000, 9999)
VMID_ATTEMPTS = 10
SCSIHW = "virtio-scsi-single"

# Inputs whose change builds a new template (the old one is destroyed).
REPLACE_FIELDS = (
    "node",
    "vmid",
    "image_url",
    "image_checksum",
    "image_filename",
    "storage",
    "bridge",
    "vlan",
    "pool",
)
# Inputs applied to the existing template with one config write.
CONFIG_FIELDS = ("name", "tags", "description", "cores", "memory_mib", "cpu_type")
# Inputs that only steer a future build or cleanup: a change is stored, nothing is sent to Proxmox.
NOOP_FIELDS = ("image_storage", "keep_image", "timeout_s", "vmid_range", "owner")


class TemplateSpecError(ValueError):
    """Inputs of a template that Proxmox VE would refuse; ``problems`` are (field, reason) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("invalid template: " + "; ".join(f"{name}: {reason}" for name, reason in self.problems))


def derive_filename(url: str, checksum: str | None) -> str:
    """The content-addressed file name an image is stored under on the import storage.

    ``https://.../noble-server-cloudimg-amd64.img`` with ``sha256:ab12...`` becomes
    ``noble-server-cloudimg-amd64-ab12....qcow2`` (``.img`` cloud images are qcow2).
    """
    base = posixpath.basename(unquote(urlsplit(url).path))
    stem, dot, ext = base.rpartition(".")
    ext = ext.lower()
    if not dot or ext not in (*IMPORT_EXTENSIONS, "img"):
        raise ValueError(
            f"cannot tell the disk format from {base!r}: the URL must end in .qcow2, .raw, .vmdk or .img, "
            "or give image_filename (e.g. 'my-image.qcow2')"
        )
    if ext == "img":
        ext = IMG_AS
    digest = checksum.partition(":")[2] if checksum else hashlib.sha256(url.encode()).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip(".-_") or "image"
    return f"{safe[:200]}-{digest[:12].lower()}.{ext}"


def description_with_marker(description: str, owner: str, marker: str) -> str:
    """The description written to PVE: the user's text plus the ownership footer (as ProxmoxVm writes it)."""
    footer = f"[managed by pulumi: owner={quote(owner, safe='/')} marker={marker}]"
    return f"{description}\n\n{footer}" if description else footer


@dataclass(frozen=True)
class TemplateSpec:
    """A template to build from a cloud image; field meanings as in ``ProxmoxTemplateArgs``."""

    name: str
    node: str
    image_url: str
    marker: str
    owner: str
    vmid: int | None = None
    vmid_range: tuple[int, int] = DEFAULT_VMID_RANGE
    image_checksum: str | None = None
    image_storage: str = "local"
    image_filename: str = ""
    storage: str = "local-lvm"
    bridge: str = "vmbr0"
    vlan: int | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    pool: str | None = None
    cores: int = 2
    memory_mib: int = 2048
    cpu_type: str = "x86-64-v2-AES"
    keep_image: bool = False
    timeout_s: int = 1800

    @property
    def image_volid(self) -> str:
        """The volume id of the image on the import storage, ``<storage>:import/<file>``."""
        return f"{self.image_storage}:import/{self.image_filename}"

    @property
    def checksum_algorithm(self) -> str | None:
        """``sha256`` of ``sha256:<hex>``, or None."""
        return self.image_checksum.partition(":")[0] if self.image_checksum else None

    def in_range(self, vmid: int) -> bool:
        """Whether ``vmid`` is this template's fixed VMID or lies in its range."""
        if self.vmid is not None:
            return vmid == self.vmid
        return self.vmid_range[0] <= vmid <= self.vmid_range[1]

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> TemplateSpec:
        """Validate resource inputs (canonicalising tags and the image file name); lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []

        def need(name: str, pattern: re.Pattern[str], what: str, default: Any = None) -> Any:
            value = inputs.get(name, default)
            if value is None:
                value = default
            if not isinstance(value, str) or not pattern.fullmatch(value):
                problems.append((name, f"{value!r} is not {what}"))
            return value

        def integer(name: str, low: int, high: int, default: int | None) -> int | None:
            value = inputs.get(name, default)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
                problems.append((name, f"expected an integer, got {value!r}"))
                return default
            if not low <= int(value) <= high:
                problems.append((name, f"must be from {low} to {high}, got {int(value)}"))
            return int(value)

        name = need("name", VM_NAME, "a VM name (letters, digits, '-' and '.')")
        node = need("node", NODE_NAME, "a node name")
        url = inputs.get("image_url")
        if not isinstance(url, str) or not re.fullmatch(r"https?://\S+", url):
            problems.append(("image_url", f"{url!r} is not an http(s) URL"))
        checksum = inputs.get("image_checksum") or None
        if checksum is not None:
            algo, _, hexdigest = str(checksum).partition(":")
            if algo not in CHECKSUM_LENGTHS or not re.fullmatch(r"[0-9a-fA-F]+", hexdigest or "-"):
                problems.append(("image_checksum", "must be '<algorithm>:<hex>', e.g. 'sha256:ab12...'"))
            elif len(hexdigest) != CHECKSUM_LENGTHS[algo]:
                problems.append(("image_checksum", f"a {algo} digest has {CHECKSUM_LENGTHS[algo]} hex digits"))
            else:
                checksum = f"{algo}:{hexdigest.lower()}"
        image_storage = need("image_storage", STORAGE_ID, "a storage ID", "local")
        storage = need("storage", STORAGE_ID, "a storage ID", "local-lvm")
        bridge = need("bridge", BRIDGE, "a bridge name", "vmbr0")
        filename = inputs.get("image_filename") or None
        if filename is not None:
            if not isinstance(filename, str) or not FILENAME.fullmatch(filename):
                problems.append(("image_filename", f"{filename!r} must end in .qcow2, .raw or .vmdk"))
        elif isinstance(url, str) and not any(p == "image_url" for p, _ in problems):
            try:
                filename = derive_filename(url, checksum if isinstance(checksum, str) else None)
            except ValueError as exc:
                problems.append(("image_url", str(exc)))
        vmid = integer("vmid", 100, 999_999_999, None)
        raw_range = inputs.get("vmid_range") or {}
        vmid_range = DEFAULT_VMID_RANGE
        if isinstance(raw_range, Mapping) and raw_range:
            start, end = raw_range.get("start"), raw_range.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 100 <= start <= end <= 999_999_999):
                problems.append(("vmid_range", f"expected {{start, end}} with 100 <= start <= end, got {raw_range!r}"))
            else:
                vmid_range = (start, end)
        elif raw_range:
            problems.append(("vmid_range", f"expected a mapping {{start, end}}, got {raw_range!r}"))
        vlan = integer("vlan", 1, 4094, None)
        raw_tags = inputs.get("tags") or []
        tags: tuple[str, ...] = ()
        if isinstance(raw_tags, str) or not isinstance(raw_tags, list | tuple):
            problems.append(("tags", f"expected a list of tags, got {raw_tags!r}"))
        else:
            lowered = sorted({str(t).lower() for t in raw_tags})
            bad = [t for t in lowered if not TAG.fullmatch(t)]
            if bad:
                problems.append(("tags", f"{bad} are not Proxmox tags (letters, digits, '_', '-', '+', '.')"))
            tags = tuple(lowered)
        description = inputs.get("description") or ""
        if not isinstance(description, str) or "[managed by pulumi:" in description:
            problems.append(("description", "must be a string without a '[managed by pulumi: ...]' footer"))
        pool = inputs.get("pool") or None
        if pool is not None and (not isinstance(pool, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9._/-]*", pool)):
            problems.append(("pool", f"{pool!r} is not a pool id"))
        cores = integer("cores", 1, 512, 2)
        memory = integer("memory_mib", 16, 4_194_304, 2048)
        cpu_type = need("cpu_type", re.compile(r"[A-Za-z0-9_.+-]+"), "a CPU type", "x86-64-v2-AES")
        timeout = integer("timeout_s", 60, 86_400, 1800)
        marker = inputs.get("marker")
        if not isinstance(marker, str) or not MARKER.fullmatch(marker):
            problems.append(("marker", "missing ownership marker (set by check())"))
        owner = inputs.get("owner")
        if not isinstance(owner, str) or not owner or any(c.isspace() for c in owner):
            problems.append(("owner", f"expected '<project>/<stack>/<name>', got {owner!r}"))
        keep = inputs.get("keep_image", False)
        if not isinstance(keep, bool):
            problems.append(("keep_image", f"expected a boolean, got {keep!r}"))
        if problems:
            raise TemplateSpecError(problems)
        return cls(
            name=name,
            node=node,
            image_url=str(url),
            marker=str(marker),
            owner=str(owner),
            vmid=vmid,
            vmid_range=vmid_range,
            image_checksum=checksum,
            image_storage=image_storage,
            image_filename=str(filename),
            storage=storage,
            bridge=bridge,
            vlan=vlan,
            tags=tags,
            description=description,
            pool=pool,
            cores=cores or 2,
            memory_mib=memory or 2048,
            cpu_type=cpu_type,
            keep_image=keep,
            timeout_s=timeout or 1800,
        )

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs (what check() returns and diff() compares)."""
        return {
            "name": self.name,
            "node": self.node,
            "image_url": self.image_url,
            "image_checksum": self.image_checksum,
            "image_storage": self.image_storage,
            "image_filename": self.image_filename,
            "vmid": self.vmid,
            "vmid_range": {"start": self.vmid_range[0], "end": self.vmid_range[1]},
            "storage": self.storage,
            "bridge": self.bridge,
            "vlan": self.vlan,
            "tags": list(self.tags),
            "description": self.description,
            "pool": self.pool,
            "cores": self.cores,
            "memory_mib": self.memory_mib,
            "cpu_type": self.cpu_type,
            "keep_image": self.keep_image,
            "timeout_s": self.timeout_s,
            "marker": self.marker,
            "owner": self.owner,
        }

    def create_params(self, vmid: int) -> dict[str, Any]:
        """The parameters of ``POST /nodes/{node}/qemu`` that build this template's VM."""
        net0 = f"virtio,bridge={self.bridge}" + (f",tag={self.vlan}" if self.vlan else "") + ",firewall=1"
        return {
            "vmid": vmid,
            "name": self.name,
            "description": description_with_marker(self.description, self.owner, self.marker),
            "tags": ";".join(self.tags) or None,
            "pool": self.pool,
            "ostype": "l26",
            "cpu": self.cpu_type,
            "cores": self.cores,
            "memory": self.memory_mib,
            "scsihw": SCSIHW,
            "scsi0": f"{self.storage}:0,import-from={self.image_volid}",
            "ide2": f"{self.storage}:cloudinit",
            "agent": 1,
            "serial0": "socket",
            "vga": "serial0",
            "boot": "order=scsi0",
            "net0": net0,
        }

    def config_params(self) -> dict[str, Any]:
        """The config keys an in-place update writes (``CONFIG_FIELDS``)."""
        return {
            "name": self.name,
            "description": description_with_marker(self.description, self.owner, self.marker),
            "tags": ";".join(self.tags),
            "cores": self.cores,
            "memory": self.memory_mib,
            "cpu": self.cpu_type,
        }


@dataclass
class TemplateState:
    """What a built template looks like: the resource's computed outputs."""

    vmid: int
    node: str
    name: str
    tags: list[str] = field(default_factory=list)
    disk: str = ""
    adopted: bool = False

    def outputs(self) -> dict[str, Any]:
        """The computed outputs, merged with the inputs by the provider."""
        return {
            "vmid": self.vmid,
            "current_node": self.node,
            "current_tags": list(self.tags),
            "boot_disk": self.disk,
            "adopted": self.adopted,
        }


@dataclass(frozen=True)
class Found:
    """A guest as ``/cluster/resources`` lists it."""

    vmid: int
    node: str
    name: str
    template: bool


_image_locks_guard = threading.Lock()
_image_locks: dict[tuple[str, str], threading.Lock] = {}


@contextmanager
def _image_lock(storage: str, filename: str) -> Iterator[None]:
    """Serialise builds that use one image file within this process (download, import, cleanup)."""
    with _image_locks_guard:
        lock = _image_locks.setdefault((storage, filename), threading.Lock())
    with lock:
        yield


class TemplateOperations:
    """Build, read, update and delete VM templates from cloud images."""

    def __init__(
        self,
        client: ProxmoxClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self._sleep = sleep
        self._poll = poll_interval

    # ================================================================== lookup

    def guests(self) -> list[Found]:
        """Every QEMU guest the token can see."""
        rows = self.client.get("/cluster/resources", type="vm") or []
        return [
            Found(int(r["vmid"]), str(r["node"]), str(r.get("name", "")), str(r.get("template", 0)) == "1")
            for r in rows
            if r.get("type") == "qemu"
        ]

    def locate(self, vmid: int) -> Found | None:
        """Where guest ``vmid`` is, or None."""
        return next((g for g in self.guests() if g.vmid == vmid), None)

    def config(self, node: str, vmid: int) -> dict[str, Any]:
        """The guest's config (with digest)."""
        return dict(self.client.get(f"/nodes/{node}/qemu/{vmid}/config") or {})

    def marker_of(self, node: str, vmid: int) -> str | None:
        """The ownership marker in the guest's description, or None (also None if it is gone)."""
        try:
            cfg = self.config(node, vmid)
        except ProxmoxNotFoundError:
            return None
        return split_description(str(cfg.get("description", "")))[2]

    def find_own(self, spec: TemplateSpec, guests: Sequence[Found] | None = None) -> Found | None:
        """A guest carrying this resource's marker (finished or half-made), or None."""
        for guest in guests if guests is not None else self.guests():
            if not spec.in_range(guest.vmid) or (spec.vmid is None and guest.name != spec.name):
                continue
            if self.marker_of(guest.node, guest.vmid) == spec.marker:
                return guest
        return None

    # ================================================================== images

    def check_image_storage(self, spec: TemplateSpec) -> None:
        """Fail early, naming the fix, unless ``image_storage`` accepts ``import`` content on the node."""
        rows = self.client.get(f"/nodes/{spec.node}/storage", content="import") or []
        usable = sorted(str(r.get("storage")) for r in rows if r.get("active", 1))
        if spec.image_storage not in usable:
            raise ProxmoxValidationError(
                f"image_storage: storage {spec.image_storage!r} on node {spec.node} does not accept the 'import' "
                f"content type (storages that do: {usable or 'none'}). Enable it under Datacenter > Storage > "
                f"{spec.image_storage} > Content > Import, or choose another file-based storage",
                errors={"image_storage": "no 'import' content"},
            )

    def image_present(self, spec: TemplateSpec) -> bool:
        """Whether the image file is already on the import storage of the node."""
        rows = self.client.get(f"/nodes/{spec.node}/storage/{spec.image_storage}/content", content="import") or []
        return any(str(r.get("volid")) == spec.image_volid for r in rows)

    def download_image(self, spec: TemplateSpec) -> None:
        """Fetch the image onto the import storage (PVE verifies the checksum when one is given)."""
        params: dict[str, Any] = {"content": "import", "filename": spec.image_filename, "url": spec.image_url}
        if spec.image_checksum:
            params["checksum"] = spec.image_checksum.partition(":")[2]
            params["checksum-algorithm"] = spec.checksum_algorithm
        self.client.call_task(
            "POST",
            f"/nodes/{spec.node}/storage/{spec.image_storage}/download-url",
            params,
            timeout=spec.timeout_s,
            idempotent=False,
        )

    def remove_image(self, spec: TemplateSpec) -> None:
        """Delete the image file from the import storage (gone already is fine)."""
        path = f"/nodes/{spec.node}/storage/{spec.image_storage}/content/{quote(spec.image_volid, safe='')}"
        try:
            self.client.call_task("DELETE", path, {}, timeout=spec.timeout_s)
        except ProxmoxError as exc:
            if not is_kind(exc, ProxmoxNotFoundError):
                raise

    def _remove_image_quietly(self, spec: TemplateSpec) -> str | None:
        try:
            self.remove_image(spec)
            return None
        except Exception as exc:  # never hide the error that got us here
            log.warning("could not remove the image %s: %s", spec.image_volid, exc)
            return f"the downloaded image {spec.image_volid} could not be removed: {exc}"

    # ================================================================== create

    def create(self, spec: TemplateSpec) -> TemplateState:
        """Download, create, convert; undo everything this call made if a step fails."""
        guests = self.guests()
        own = self.find_own(spec, guests)
        if own is not None and own.template:
            log.warning("adopting template %s on %s: it carries this resource's marker", own.vmid, own.node)
            state = self.state(own.node, own.vmid)
            state.adopted = True
            return state
        if own is not None:
            log.warning("removing the half-made template VM %s on %s from an interrupted build", own.vmid, own.node)
            self.destroy(own.node, own.vmid, spec)
            guests = self.guests()
        if spec.vmid is not None:
            taken = next((g for g in guests if g.vmid == spec.vmid), None)
            if taken is not None:
                raise ProxmoxAlreadyExistsError(
                    f"vmid: VMID {spec.vmid} is taken by {taken.name!r} on {taken.node}, which is not this template "
                    "(no ownership marker); choose another vmid, or reference that template instead of building it",
                    errors={"vmid": "taken"},
                )
        self.check_image_storage(spec)
        with _image_lock(spec.image_storage, spec.image_filename):
            downloaded = False
            try:
                if not self.image_present(spec):
                    self.download_image(spec)
                    downloaded = True
                vmid = self._create_vm(spec, guests)
                self._finish(spec, vmid)
            except BaseException as exc:
                notes = [n for n in [self._remove_image_quietly(spec) if downloaded else None] if n]
                if notes and isinstance(exc, ProxmoxError):
                    exc.message += " (" + "; ".join(notes) + ")"
                    exc.args = (exc._render(),)
                raise
            if downloaded and not spec.keep_image:
                self._remove_image_quietly(spec)
        return self.state(spec.node, vmid)

    def _finish(self, spec: TemplateSpec, vmid: int) -> None:
        """Convert the new VM into a template; destroy it if that fails."""
        try:
            self.client.call_task(
                "POST", f"/nodes/{spec.node}/qemu/{vmid}/template", {}, timeout=spec.timeout_s, idempotent=False
            )
        except BaseException as exc:
            note = self._destroy_quietly(spec.node, vmid, spec)
            if note and isinstance(exc, ProxmoxError):
                exc.message += f" ({note})"
                exc.args = (exc._render(),)
            raise

    def allocate_vmid(self, spec: TemplateSpec, taken: set[int]) -> int:
        """The fixed VMID, or the lowest free VMID of the range confirmed by ``/cluster/nextid``."""
        if spec.vmid is not None:
            return spec.vmid
        start, end = spec.vmid_range
        for candidate in range(start, end + 1):
            if candidate in taken:
                continue
            try:
                return int(self.client.get("/cluster/nextid", vmid=candidate))
            except ProxmoxValidationError as exc:
                if "already exists" not in str(exc.errors):
                    raise
                taken.add(candidate)
            except ProxmoxAlreadyExistsError:
                taken.add(candidate)
        raise ProxmoxAlreadyExistsError(f"vmid_range: no free VMID in {start}-{end}", errors={"vmid_range": "full"})

    def _create_vm(self, spec: TemplateSpec, guests: Sequence[Found]) -> int:
        taken = {g.vmid for g in guests}
        last: BaseException | None = None
        for _ in range(VMID_ATTEMPTS):
            vmid = self.allocate_vmid(spec, taken)
            taken.add(vmid)
            try:
                self.client.call_task(
                    "POST",
                    f"/nodes/{spec.node}/qemu",
                    spec.create_params(vmid),
                    timeout=spec.timeout_s,
                    idempotent=False,
                )
                return vmid
            except ProxmoxConnectionError as exc:
                # The answer was lost: the create may be running. Our marker tells whether it is ours.
                last = exc
                if self._await_marker(spec.node, vmid, spec.marker, timeout=min(60.0, float(spec.timeout_s))):
                    self._wait_unlocked(spec.node, vmid, timeout=spec.timeout_s)
                    return vmid
                if spec.vmid is not None:
                    raise
            except ProxmoxError as exc:
                # A failed create task removes its VM itself; a wait that timed out leaves it to us.
                self._destroy_quietly(spec.node, vmid, spec)
                if spec.vmid is not None or not is_kind(exc, ProxmoxAlreadyExistsError):
                    raise
                last = exc
                log.info("VMID %s was taken meanwhile; trying the next one", vmid)
            except BaseException:
                self._destroy_quietly(spec.node, vmid, spec)
                raise
        raise ProxmoxError(f"creating template {spec.name} failed {VMID_ATTEMPTS} times; last error: {last}")

    def _await_marker(self, node: str, vmid: int, marker: str, *, timeout: float) -> bool:
        """Poll until guest ``vmid`` carries ``marker`` (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.marker_of(node, vmid) == marker:
                return True
            if time.monotonic() >= deadline:
                return False
            self._sleep(self._poll)

    def _wait_unlocked(self, node: str, vmid: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.client.get(f"/nodes/{node}/qemu/{vmid}/status/current") or {}
            if not status.get("lock"):
                return
            if time.monotonic() >= deadline:
                raise ProxmoxLockedError(f"VM {vmid} on {node} is still locked ({status.get('lock')})")
            self._sleep(self._poll)

    # ================================================================== read / update

    def state(self, node: str, vmid: int, cfg: Mapping[str, Any] | None = None) -> TemplateState:
        """The computed outputs of a template."""
        cfg = self.config(node, vmid) if cfg is None else cfg
        tags = sorted(t for t in re.split(r"[;, ]+", str(cfg.get("tags", ""))) if t)
        return TemplateState(
            vmid=vmid, node=node, name=str(cfg.get("name", "")), tags=tags, disk=str(cfg.get("scsi0", ""))
        )

    def read(
        self, vmid: int, spec: TemplateSpec, *, adopt_unmarked: bool = False
    ) -> tuple[TemplateState, TemplateSpec] | None:
        """Refresh: the template and the spec as it is now; None if it is gone, not ours or not a template."""
        where = self.locate(vmid)
        if where is None:
            return None
        try:
            cfg = self.config(where.node, vmid)
        except ProxmoxNotFoundError:
            return None
        text, _owner, marker = split_description(str(cfg.get("description", "")))
        if marker != spec.marker and not (adopt_unmarked and marker is None):
            log.warning("VM %s does not carry this template's marker: treating the template as gone", vmid)
            return None
        if not where.template:
            log.warning("VM %s carries this template's marker but is no template (an interrupted build)", vmid)
            return None
        state = self.state(where.node, vmid, cfg)
        cpu = str(cfg.get("cpu", spec.cpu_type)).split(",")[0].removeprefix("cputype=")
        refreshed = replace(
            spec,
            name=state.name or spec.name,
            node=where.node,
            tags=tuple(state.tags),
            description=text,
            cores=int(cfg.get("cores", spec.cores)),
            memory_mib=int(cfg.get("memory", spec.memory_mib)),
            cpu_type=cpu,
        )
        return state, refreshed

    def update(self, vmid: int, old: TemplateSpec, new: TemplateSpec) -> TemplateState:
        """Write the in-place fields (name, tags, description, cores, memory, CPU type)."""
        where = self.locate(vmid)
        if where is None:
            raise ProxmoxNotFoundError(f"template {vmid} does not exist any more; run 'pulumi refresh' to rebuild it")
        cfg = self.config(where.node, vmid)
        if split_description(str(cfg.get("description", "")))[2] != old.marker:
            raise ProxmoxValidationError(
                f"VM {vmid} on {where.node} does not carry this template's marker; refusing to change it",
                errors={"vmid": "not ours"},
            )
        params = new.config_params()
        if not params["tags"]:
            params.pop("tags")
            params["delete"] = "tags"
        self.client.call_task(
            "PUT", f"/nodes/{where.node}/qemu/{vmid}/config", {**params, "digest": cfg.get("digest")}, timeout=60
        )
        return self.state(where.node, vmid)

    # ================================================================== delete

    def delete(self, vmid: int, spec: TemplateSpec) -> None:
        """Destroy the template if it is still ours; a template that is gone or foreign is left alone."""
        where = self.locate(vmid)
        if where is None:
            return
        if self.marker_of(where.node, vmid) != spec.marker:
            log.warning("VM %s on %s is not this template (marker differs): leaving it alone", vmid, where.node)
            return
        self.destroy(where.node, vmid, spec)

    def destroy(self, node: str, vmid: int, spec: TemplateSpec) -> None:
        """``DELETE ... purge=1`` and wait; 'does not exist' is success."""
        try:
            self.client.call_task(
                "DELETE", f"/nodes/{node}/qemu/{vmid}", {"purge": True}, timeout=spec.timeout_s, idempotent=False
            )
        except ProxmoxError as exc:
            if is_kind(exc, ProxmoxNotFoundError):
                return
            if "still in use" in str(exc):
                exc.message += (
                    f" (template {vmid} still has linked clones: delete them, or turn them into full clones with "
                    "'qm move-disk', before the template can go)"
                )
                exc.args = (exc._render(),)
            raise

    def _destroy_quietly(self, node: str, vmid: int, spec: TemplateSpec) -> str | None:
        """Roll back a half-made template; returns a note if the rollback failed too."""
        try:
            if self.marker_of(node, vmid) != spec.marker:
                return None
            self.destroy(node, vmid, spec)
            log.info("rolled back the half-made template VM %s on %s", vmid, node)
            return None
        except Exception as cleanup_error:
            log.error("could not remove the half-made template VM %s on %s: %s", vmid, node, cleanup_error)
            return (
                f"the half-made template VM {vmid} on {node} could not be removed: {cleanup_error}; it carries "
                "this resource's marker and the next 'pulumi up' removes it"
            )


__all__ = [
    "CONFIG_FIELDS",
    "DEFAULT_VMID_RANGE",
    "NOOP_FIELDS",
    "REPLACE_FIELDS",
    "TemplateOperations",
    "TemplateSpec",
    "TemplateSpecError",
    "TemplateState",
    "derive_filename",
    "description_with_marker",
]
