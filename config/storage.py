"""The storage domain: Proxmox storages exposed as StorageClasses through the Proxmox CSI driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from pydantic import Field

from config.base import ConfigModel, Problems, StorageClassName, StorageId, join
from config.proxmox import Inventory

CSI_CONTROLLER_VMID: Final = 9999
"""VMID that owns the Proxmox CSI driver's volumes (features.controllerVmID); no range may contain it."""


class StorageClassConfig(ConfigModel):
    """A Proxmox storage exposed as a Kubernetes StorageClass through the Proxmox CSI driver."""

    storage: StorageId
    """Proxmox storage ID (CSI parameter storage)."""
    storage_class: StorageClassName
    """Name of the Kubernetes StorageClass."""
    type: Literal["dir", "lvm", "lvmthin", "zfspool", "nfs", "rbd"] = "lvmthin"
    """Proxmox storage type (decides snapshot support and whether volumes can follow a VM to another node)."""
    shared: bool = False
    """The storage is shared between nodes (always true for nfs and rbd)."""
    ssd: bool = False
    """SSD emulation and discard."""
    cache: Literal["none", "writethrough", "writeback", "directsync"] = "none"
    """QEMU cache mode of the volumes (the values the CSI driver accepts)."""
    backup: bool = False
    """Include the volumes in vzdump backups of the VM."""
    disk_iops: int | None = Field(default=None, ge=1, alias="diskIOPS")
    """Read/write IOPS limit per volume."""
    disk_mbps: int | None = Field(default=None, ge=1, alias="diskMBps")
    """Read/write MB/s limit per volume."""
    encrypted: bool = False
    """LUKS-encrypt the volumes (passphrase: secret config key csiEncryptionPassphrase)."""
    fs_type: Literal["ext4", "xfs"] = "ext4"
    """File system of the volumes."""
    is_default: bool = Field(default=False, alias="default")
    """Mark as the cluster's default StorageClass (at most one)."""
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    """What happens to a volume when its claim is deleted."""


def find_storage_class(classes: Sequence[StorageClassConfig], name: str | None) -> StorageClassConfig | None:
    """The storage class called ``name``, or the default one when ``name`` is None."""
    if name is None:
        return next((sc for sc in classes if sc.is_default), None)
    return next((sc for sc in classes if sc.storage_class == name), None)


def check_storage(classes: Sequence[StorageClassConfig], inventory: Inventory, out: Problems) -> None:
    """StorageClass names are unique, at most one is default, and every storage exists on some node."""
    names: dict[str, int] = {}
    defaults: list[int] = []
    all_storages = inventory.all_storages()
    for i, sc in enumerate(classes):
        if sc.storage_class in names:
            out.add(
                f"storage[{i}].storageClass",
                f"duplicate StorageClass {sc.storage_class!r} (also storage[{names[sc.storage_class]}])",
            )
        names.setdefault(sc.storage_class, i)
        if sc.is_default:
            defaults.append(i)
        if sc.storage not in all_storages:
            out.add(
                f"storage[{i}].storage",
                f"storage {sc.storage!r} is not on any node; declared storages: {join(sorted(all_storages))}",
            )
    for i in defaults[1:]:
        out.add(f"storage[{i}].default", f"only one StorageClass may be default (storage[{defaults[0]}] is)")


def check_storage_class_ref(classes: Sequence[StorageClassConfig], out: Problems, path: str, name: str | None) -> bool:
    """A named StorageClass is declared (None, the default, always passes); report and return False if not."""
    if name is None or find_storage_class(classes, name) is not None:
        return True
    declared = join(sc.storage_class for sc in classes) or "none"
    out.add(path, f"unknown StorageClass {name!r}; declared in storage: {declared}")
    return False


def check_storage_on_nodes(
    classes: Sequence[StorageClassConfig],
    inventory: Inventory,
    out: Problems,
    path: str,
    class_name: str | None,
    nodes: Sequence[str],
    who: str,
) -> None:
    """The StorageClass's Proxmox storage exists on every node where ``who`` may run."""
    sc = find_storage_class(classes, class_name)
    if sc is None:
        return
    known = inventory.node_names()
    missing = [n for n in nodes if n in known and sc.storage not in inventory.storages_on(n)]
    if missing:
        out.add(
            path,
            f"StorageClass {sc.storage_class!r} uses storage {sc.storage!r}, which is not on "
            f"{join(missing)} where {who} may run",
        )
