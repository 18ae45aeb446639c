"""The pure diff planner of ProxmoxVm: replace, update in place, or refuse.

It compares two VmSpecs (the one in state, refreshed if the user refreshed, and the new one) and says
what has to happen, without calling Proxmox. ``diff()`` reports it to the engine; ``update()`` executes
it. Only declared slots ever appear in a plan: a disk slot that stops being declared is simply no longer
managed (its data stays), and slots nobody declared (CSI volumes, ``unusedN``) are invisible here.

The guest firewall (``firewall``: bound security groups and policies) always changes in place, never by
replacement; a plan with ``firewall`` set reconciles the bindings (see ``VmOperations.update``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from providers.proxmox.vm_config import field_of, render_options
from providers.proxmox.vm_spec import Disk, Nic, VmSpec

# Changing any of these means a different VM: it is cloned anew.
REPLACE_FIELDS = ("template_vmid", "template_tags", "clone_mode", "storage", "disk_format", "pool")
# Inputs that change only the provider's behaviour: the update stores them and calls nothing.
# (A new ownership marker is rewritten in place: it is part of the rendered tags and description.)
BEHAVIOUR_FIELDS = (
    "wait_for_ip",
    "timeouts",
    "reboot_after_update",
    "migrate_on_node_change",
    "vmid_range",
    "allowed_nodes",
    "node",
    "owner",
)


class PlanError(ValueError):
    """A change that cannot be made safely, naming the input field and why."""

    def __init__(self, field_path: str, reason: str) -> None:
        self.field_path = field_path
        self.reason = reason
        super().__init__(f"{field_path}: {reason}")


@dataclass(frozen=True)
class VmPlan:
    """What it takes to go from the old spec to the new one."""

    replaces: tuple[str, ...] = ()
    changed_fields: tuple[str, ...] = ()
    set_options: dict[str, str] = field(default_factory=dict)
    delete_options: tuple[str, ...] = ()
    nic_updates: dict[str, Nic] = field(default_factory=dict)
    nic_removals: tuple[str, ...] = ()
    disk_updates: dict[str, Disk] = field(default_factory=dict)
    power: Literal["start", "stop"] | None = None
    migrate_to: str | None = None
    regenerate_cloudinit: bool = False
    firewall: bool = False
    """Reconcile the guest firewall with the new spec's ``firewall`` (bindings, enable, policies)."""
    delete_before_replace: bool = False

    @property
    def has_changes(self) -> bool:
        """True if the engine must call update (or replace)."""
        return bool(self.replaces or self.changed_fields)


def _static_ips(spec: VmSpec) -> bool:
    ci = spec.cloud_init
    return bool(ci and any(ip.ipv4 not in (None, "dhcp") for ip in ci.ip_configs.values()))


def plan(
    old: VmSpec,
    new: VmSpec,
    *,
    current_node: str | None,
    current_vmid: int | None,
    old_password: str | None = None,
    new_password: str | None = None,
) -> VmPlan:
    """Plan the change from ``old`` to ``new`` for a VM that lives on ``current_node`` as ``current_vmid``."""
    replaces = [f for f in REPLACE_FIELDS if getattr(old, f) != getattr(new, f)]
    changed: set[str] = set()
    migrate_to: str | None = None

    node = current_node or old.node
    if node and node not in new.candidate_nodes:
        if new.migrate_on_node_change:
            migrate_to = new.candidate_nodes[0]
            changed.add("node" if new.node else "allowed_nodes")
        else:
            replaces.append("node" if new.node else "allowed_nodes")
    if current_vmid is not None and not new.vmid_range.start <= current_vmid <= new.vmid_range.end:
        replaces.append("vmid_range")

    # Disks: grow or add; never shrink, never move.
    disk_updates: dict[str, Disk] = {}
    for slot, disk in sorted(new.disks.items()):
        before = old.disks.get(slot)
        if before is None or before != disk:
            if before is not None and disk.size_gib < before.size_gib:
                raise PlanError(
                    f"disks.{slot}.size_gib",
                    f"shrinking disk {slot} from {before.size_gib} GiB to {disk.size_gib} GiB is not supported "
                    "by Proxmox; keep the size, or replace the VM deliberately",
                )
            if before is not None and disk.storage != before.storage:
                raise PlanError(
                    f"disks.{slot}.storage",
                    f"moving disk {slot} from {before.storage or 'the template storage'} to "
                    f"{disk.storage or 'the template storage'} is not done by this provider; move it with "
                    "'qm disk move' and update the declaration",
                )
            if before is not None:
                for option in ("ssd", "discard", "iothread"):
                    if getattr(disk, option) != getattr(before, option):
                        raise PlanError(
                            f"disks.{slot}.{option}",
                            f"drive options of the existing disk {slot} are set when it is created and not "
                            "changed afterwards by this provider; keep the value, or change it with 'qm set'",
                        )
            disk_updates[slot] = disk
            changed.add("disks")

    # NICs: add, change (keeping the MAC), remove.
    nic_updates = {slot: nic for slot, nic in sorted(new.nics.items()) if old.nics.get(slot) != nic}
    nic_removals = tuple(sorted(set(old.nics) - set(new.nics)))
    if nic_updates or nic_removals:
        changed.add("nics")

    old_cfg = render_options(old, old_password)
    new_cfg = render_options(new, new_password)
    set_options = {k: v for k, v in new_cfg.items() if old_cfg.get(k) != v}
    delete_options = tuple(sorted(k for k in old_cfg if k not in new_cfg))
    for key in [*set_options, *delete_options]:
        changed.add(field_of(key))
    regenerate = any(field_of(k) in ("cloud_init", "cloud_init_password") for k in [*set_options, *delete_options])

    power: Literal["start", "stop"] | None = None
    if old.started != new.started:
        power = "start" if new.started else "stop"
        changed.add("started")

    for name in BEHAVIOUR_FIELDS:
        if getattr(old, name) != getattr(new, name):
            changed.add(name)

    # The guest firewall: in place. Its rules carry the ownership marker, so a new marker re-marks them too.
    # Dropping the input only stops managing it (the rules and policies stay as they are).
    if old.firewall != new.firewall:
        changed.add("firewall")
    reconcile_firewall = new.firewall is not None and (old.firewall != new.firewall or old.marker != new.marker)

    # Static addresses or the same name cannot exist twice: remove the old VM before cloning its successor.
    delete_before_replace = bool(replaces) and (_static_ips(old) and _static_ips(new))
    return VmPlan(
        replaces=tuple(sorted(set(replaces))),
        changed_fields=tuple(sorted(changed - set(replaces))),
        set_options=set_options,
        delete_options=delete_options,
        nic_updates=nic_updates,
        nic_removals=nic_removals,
        disk_updates=disk_updates,
        power=power,
        migrate_to=migrate_to,
        regenerate_cloudinit=regenerate,
        firewall=reconcile_firewall,
        delete_before_replace=delete_before_replace,
    )
