"""The operations domain: monitoring, logging and Proxmox backup jobs, and their preflight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from config.base import SCHEDULE, ConfigModel, Problems, StorageId, join, pattern
from config.proxmox import NodeConfig


class BackupRetention(ConfigModel):
    """How many backups a Proxmox backup job keeps (prune-backups)."""

    keep_last: int = Field(default=0, ge=0, le=1000)
    """Keep the last N backups."""
    keep_daily: int = Field(default=7, ge=0, le=1000)
    """Keep one backup per day for N days."""
    keep_weekly: int = Field(default=4, ge=0, le=1000)
    """Keep one backup per week for N weeks."""
    keep_monthly: int = Field(default=3, ge=0, le=1000)
    """Keep one backup per month for N months."""


class BackupConfig(ConfigModel):
    """Proxmox backup jobs (vzdump) for the platform's VMs."""

    schedule: Annotated[str, pattern(SCHEDULE, 64)] = "02:00"
    """Proxmox calendar event, e.g. '02:00' or 'sun 01:30'."""
    storage: StorageId
    """Backup storage ID; must exist on every node."""
    mode: Literal["snapshot", "suspend", "stop"] = "snapshot"
    """vzdump mode."""
    retention: BackupRetention = BackupRetention()
    """What the job keeps."""


class OperationsConfig(ConfigModel):
    """Operations tooling."""

    monitoring: bool = True
    """Install metrics collection."""
    logging: bool = True
    """Install log shipping."""
    backups: BackupConfig | None = None
    """Proxmox backup jobs (omit for none)."""


def check_operations(ops: OperationsConfig, nodes: Sequence[NodeConfig], out: Problems) -> None:
    """The backup storage exists on every node, and the retention keeps something."""
    backups = ops.backups
    if backups is None:
        return
    missing = [node.name for node in nodes if backups.storage not in node.storages]
    if missing:
        out.add(
            "operations.backups.storage",
            f"storage {backups.storage!r} is not on {join(missing)}; backup jobs need it on every node",
        )
    r = backups.retention
    if not (r.keep_last or r.keep_daily or r.keep_weekly or r.keep_monthly):
        out.add("operations.backups.retention", "keeps nothing; set at least one keep* value above 0")
