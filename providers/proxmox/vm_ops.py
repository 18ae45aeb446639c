"""Proxmox VM lifecycle on top of the client: create from a template, read, update, delete.

The rules that keep a platform team's cluster clean live here:

* **Ownership.** Every VM carries a marker (``pulumi-<hex>`` tag and a description footer naming the
  owner). A create that finds a VM with its own marker adopts it; a read or delete that finds a VM
  without it treats the VMID as someone else's and never touches it.
* **Transactional create.** Anything that fails after the clone stops and destroys the new VM before
  the error is raised, so no half-made VM outlives a failed ``pulumi up``.
* **VMIDs** are drawn at random from the resource's range and checked with ``/cluster/nextid``; a clone
  that loses the race ("already exists", synchronously or in the task) retries with a fresh id.
* **Bounded parallelism.** At most ``max_clones_per_node`` clones run at once per source node, which is
  what keeps storage-level locks from timing out under parallel creates.
* **Never unprotected.** A declared ``firewall`` (security groups per NIC, policies) is applied through
  ``FirewallApi`` after the config and before the first start; an update adds new bindings (and sets the
  policies) before anything else changes and removes stale ones last. Only guest firewall rules whose
  comment carries this resource's marker are ever removed or reported; anybody else's stay untouched.
  Whether the rules filter anything also depends on the datacenter firewall, which an operator enables.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import (
    ProxmoxAgentUnavailableError,
    ProxmoxAlreadyExistsError,
    ProxmoxConnectionError,
    ProxmoxError,
    ProxmoxGuestRunningError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxPermissionError,
    ProxmoxStorageUnavailableError,
    ProxmoxTemporaryTaskError,
    ProxmoxTimeoutError,
    ProxmoxTransientError,
    ProxmoxValidationError,
    already_done,
    is_kind,
)
from providers.proxmox.firewall import FirewallApi, GuestFirewall, GuestRule, VmGroupBinding
from providers.proxmox.vm_config import (
    Observed,
    description_with_marker,
    firewall_comment,
    firewall_marker,
    observe,
    parse_disk,
    parse_props,
    render_new_disk,
    render_nic,
    render_options,
)
from providers.proxmox.vm_plan import VmPlan
from providers.proxmox.vm_spec import MARKER_TAG_PREFIX, CloudInit, Cpu, Disk, IpConfig, Nic, VmFirewall, VmSpec

log = logging.getLogger(__name__)

VMID_ATTEMPTS = 10
# After a lost clone answer: polls to wait for the requested VMID to appear before concluding that no clone ran.
LOST_CLONE_GRACE_POLLS = 10
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3")
IGNORED_INTERFACES = (
    "lo",
    "docker",
    "cni",
    "flannel",
    "cilium",
    "kube-ipvs",
    "ovn",
    "genev_sys",
    "vxlan",
    "veth",
)


@dataclass
class VmState:
    """What a VM looks like after an operation: the resource's computed outputs."""

    vmid: int
    node: str
    status: str
    macs: dict[str, str] = field(default_factory=dict)
    ip_addresses: list[str] = field(default_factory=list)
    reboot_pending: bool = False
    template_vmid: int | None = None
    warnings: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, Any]:
        """The computed outputs, merged with the inputs by the provider."""
        return {
            "vmid": self.vmid,
            "current_node": self.node,
            "status": self.status,
            "macs": dict(sorted(self.macs.items())),
            "ip_addresses": list(self.ip_addresses),
            "reboot_pending": self.reboot_pending,
            "source_template_vmid": self.template_vmid,
            "warnings": list(self.warnings),
        }


class CloneSlots:
    """Per-node semaphores bounding concurrent clones (shared by every thread of the provider)."""

    def __init__(self, per_node: int = 2) -> None:
        self.per_node = max(1, per_node)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def hold(self, node: str) -> Iterator[None]:
        """Block until a clone slot on ``node`` is free, and hold it."""
        with self._lock:
            slot = self._slots.setdefault(node, threading.BoundedSemaphore(self.per_node))
        with slot:
            yield


@dataclass(frozen=True)
class Located:
    """Where a VM is, per ``/cluster/resources``."""

    vmid: int
    node: str
    status: str
    template: bool
    name: str
    tags: str
    lock: str | None


class VmOperations:
    """Create, read, update and delete one kind of thing: a VM cloned from a template."""

    def __init__(
        self,
        client: ProxmoxClient,
        *,
        clone_slots: CloneSlots | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.clone_slots = clone_slots or CloneSlots()
        self._rng = rng or random.SystemRandom()
        self._sleep = sleep
        self._poll = poll_interval

    # ================================================================== lookup

    def vms(self, rows: list[dict[str, Any]] | None = None) -> list[Located]:
        """Every VM and template the token can see (from ``rows`` of /cluster/resources when given)."""
        if rows is None:
            rows = self.client.get("/cluster/resources", type="vm") or []
        return [
            Located(
                vmid=int(r["vmid"]),
                node=str(r["node"]),
                status=str(r.get("status", "")),
                template=str(r.get("template", 0)) == "1",
                name=str(r.get("name", "")),
                tags=str(r.get("tags", "")),
                lock=r.get("lock"),
            )
            for r in rows
            if r.get("type") == "qemu"
        ]

    def locate(self, vmid: int) -> Located | None:
        """Where VM ``vmid`` is now (it may have migrated), or None."""
        for vm in self.vms():
            if vm.vmid == vmid:
                return vm
        return None

    def config(self, node: str, vmid: int) -> dict[str, Any]:
        """The VM's config (with digest)."""
        return dict(self.client.get(f"/nodes/{node}/qemu/{vmid}/config") or {})

    def owns(self, vmid: int, spec: VmSpec) -> bool:
        """True while VM ``vmid`` exists and carries this resource's marker (identity, not just the VMID)."""
        where = self.locate(vmid)
        if where is None:
            return False
        try:
            obs = observe(self.config(where.node, vmid), disk_slots=set(), nic_slots=set())
        except ProxmoxNotFoundError:
            return False
        return obs.marker == spec.marker or spec.marker_tag in obs.marker_tags

    def find_own(self, spec: VmSpec, rows: list[dict[str, Any]] | None = None) -> Located | None:
        """A VM carrying this resource's marker (from an interrupted or lost create), or None.

        The marker tag is written after the clone; the description footer is written by the clone itself,
        so VMs of the same name are checked by description too.
        """
        candidates = [
            vm
            for vm in self.vms(rows)
            if not vm.template
            and (spec.marker_tag in vm.tags.split(";") or vm.name == spec.name)
            and spec.vmid_range.start <= vm.vmid <= spec.vmid_range.end
        ]
        for vm in candidates:
            if spec.marker_tag in vm.tags.split(";"):
                return vm
            try:
                obs = observe(self.config(vm.node, vm.vmid), disk_slots=set(), nic_slots=set())
            except ProxmoxNotFoundError:
                continue
            if obs.marker == spec.marker:
                return vm
        return None

    # ================================================================== create

    def create(self, spec: VmSpec, password: str | None = None) -> VmState:
        """Clone, configure, start and (optionally) wait for an address; undo everything on failure."""
        # One listing of the cluster serves template lookup, adoption, placement and VMID choice.
        rows = self.client.get("/cluster/resources") or []
        template = self.resolve_template(spec, rows)
        own = self.find_own(spec, rows)
        if own is not None and own.node not in spec.candidate_nodes:
            raise ProxmoxValidationError(
                f"VM {own.vmid} on {own.node} carries this resource's ownership marker but is outside its "
                f"nodes {spec.candidate_nodes}; refusing to adopt or duplicate it. Move or remove it, then retry.",
                errors={"node": "marked VM found elsewhere"},
            )
        if own is not None:
            log.warning(
                "adopting VM %s on %s: it carries this resource's marker from an earlier run",
                own.vmid,
                own.node,
            )
        # Everything Proxmox would refuse about the placement is found before the first write.
        self.check_nodes(spec, rows)
        node = own.node if own is not None else self.pick_node(spec, rows)
        template_cfg = self.config(template.node, template.vmid)
        self.preflight(spec, node, rows, template_cfg)
        if own is not None:
            vmid = own.vmid
        else:
            self._replace_half_made(spec, rows)
            vmid, node = self._clone(spec, template, rows, node)
        try:
            self.wait_unlocked(node, vmid, timeout=spec.timeouts.clone)
            self._configure(spec, node, vmid, password, template_storage=lambda: _template_storage(template_cfg))
            # Before the first start: the VM never boots without its security groups.
            self.bind_firewall(spec, node, vmid)
            self.unbind_stale_firewall(spec, node, vmid)
            if spec.started:
                self.power(node, vmid, "start", spec)
            state = self.state(spec, node, vmid, wait_for_ip=True)
            state.template_vmid = template.vmid
            return state
        except BaseException as exc:
            cleanup = self._destroy_quietly(node, vmid, spec, exc)
            if cleanup and isinstance(exc, ProxmoxError):
                _annotated(exc, suffix=f" ({cleanup})")
            raise

    def half_made(self, spec: VmSpec, rows: list[dict[str, Any]] | None = None) -> list[tuple[Located, str]]:
        """VMs this resource's killed creates left behind under *another* marker (other placement inputs).

        The marker changes with the placement inputs (``vmid_range``, nodes, template, ...), so ``find_own``
        cannot see the VM of a create that was killed before a run with changed placement. The owner in the
        description footer (written by the clone itself) still names this resource, and a VM the clone
        made but nobody configured carries no ownership tag yet, so no state can hold it: VMs of this name,
        anywhere, with this owner, another marker and no ownership tag. A VM that has an ownership tag may be
        held by a state (a create-before-delete replacement), so it is never taken; ``tools.orphans``
        lists those. Returns each VM with the marker it carries.
        """
        found: list[tuple[Located, str]] = []
        for vm in self.vms(rows):
            if vm.template or vm.name != spec.name:
                continue
            tags = [t for t in vm.tags.split(";") if t]
            if any(t.startswith(MARKER_TAG_PREFIX) and len(t) == len(MARKER_TAG_PREFIX) + 16 for t in tags):
                continue
            try:
                obs = observe(self.config(vm.node, vm.vmid), disk_slots=set(), nic_slots=set())
            except ProxmoxNotFoundError:
                continue
            if obs.owner == spec.owner and obs.marker is not None and obs.marker != spec.marker and not obs.marker_tags:
                found.append((vm, obs.marker))
        return found

    def _replace_half_made(self, spec: VmSpec, rows: list[dict[str, Any]]) -> None:
        """Adopt a half-made VM of this resource by its owner, then replace it: destroy it before cloning anew.

        Its placement no longer matches the inputs (that is why its marker differs), so it cannot be kept;
        delete-before-replace is the resource's default, and names and static addresses are reused.
        """
        for vm, marker in self.half_made(spec, rows):
            log.warning(
                "VM %s on %s is a half-made VM of %s from a run with other placement inputs: replacing it",
                vm.vmid,
                vm.node,
                spec.owner,
            )
            # destroy() confirms identity by marker: the stale VM's own, not this run's.
            self.destroy(vm.node, vm.vmid, spec.model_copy(update={"marker": marker}))

    def resolve_template(self, spec: VmSpec, rows: list[dict[str, Any]] | None = None) -> Located:
        """The template to clone: by VMID, or the one whose tags include all of ``template_tags``."""
        vms = self.vms(rows)
        if spec.template_vmid is not None:
            for vm in vms:
                if vm.vmid == spec.template_vmid:
                    if not vm.template:
                        raise ProxmoxValidationError(
                            f"template_vmid: VM {vm.vmid} on {vm.node} is not a template",
                            errors={"template_vmid": "must name a template"},
                        )
                    return vm
            raise ProxmoxNotFoundError(
                f"template_vmid: no template {spec.template_vmid} is visible to {self.client.settings.principal}"
            )
        wanted = set(spec.template_tags)
        matches = [vm for vm in vms if vm.template and wanted <= set(vm.tags.split(";"))]
        if not matches:
            raise ProxmoxNotFoundError(f"template_tags: no template carries all of the tags {sorted(wanted)}")
        preferred = [vm for vm in matches if vm.node in spec.candidate_nodes] or matches
        # Guests of an offline node show status "unknown": a copy of the template on an online node wins.
        return sorted(
            preferred,
            key=lambda vm: (
                vm.status == "unknown",
                spec.candidate_nodes.index(vm.node) if vm.node in spec.candidate_nodes else 99,
                vm.vmid,
            ),
        )[0]

    # ================================================================== pre-flight

    def check_nodes(self, spec: VmSpec, rows: list[dict[str, Any]]) -> None:
        """Refuse a ``node`` or ``allowed_nodes`` entry that is no node of this cluster (a typo)."""
        known = sorted({str(r["node"]) for r in rows if r.get("type") == "node"})
        problems = [("node", spec.node)] if spec.node and spec.node not in known else []
        problems += [("allowed_nodes", n) for n in spec.allowed_nodes if n not in known]
        if problems:
            raise _refused(
                {
                    field: f"{name!r} is not a node of this cluster (nodes: {', '.join(known)})"
                    for field, name in problems
                }
            )

    def preflight(
        self,
        spec: VmSpec,
        node: str,
        rows: list[dict[str, Any]],
        template_cfg: dict[str, Any] | None,
        *,
        nics: dict[str, Nic] | None = None,
        disks: dict[str, Disk] | None = None,
    ) -> None:
        """Check what only the cluster knows, before anything is written; raise naming the input field.

        ``rows`` is one ``/cluster/resources`` listing (nodes, storages, VMs): it answers the vCPU limit of
        the node and every storage. Pools take ``GET /pools`` (only with ``pool``), bridges one
        ``GET /nodes/{node}/network`` (and ``/cluster/sdn/vnets`` only for a name not found there), the
        template's disk sizes its config. ``nics``/``disks`` limit the checks to what an update adds.
        """
        nics = spec.nics if nics is None else nics
        disks = spec.disks if disks is None else disks
        problems: dict[str, str] = {}
        offline: dict[str, str] = {}
        node_row = next((r for r in rows if r.get("type") == "node" and r.get("node") == node), {})
        cpus = int(node_row.get("maxcpu") or 0)
        vcpus = spec.cpu.sockets * spec.cpu.cores
        if cpus and vcpus > cpus:
            # qemu-server's config_to_command: "MAX n vcpus allowed per VM on this node", at every start.
            problems["cpu"] = (
                f"{spec.cpu.sockets} socket(s) x {spec.cpu.cores} cores = {vcpus} vCPUs; node {node} has {cpus}"
            )
        wanted: dict[str, str] = {}
        if spec.storage and template_cfg is not None:
            wanted["storage"] = spec.storage
        for slot, disk in sorted(disks.items()):
            if disk.storage and (template_cfg is None or slot not in template_cfg):
                wanted[f"disks.{slot}.storage"] = disk.storage
        for field_path, storage in wanted.items():
            reason, is_offline = _storage_problem(rows, node, storage)
            if reason:
                (offline if is_offline else problems)[field_path] = reason
        if template_cfg is not None:
            for slot, disk in sorted(disks.items()):
                size = parse_disk(str(template_cfg[slot])).size_gib if slot in template_cfg else None
                if size is not None and disk.size_gib < size - 1e-9:
                    problems[f"disks.{slot}.size_gib"] = (
                        f"the template's {slot} is {size:g} GiB; a clone cannot be smaller "
                        f"(shrinking to {disk.size_gib} GiB is not supported)"
                    )
        if spec.pool and template_cfg is not None:
            pools = {str(p.get("poolid")) for p in self.client.get("/pools") or []}
            if spec.pool not in pools:
                problems["pool"] = (
                    f"no pool {spec.pool!r} is visible to {self.client.settings.principal} (pools: "
                    f"{', '.join(sorted(pools)) or 'none'}); create it first, or grant Pool.Audit on it"
                )
        problems.update(self._bridge_problems(node, nics))
        if problems:
            raise _refused(problems)
        if offline:
            raise ProxmoxStorageUnavailableError(
                "; ".join(f"{k}: {v}" for k, v in sorted(offline.items())), errors=offline
            )

    def _bridge_problems(self, node: str, nics: dict[str, Nic]) -> dict[str, str]:
        """``nics.<slot>.bridge`` for every bridge the node does not have (Linux/OVS bridge or SDN vnet)."""
        if not nics:
            return {}
        try:
            ifaces = self.client.get(f"/nodes/{node}/network") or []
        except ProxmoxPermissionError:
            # Listing a node's interfaces needs Sys.Audit on /nodes/<node>; without it PVE checks at write time.
            log.info("cannot list the interfaces of %s (no Sys.Audit); bridges are checked by PVE", node)
            return {}
        known = {
            str(i.get("iface")) for i in ifaces if "bridge" in str(i.get("type", "")).lower() or i.get("type") == "vnet"
        }
        missing = {slot: nic.bridge for slot, nic in nics.items() if nic.bridge not in known}
        if missing:
            with suppress(ProxmoxPermissionError):
                known |= {str(v.get("vnet")) for v in self.client.get("/cluster/sdn/vnets") or []}
        listed = ", ".join(sorted(known)) or "none"
        return {
            f"nics.{slot}.bridge": f"node {node} has no bridge or SDN vnet {bridge!r} (bridges: {listed})"
            for slot, bridge in sorted(missing.items())
            if bridge not in known
        }

    def pick_node(self, spec: VmSpec, rows: list[dict[str, Any]] | None = None) -> str:
        """The pinned node, or the online allowed node with the most free memory."""
        if spec.node:
            return spec.node
        if rows is None:
            rows = self.client.get("/cluster/resources", type="node") or []
        rows = [r for r in rows if r.get("type") == "node"]
        online = {
            str(r["node"]): int(r.get("maxmem") or 0) - int(r.get("mem") or 0)
            for r in rows
            if r.get("status") == "online"
        }
        usable = [n for n in spec.allowed_nodes if n in online]
        if not usable:
            raise ProxmoxValidationError(
                f"allowed_nodes: none of {spec.allowed_nodes} is an online node (online: {sorted(online)})",
                errors={"allowed_nodes": "no online node"},
            )
        return sorted(usable, key=lambda n: (-online[n], n))[0]

    def allocate_vmid(self, spec: VmSpec, exclude: set[int], rows: list[dict[str, Any]] | None = None) -> int:
        """A free VMID from the range, probed at random and confirmed by ``/cluster/nextid``."""
        taken = {vm.vmid for vm in self.vms(rows)} | exclude
        size = spec.vmid_range.end - spec.vmid_range.start + 1
        for _ in range(VMID_ATTEMPTS):
            if len(taken) >= size and all(spec.vmid_range.start <= t <= spec.vmid_range.end for t in taken):
                break
            candidate = self._rng.randint(spec.vmid_range.start, spec.vmid_range.end)
            if candidate in taken:
                if size <= 64:
                    free = [v for v in range(spec.vmid_range.start, spec.vmid_range.end + 1) if v not in taken]
                    if not free:
                        break
                    candidate = self._rng.choice(free)
                else:
                    continue
            try:
                return int(self.client.get("/cluster/nextid", vmid=candidate))
            except ProxmoxAlreadyExistsError:
                taken.add(candidate)
            except ProxmoxValidationError as exc:
                if "already exists" not in str(exc.errors):
                    raise
                taken.add(candidate)
        raise ProxmoxAlreadyExistsError(
            f"vmid_range: no free VMID found in {spec.vmid_range.start}-{spec.vmid_range.end}"
        )

    def _clone(self, spec: VmSpec, template: Located, rows: list[dict[str, Any]], node: str) -> tuple[int, str]:
        """Clone the template under a VMID from the range; returns (vmid, node).

        Only a VMID collision ("already exists", synchronous or in the task) is retried with a fresh id. A
        temporary failure inside the task (the storage allocation lock under parallel clones) is repeated
        with the same id, which the failed worker has released, a bounded number of times; the same
        failures answered synchronously were already retried by the client. Anything else is raised at
        once with its own type, naming the template, node and storage, after making sure nothing of the
        clone is left behind.
        """
        tried: set[int] = set()
        last: BaseException | None = None
        temporary_failures = 0
        vmid: int | None = None
        while len(tried) < VMID_ATTEMPTS or vmid is not None:
            if vmid is None:
                # The first attempt trusts the listing taken at the start; after a lost race, list again.
                vmid = self.allocate_vmid(spec, tried, rows if not tried else None)
                tried.add(vmid)
            params: dict[str, Any] = {
                "newid": vmid,
                "name": spec.name,
                "description": description_with_marker(spec),
                "full": spec.clone_mode == "full",
                "pool": spec.pool,
                "storage": spec.storage,
                "format": spec.disk_format,
                "target": node if node != template.node else None,
            }
            try:
                with self.clone_slots.hold(template.node):
                    self.client.call_task(
                        "POST",
                        f"/nodes/{template.node}/qemu/{template.vmid}/clone",
                        params,
                        timeout=spec.timeouts.clone,
                        idempotent=False,
                    )
                return vmid, node
            except ProxmoxConnectionError as exc:
                # The answer was lost: the clone may be running. Look for our marker before cloning again.
                last = exc
                own = self._await_own(spec, vmid, timeout=min(60.0, float(spec.timeouts.clone)))
                if own is not None:
                    return own.vmid, own.node
                vmid = None
            except ProxmoxError as exc:
                last = exc
                if is_kind(exc, ProxmoxAlreadyExistsError):
                    log.info(
                        "clone of %s as %s lost the VMID race (%s); retrying with a fresh VMID",
                        template.vmid,
                        vmid,
                        exc,
                    )
                    vmid = None
                    self._sleep(min(2.0, self._poll))
                    continue
                if isinstance(exc, ProxmoxTemporaryTaskError) and temporary_failures + 1 < self.client.retry.attempts:
                    temporary_failures += 1
                    log.info("clone of %s as %s failed (temporary: %s); retrying", template.vmid, vmid, exc.exitstatus)
                    self._sleep(min(10.0, self._poll * 2**temporary_failures))
                    continue
                raise self._clone_failed(exc, spec, template, node, vmid) from None
        raise ProxmoxAlreadyExistsError(
            f"vmid_range: clone of template {template.vmid} lost the VMID race {VMID_ATTEMPTS} times in "
            f"{spec.vmid_range.start}-{spec.vmid_range.end}; last error: {last}",
            errors={"vmid_range": "every VMID tried was taken"},
        )

    def _clone_failed(self, exc: ProxmoxError, spec: VmSpec, template: Located, node: str, vmid: int) -> ProxmoxError:
        """The clone error, annotated with what was cloned where and whether anything was left behind.

        PVE's clone worker frees the new volumes and unlinks the new config when it fails; a VM that is
        still there under this VMID with this resource's marker is destroyed here all the same.
        """
        storage = spec.storage or "the template's storages"
        where = f"clone of template {template.vmid} on {template.node} as VM {vmid} to node {node}, storage {storage}"
        try:
            left = self.locate(vmid)
            if left is not None and self.owns(vmid, spec):
                self.destroy(left.node, vmid, spec)
                note = f"the partial VM {vmid} was destroyed"
            else:
                note = "nothing was left behind" if left is None else f"VM {vmid} is not this resource's; left alone"
        except ProxmoxError as cleanup_error:
            note = f"could not confirm that nothing was left behind: {cleanup_error}"
        return _annotated(exc, prefix=f"{where}: ", suffix=f" ({note})")

    def _await_own(self, spec: VmSpec, vmid: int, timeout: float) -> Located | None:
        """After a lost clone answer: the VM that clone made (found by marker), or None once there is none.

        None comes at ``timeout``, or earlier when nothing has appeared under the requested ``vmid`` within a
        grace period (the clone worker writes that config as soon as it starts). Lost answers while polling
        are polled through.
        """
        started = time.monotonic()
        deadline = started + timeout
        grace = started + min(timeout, LOST_CLONE_GRACE_POLLS * self._poll)
        while True:
            try:
                own = self.find_own(spec)
                if own is not None:
                    return own
                if time.monotonic() >= grace and self.locate(vmid) is None:
                    return None
            except ProxmoxConnectionError:
                pass
            if time.monotonic() >= deadline:
                return None
            self._sleep(self._poll)

    def _configure(
        self, spec: VmSpec, node: str, vmid: int, password: str | None, *, template_storage: Callable[[], str]
    ) -> None:
        cfg = self.config(node, vmid)
        obs = observe(cfg, disk_slots=set(spec.disks), nic_slots=set(spec.nics))
        params: dict[str, Any] = dict(render_options(spec, password))
        for slot, nic in spec.nics.items():
            current = obs.nics.get(slot)
            params[slot] = render_nic(nic, current.mac if current else None)
        for slot, disk in spec.disks.items():
            if slot not in obs.disks:
                params[slot] = render_new_disk(slot, disk, spec.storage or template_storage())
        self.set_config(node, vmid, params, digest=obs.digest, timeout=spec.timeouts.config)
        self._grow_disks(spec, node, vmid, obs, spec.disks)

    def _grow_disks(self, spec: VmSpec, node: str, vmid: int, obs: Observed, disks: dict[str, Disk]) -> None:
        for slot, disk in sorted(disks.items()):
            current = obs.disks.get(slot)
            if current is None or current.size_gib is None:
                continue
            if disk.size_gib < current.size_gib - 1e-9:
                raise ProxmoxValidationError(
                    f"disks.{slot}.size_gib: the disk is {current.size_gib:g} GiB, shrinking to {disk.size_gib} GiB "
                    "is not supported",
                    errors={f"disks.{slot}.size_gib": "shrinking is not supported"},
                )
            if disk.size_gib > current.size_gib + 1e-9:
                self.run_task(
                    "PUT",
                    f"/nodes/{node}/qemu/{vmid}/resize",
                    {"disk": slot, "size": f"{disk.size_gib}G"},
                    timeout=spec.timeouts.config,
                )

    # ================================================================== firewall

    def bind_firewall(self, spec: VmSpec, node: str, vmid: int) -> int:
        """Add the declared group bindings that are missing, then set the guest firewall options.

        The first half of a reconcile: it never removes anything, so it is safe before any other change.
        Returns the number of rules added (0 without a ``firewall`` input: then nothing is sent).
        """
        fw = spec.firewall
        if fw is None:
            return 0
        # Each rule is inserted on top: post in reverse to end up in declared order.
        bindings = [VmGroupBinding(group, slot) for group, slot in reversed(fw.bindings())]
        return FirewallApi(self.client).bind_vm(
            node,
            vmid,
            bindings,
            policy_in=fw.policy_in,
            policy_out=fw.policy_out,
            enable=fw.enabled,
            comment=firewall_comment(spec.marker),
        )

    def unbind_stale_firewall(self, spec: VmSpec, node: str, vmid: int, *, previous_marker: str | None = None) -> int:
        """Remove this resource's group rules that are no longer declared (or disabled, or duplicated).

        Rules marked with ``previous_marker`` (the marker before an in-place marker change) count as this
        resource's too and are removed: ``bind_firewall`` has added their replacements under the new
        marker. Returns the number of rules removed.
        """
        fw = spec.firewall
        if fw is None:
            return 0
        markers = {spec.marker, *([previous_marker] if previous_marker else [])}

        def owned(rule: GuestRule) -> bool:
            return firewall_marker(rule.comment) in markers

        return FirewallApi(self.client).unbind_vm(
            node,
            vmid,
            keep=[VmGroupBinding(group, slot) for group, slot in fw.bindings()],
            owned=owned,
            comment=firewall_comment(spec.marker),
        )

    def read_firewall(self, node: str, vmid: int) -> GuestFirewall:
        """The guest firewall's options and rules."""
        return FirewallApi(self.client).vm_firewall(node, vmid)

    # ================================================================== tasks

    def run_task(
        self, method: str, path: str, params: dict[str, Any], *, timeout: float, idempotent: bool = True
    ) -> None:
        """Dispatch and wait. Only a *temporary* task failure is dispatched again: a lock until the lock
        wait is over, a timeout, lost quorum or a worker hiccup up to the client's attempt count.

        A task that refused because its goal already holds ("already running") has succeeded (the client
        says so); a permanent failure, including any wording nobody has classified, is raised at once
        with the task log tail. Only used for operations that are safe to repeat (config, resize, power),
        so by default a request whose answer was lost is sent again as well; clone and destroy have their
        own loops.
        """
        deadline = time.monotonic() + max(timeout, self.client.retry.lock_wait)
        delay = self._poll
        transient_failures = 0
        while True:
            try:
                self.client.call_task(method, path, params, timeout=timeout, idempotent=idempotent)
                return
            except ProxmoxTemporaryTaskError as exc:
                locked = issubclass(exc.kind, ProxmoxLockedError)
                if not locked:
                    transient_failures += 1
                if (not locked and transient_failures >= self.client.retry.attempts) or time.monotonic() >= deadline:
                    raise
                log.info("%s %s: %s (temporary); retrying", method, path, exc.exitstatus)
                self._sleep(delay)
                delay = min(delay * 2, 10.0)

    def set_config(self, node: str, vmid: int, params: dict[str, Any], *, digest: str | None, timeout: float) -> None:
        """Write config keys asynchronously; on a digest mismatch re-read once and write again."""
        path = f"/nodes/{node}/qemu/{vmid}/config"
        try:
            self.run_task("POST", path, {**params, "digest": digest}, timeout=timeout)
        except ProxmoxError as exc:
            if "checksum mismatch" not in str(exc):
                raise
            fresh = self.config(node, vmid).get("digest")
            self.run_task("POST", path, {**params, "digest": fresh}, timeout=timeout)

    def wait_unlocked(self, node: str, vmid: int, *, timeout: float) -> None:
        """Wait until the VM's config lock (clone, backup, migrate, ...) is gone."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.client.get(f"/nodes/{node}/qemu/{vmid}/status/current") or {}
            except ProxmoxNotFoundError:
                status = {"lock": "missing-config"}
            lock = status.get("lock")
            if not lock:
                return
            if lock in ("suspended", "destroyed") or time.monotonic() >= deadline:
                raise ProxmoxLockedError(
                    f"VM {vmid} on {node} is locked ({lock}); "
                    + (
                        "an operator must run 'qm unlock'"
                        if lock in ("suspended", "destroyed")
                        else f"still locked after {timeout:g}s"
                    )
                )
            self._sleep(self._poll)

    def power(self, node: str, vmid: int, action: str, spec: VmSpec) -> None:
        """Start or stop (graceful shutdown, then forced) and wait for the task."""
        base = f"/nodes/{node}/qemu/{vmid}/status"
        if action == "start":
            # "VM n already running" is a success of the task wait (errors.task_outcome), not an error here.
            self.run_task("POST", f"{base}/start", {}, timeout=spec.timeouts.start)
        else:
            try:
                self.run_task(
                    "POST",
                    f"{base}/shutdown",
                    {"timeout": spec.timeouts.shutdown, "forceStop": True},
                    timeout=spec.timeouts.shutdown + 60,
                )
            except ProxmoxError as exc:
                # A shutdown sent again after its answer was lost finds the VM stopped already; PVE refuses
                # that synchronously ("VM n not running"), so the task wait never sees it.
                if not already_done("qmshutdown", exc.message):
                    raise

    # ================================================================== read

    def state(
        self, spec: VmSpec, node: str, vmid: int, *, wait_for_ip: bool, cfg: dict[str, Any] | None = None
    ) -> VmState:
        """The computed outputs of a VM: status, MACs, addresses and whether a reboot is pending."""
        status = self.client.get(f"/nodes/{node}/qemu/{vmid}/status/current") or {}
        if cfg is None:
            cfg = self.config(node, vmid)
        obs = observe(cfg, disk_slots=set(spec.disks), nic_slots=set(spec.nics))
        pending = self.client.get(f"/nodes/{node}/qemu/{vmid}/pending") or []
        reboot_pending = any("pending" in row or row.get("delete") for row in pending)
        state = VmState(
            vmid=vmid,
            node=node,
            status=str(status.get("status", "unknown")),
            macs={slot: nic.mac for slot, nic in obs.nics.items() if nic.mac},
            reboot_pending=reboot_pending,
        )
        state.ip_addresses, warning = self.addresses(spec, node, vmid, state, wait=wait_for_ip)
        if warning:
            state.warnings.append(warning)
        return state

    def addresses(
        self, spec: VmSpec, node: str, vmid: int, state: VmState, *, wait: bool
    ) -> tuple[list[str], str | None]:
        """Static addresses from cloud-init, else what the guest agent reports (bounded wait, never fatal)."""
        static = _static_addresses(spec.cloud_init)
        if static:
            return static, None
        family = spec.wait_for_ip.family
        if family == "none" or not spec.agent or state.status != "running":
            return [], None
        deadline = time.monotonic() + (spec.wait_for_ip.timeout_s if wait else 0)
        macs = {mac.lower() for mac in state.macs.values()}
        while True:
            try:
                found = self._agent_addresses(node, vmid, macs, family)
                if found:
                    return found, None
            except (ProxmoxAgentUnavailableError, ProxmoxTransientError, ProxmoxValidationError):
                pass
            if time.monotonic() >= deadline:
                if not wait:
                    return [], None
                warning = (
                    f"VM {vmid}: the guest agent reported no {family} address within "
                    f"{spec.wait_for_ip.timeout_s}s; ip_addresses is empty"
                )
                log.warning(warning)
                return [], warning
            self._sleep(self._poll)

    def _agent_addresses(self, node: str, vmid: int, macs: set[str], family: str) -> list[str]:
        data = self.client.get(f"/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces") or {}
        interfaces = data.get("result", []) if isinstance(data, dict) else []
        matched: list[str] = []
        others: list[str] = []
        for iface in interfaces:
            name = str(iface.get("name", ""))
            if name.startswith(IGNORED_INTERFACES):
                continue
            mac = str(iface.get("hardware-address", "")).lower()
            for addr in iface.get("ip-addresses", []) or []:
                ip = ipaddress.ip_address(str(addr.get("ip-address", "")).split("%")[0])
                if ip.is_loopback or ip.is_link_local or ip.is_multicast:
                    continue
                if (family == "ipv4" and ip.version != 4) or (family == "ipv6" and ip.version != 6):
                    continue
                (matched if mac in macs else others).append(str(ip))
        # Prefer the NICs we manage; the agent's MAC list may not match (e.g. bonded or renamed NICs).
        return matched or others

    def read(self, vmid: int, spec: VmSpec, *, adopt_unmarked: bool = False) -> tuple[VmState, VmSpec] | None:
        """Refresh: where the VM is and what it looks like now, as a spec; None if it is gone or not ours."""
        where = self.locate(vmid)
        if where is None or where.template:
            return None
        try:
            cfg = self.config(where.node, vmid)
        except ProxmoxNotFoundError:
            return None
        obs = observe(cfg, disk_slots=set(spec.disks), nic_slots=set(spec.nics))
        ours = obs.marker == spec.marker or spec.marker_tag in obs.marker_tags
        if not ours and not (adopt_unmarked and obs.marker is None):
            log.warning("VM %s no longer carries this resource's marker: treating it as gone", vmid)
            return None
        state = self.state(spec, where.node, vmid, wait_for_ip=False, cfg=cfg)
        guest_fw = self.read_firewall(where.node, vmid) if spec.firewall is not None else None
        return state, _refreshed_spec(spec, obs, where, state, guest_fw)

    # ================================================================== update

    def update(
        self,
        vmid: int,
        old: VmSpec,
        new: VmSpec,
        change: VmPlan,
        password: str | None = None,
    ) -> VmState:
        """Apply an in-place plan: config keys, NICs, disks, cloud-init drive, migration and power.

        What the cluster would refuse (a bridge the node lacks, a new disk on a storage it cannot use, more
        vCPUs than the node has) is refused before the first write, from the same listing that locates the VM.
        """
        rows = self.client.get("/cluster/resources") or []
        where = next((vm for vm in self.vms(rows) if vm.vmid == vmid), None)
        if where is None:
            raise ProxmoxNotFoundError(f"VM {vmid} does not exist any more; run 'pulumi refresh' to recreate it")
        node = where.node
        added_nics = {
            s: n for s, n in change.nic_updates.items() if s not in old.nics or old.nics[s].bridge != n.bridge
        }
        added_disks = {s: d for s, d in change.disk_updates.items() if s not in old.disks}
        if added_nics or added_disks or new.cpu != old.cpu:
            self.preflight(new, change.migrate_to or node, rows, None, nics=added_nics, disks=added_disks)
        if where.lock:
            self.wait_unlocked(node, vmid, timeout=new.timeouts.config)
        if change.migrate_to and change.migrate_to != node:
            self.run_task(
                "POST",
                f"/nodes/{node}/qemu/{vmid}/migrate",
                {"target": change.migrate_to, "online": where.status == "running", "with-local-disks": True},
                timeout=new.timeouts.clone,
            )
            node = change.migrate_to
        if change.firewall:
            # New bindings and policies first: a NIC added below comes up with its groups already bound.
            self.bind_firewall(new, node, vmid)
        cfg = self.config(node, vmid)
        obs = observe(cfg, disk_slots=set(new.disks), nic_slots=set(new.nics) | set(old.nics))
        params: dict[str, Any] = dict(change.set_options)
        if "cipassword" in params and password is None:
            params.pop("cipassword")
        for slot, nic in change.nic_updates.items():
            current = obs.nics.get(slot)
            params[slot] = render_nic(nic, current.mac if current else None)
        new_disks = {s: d for s, d in change.disk_updates.items() if s not in obs.disks}
        for slot, disk in new_disks.items():
            params[slot] = render_new_disk(slot, disk, new.storage or _first_storage(obs) or "local-lvm")
        deletes = [*change.delete_options, *[s for s in change.nic_removals if s in obs.nics]]
        if deletes:
            params["delete"] = ",".join(deletes)
        if params:
            self.set_config(node, vmid, params, digest=obs.digest, timeout=new.timeouts.config)
        grow = {s: d for s, d in change.disk_updates.items() if s in obs.disks}
        self._grow_disks(new, node, vmid, obs, grow)
        if change.firewall:
            self.unbind_stale_firewall(new, node, vmid, previous_marker=old.marker)
        if change.regenerate_cloudinit:
            self.run_task("PUT", f"/nodes/{node}/qemu/{vmid}/cloudinit", {}, timeout=new.timeouts.config)
        if change.power:
            self.power(node, vmid, change.power, new)
        state = self.state(new, node, vmid, wait_for_ip=change.power == "start")
        if state.reboot_pending and new.reboot_after_update and state.status == "running":
            self.run_task("POST", f"/nodes/{node}/qemu/{vmid}/status/reboot", {}, timeout=new.timeouts.start)
            state = self.state(new, node, vmid, wait_for_ip=True)
        return state

    # ================================================================== delete

    def delete(self, vmid: int, spec: VmSpec) -> None:
        """Stop, destroy with purge, and confirm by identity that the VM is gone. Never touches foreign VMs."""
        where = self.locate(vmid)
        if where is None:
            return
        try:
            obs = observe(self.config(where.node, vmid), disk_slots=set(), nic_slots=set())
        except ProxmoxNotFoundError:
            return
        if obs.marker != spec.marker and spec.marker_tag not in obs.marker_tags:
            log.warning("VM %s on %s is not this resource's (marker differs): leaving it alone", vmid, where.node)
            return
        self.destroy(where.node, vmid, spec)

    def destroy(self, node: str, vmid: int, spec: VmSpec) -> None:
        """Stop (graceful, then forced) and delete with purge, waiting for both; confirm by identity.

        A VM another task is busy with (a start that outlasted its timeout and still holds the config lock,
        then leaves the VM running) is retried within ``timeouts.delete``: every round waits for the lock,
        stops the VM if it runs by now, and sends the delete again.
        """
        deadline = time.monotonic() + spec.timeouts.delete
        delay = self._poll
        while True:
            try:
                self._stop_and_delete(node, vmid, spec, deadline)
                break
            except ProxmoxError as exc:
                # Busy: a lock or hiccup, or the VM runs again (a start task that finished after our stop).
                busy = isinstance(exc, ProxmoxTemporaryTaskError | ProxmoxTransientError) or is_kind(
                    exc, ProxmoxGuestRunningError
                )
                if not busy or time.monotonic() >= deadline:
                    raise
                log.info("VM %s on %s is busy (%s); trying the delete again", vmid, node, exc.message)
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
        while True:
            if not self.owns(vmid, spec):
                return
            if time.monotonic() >= deadline:
                raise ProxmoxTimeoutError(f"VM {vmid} on {node} still exists after delete")
            self._sleep(self._poll)

    def _stop_and_delete(self, node: str, vmid: int, spec: VmSpec, deadline: float) -> None:
        base = f"/nodes/{node}/qemu/{vmid}"
        self.wait_unlocked(node, vmid, timeout=max(1.0, deadline - time.monotonic()))
        status = self.client.get(f"{base}/status/current") or {}
        if status.get("status") != "stopped":
            self.power(node, vmid, "stop", spec)
        while True:
            try:
                self.run_task("DELETE", base, {"purge": True}, timeout=spec.timeouts.delete, idempotent=False)
            except ProxmoxConnectionError:
                # The answer was lost: the VM may be gone (and its VMID reused). Send it again only while
                # the VM there still carries our marker.
                if self.owns(vmid, spec) and time.monotonic() < deadline:
                    self._sleep(self._poll)
                    continue
            except ProxmoxError as exc:
                if not is_kind(exc, ProxmoxNotFoundError):
                    raise
            return

    def stop_task(self, upid: str, *, timeout: float) -> None:
        """Ask PVE to stop a task (``DELETE /nodes/{node}/tasks/{upid}``) and wait until it has ended.

        Used on the task a rollback finds holding the VM's lock: our own start that outlasted its timeout.
        Stopping needs no privilege for one's own tasks; where PVE refuses, the wait alone is bounded.
        """
        node = upid.split(":")[1]
        try:
            self.client.delete(f"/nodes/{node}/tasks/{quote(upid, safe='')}")
        except ProxmoxError as exc:
            log.info("could not stop task %s (%s); waiting for it instead", upid, exc.message)
        try:
            self.client.wait_task(upid, timeout=timeout)
        except ProxmoxError as exc:  # a stopped task ends with an error; only its end matters here
            log.info("task %s ended: %s", upid, exc.message)

    def _destroy_quietly(self, node: str, vmid: int, spec: VmSpec, cause: BaseException | None = None) -> str | None:
        """Roll back a failed create; returns a note for the error message if the rollback failed too.

        When the create failed because a task on the VM outlasted its timeout, that task still holds the
        VM's lock: it is stopped (or waited for, within the delete timeout) before the delete.
        """
        try:
            where = self.locate(vmid)
            if where is None:
                return None
            obs = observe(self.config(where.node, vmid), disk_slots=set(), nic_slots=set())
            if obs.marker != spec.marker:
                return None
            if isinstance(cause, ProxmoxTimeoutError) and cause.upid and f":{vmid}:" in cause.upid:
                self.stop_task(cause.upid, timeout=spec.timeouts.delete)
            self.destroy(where.node, vmid, spec)
            log.info("rolled back the half-made VM %s on %s", vmid, where.node)
            return None
        except Exception as cleanup_error:  # the original error matters more; say what was left behind
            log.error("could not remove the half-made VM %s on %s: %s", vmid, node, cleanup_error)
            return (
                f"the half-made VM {vmid} on {node} could not be removed: {cleanup_error}; it carries tag "
                f"{spec.marker_tag} and the next 'pulumi up' adopts it"
            )


def _template_storage(template_cfg: dict[str, Any]) -> str:
    """The storage of the template's first disk: where new disk slots go when no storage is declared."""
    for key in sorted(template_cfg):
        if key.startswith(("scsi", "virtio", "sata")) and key[-1].isdigit() and ":" in str(template_cfg[key]):
            return str(template_cfg[key]).split(":", 1)[0]
    return "local-lvm"


def _storage_problem(rows: list[dict[str, Any]], node: str, storage: str) -> tuple[str | None, bool]:
    """Why ``storage`` cannot take a VM disk on ``node`` per /cluster/resources, and whether it is only offline."""
    entries = [r for r in rows if r.get("type") == "storage" and r.get("storage") == storage]
    here = next((r for r in entries if r.get("node") == node), None)
    if here is None:
        elsewhere = sorted(str(r.get("node")) for r in entries)
        if elsewhere:
            return f"storage {storage!r} is not enabled on node {node} (it is on: {', '.join(elsewhere)})", False
        return f"no storage {storage!r} in this cluster", False
    content = str(here.get("content", ""))
    if "images" not in content.split(","):
        return f"storage {storage!r} does not take VM disk images (content: {content or 'none'})", False
    if here.get("status") != "available":
        return f"storage {storage!r} on node {node} is not online (status: {here.get('status')})", True
    return None, False


def _refused(problems: dict[str, str]) -> ProxmoxValidationError:
    """One error naming every refused input field (nothing has been written)."""
    text = "; ".join(f"{field}: {reason}" for field, reason in sorted(problems.items()))
    return ProxmoxValidationError(f"refused before any change: {text}", errors=problems)


def _annotated(exc: ProxmoxError, *, prefix: str = "", suffix: str = "") -> ProxmoxError:
    """The same exception (type, status, task log) with context around its message."""
    exc.message = f"{prefix}{exc.message}{suffix}"
    exc.args = (exc._render(),)
    return exc


def _first_storage(obs: Observed) -> str | None:
    for disk in obs.disks.values():
        if disk.storage:
            return disk.storage
    return None


def _static_addresses(ci: CloudInit | None) -> list[str]:
    if ci is None:
        return []
    out = []
    for _slot, ip in sorted(ci.ip_configs.items()):
        if ip.ipv4 and ip.ipv4 != "dhcp":
            out.append(ip.ipv4.split("/")[0])
        if ip.ipv6 and ip.ipv6 not in ("dhcp", "auto"):
            out.append(ip.ipv6.split("/")[0])
    return out


def _parse_ipconfig(value: str) -> IpConfig:
    props = dict(item.partition("=")[::2] for item in value.split(",") if item)
    return IpConfig(ipv4=props.get("ip"), gateway4=props.get("gw"), ipv6=props.get("ip6"), gateway6=props.get("gw6"))


def _refreshed_firewall(spec: VmSpec, guest: GuestFirewall | None, nic_slots: set[str]) -> VmFirewall | None:
    """The guest firewall as a ``firewall`` input: options as PVE has them, and the enabled group rules that
    carry this resource's marker on NICs the VM still has. Anybody else's rules are not reported."""
    if spec.firewall is None or guest is None:
        return spec.firewall
    groups: dict[str, list[str]] = {}
    for rule in guest.rules:
        if (
            rule.type == "group"
            and rule.enable
            and rule.iface in nic_slots
            and firewall_marker(rule.comment) == spec.marker
        ):
            groups.setdefault(str(rule.iface), []).append(rule.action)
    return VmFirewall.model_validate(
        {"enabled": guest.enable, "policy_in": guest.policy_in, "policy_out": guest.policy_out, "groups": groups}
    )


def _refreshed_spec(
    spec: VmSpec, obs: Observed, where: Located, state: VmState, guest_fw: GuestFirewall | None = None
) -> VmSpec:
    """The spec as the VM is now: observed values replace declared ones for everything we manage."""
    o = obs.options
    nics = {}
    for slot, nic in spec.nics.items():
        seen = obs.nics.get(slot)
        if seen is None:
            continue
        nics[slot] = Nic.model_validate(
            {
                "bridge": seen.bridge or nic.bridge,
                "vlan": seen.vlan,
                "model": seen.model if seen.model in NIC_MODELS else nic.model,
                "firewall": seen.firewall,
                "mtu": seen.mtu,
            }
        )
    disks = {}
    for slot, disk in spec.disks.items():
        seen_disk = obs.disks.get(slot)
        if seen_disk is None:
            continue
        size = disk.size_gib if seen_disk.size_gib is None else max(1, round(seen_disk.size_gib))
        disks[slot] = disk.model_copy(update={"size_gib": size})
    cloud_init = spec.cloud_init
    if cloud_init is not None:
        keys = unquote(o.get("sshkeys", "")).splitlines()
        cloud_init = CloudInit(
            user=o.get("ciuser"),
            ssh_keys=[k for k in keys if k.strip()],
            ip_configs={
                "net" + key.removeprefix("ipconfig"): _parse_ipconfig(value)
                for key, value in sorted(o.items())
                if key.startswith("ipconfig")
            },
            dns_servers=o.get("nameserver", "").split(),
            search_domain=o.get("searchdomain"),
            custom_snippet=o.get("cicustom"),
            upgrade=o.get("ciupgrade") == "1",
        )
    balloon = int(o["balloon"]) if "balloon" in o else None
    cpu_type = parse_props(o.get("cpu", spec.cpu.type))[0].removeprefix("cputype=")
    return spec.model_copy(
        update={
            "name": o.get("name", spec.name),
            "description": obs.user_description,
            "tags": obs.user_tags,
            "cpu": Cpu(sockets=int(o["sockets"]), cores=int(o["cores"]), type=cpu_type),
            "memory_mib": int(o.get("memory", spec.memory_mib)),
            "balloon_mib": balloon if spec.balloon_mib is not None or balloon is not None else None,
            "agent": o.get("agent") == "1",
            "on_boot": o.get("onboot") == "1",
            "nics": nics,
            "disks": disks,
            "cloud_init": cloud_init,
            "firewall": _refreshed_firewall(spec, guest_fw, set(nics)),
            "started": state.status == "running",
            "node": where.node if spec.node else None,
        }
    )


__all__ = ["CloneSlots", "Located", "VmOperations", "VmState"]
