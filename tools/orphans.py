"""List, and on request remove, Proxmox VMs that carry a stack's ownership markers but are not in its state.

Every ProxmoxVm writes a description footer naming its owner (``<project>/<stack>/<resource>``) and its
ownership marker. A VM whose owner belongs to the stack but whose (VMID, marker) no resource of the
stack's state holds was left behind: by a create whose rollback failed, a run killed after the clone
whose resource was then removed from the program, or a replacement that never finished.

    python -m tools.orphans --stack dev                        # dry run: list them
    python -m tools.orphans --stack dev --delete               # stop and destroy them
    python -m tools.orphans --stack dev --state export.json    # state from ``pulumi stack export``

Without ``--state`` the state is read with ``pulumi stack export --stack <name>`` (the CLI on PATH, for
example after ``. scripts/pulumi-env.sh``). The connection comes from PROXMOX_ENDPOINT,
PROXMOX_TOKEN_ID, PROXMOX_TOKEN_SECRET and PROXMOX_CA_BUNDLE (or PROXMOX_VERIFY_TLS). Each VM is
checked again by its marker right before it is destroyed, so a VMID reused meanwhile is never touched.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import ProxmoxError, ProxmoxNotFoundError
from providers.proxmox.vm_config import split_description
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_spec import VmSpec


@dataclass(frozen=True)
class Orphan:
    """A VM that names one of the stack's resources as its owner, which the stack's state does not hold."""

    vmid: int
    node: str
    name: str
    status: str
    owner: str
    marker: str


class StateMismatchError(ValueError):
    """The state given is not the named stack's: deleting against it could remove the stack's live VMs."""


def owner_prefix(project: str, stack: str) -> str:
    """The start of every owner a ProxmoxVm of this stack writes (``<project>/<stack>/``)."""
    return f"{project}/{stack}/"


def held(state: Mapping[str, Any], project: str, stack: str) -> set[tuple[int, str]]:
    """(VMID, marker) of every ProxmoxVm in a ``pulumi stack export`` document of this stack.

    Raises StateMismatchError if a resource's URN names another stack or project.
    """
    resources = (state.get("deployment") or {}).get("resources") or []
    out: set[tuple[int, str]] = set()
    for resource in resources:
        urn = str(resource.get("urn", ""))
        parts = urn.split("::")
        if urn.startswith("urn:pulumi:") and len(parts) >= 2:
            urn_stack, urn_project = parts[0].removeprefix("urn:pulumi:"), parts[1]
            if (urn_stack, urn_project) != (stack, project):
                raise StateMismatchError(f"the state holds {urn}, which is not of stack {project}/{stack}")
        outputs = resource.get("outputs") or {}
        vmid, marker = outputs.get("vmid"), outputs.get("marker")
        if vmid is not None and isinstance(marker, str):
            out.add((int(vmid), marker))
    return out


def find_orphans(ops: VmOperations, prefix: str, keep: set[tuple[int, str]]) -> list[Orphan]:
    """Every VM whose owner starts with ``prefix`` and whose (VMID, marker) is not in ``keep``.

    One listing of the cluster, then one config read per VM (the owner is only in the description).
    """
    found = []
    for vm in ops.vms():
        if vm.template:
            continue
        try:
            description = str(ops.config(vm.node, vm.vmid).get("description", ""))
        except ProxmoxNotFoundError:
            continue  # deleted since the listing
        _, owner, marker = split_description(description)
        if owner is None or marker is None or not owner.startswith(prefix):
            continue
        if (vm.vmid, marker) not in keep:
            found.append(Orphan(vm.vmid, vm.node, vm.name, vm.status, owner, marker))
    return sorted(found, key=lambda o: o.vmid)


def remove(ops: VmOperations, orphan: Orphan) -> None:
    """Stop and destroy an orphan; ``destroy`` confirms by its marker that it is still the same VM."""
    # Only the identity and the default timeouts matter to destroy(); the rest of a spec is not needed here.
    spec = VmSpec.model_construct(name=orphan.name, owner=orphan.owner, marker=orphan.marker)
    ops.destroy(orphan.node, orphan.vmid, spec)


def read_state(stack: str, state_file: str | None) -> dict[str, Any]:
    """The stack's state: from a ``pulumi stack export`` file, or by running that command."""
    if state_file:
        text = Path(state_file).read_text()
    else:
        text = subprocess.run(
            ["pulumi", "stack", "export", "--stack", stack], check=True, capture_output=True, text=True
        ).stdout
    data: dict[str, Any] = json.loads(text)
    return data


def project_name(root: Path) -> str:
    """The project name from ``Pulumi.yaml``."""
    data = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return str(data["name"])


def report(orphans: Sequence[Orphan]) -> str:
    """A table of the orphans, one per line."""
    lines = [f"{'vmid':>10}  {'node':<10}{'status':<10}{'name':<24}owner"]
    lines += [f"{o.vmid:>10}  {o.node:<10}{o.status:<10}{o.name:<24}{o.owner}" for o in orphans]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, ops: VmOperations | None = None) -> int:
    """Command line: list the stack's orphaned VMs; destroy them with ``--delete``. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tools.orphans", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack whose owner markers to look for")
    parser.add_argument("--state", help="a 'pulumi stack export' file (default: run that command)")
    parser.add_argument("--project", help="the project name (default: from Pulumi.yaml)")
    parser.add_argument("--delete", action="store_true", help="stop and destroy the VMs listed (default: dry run)")
    args = parser.parse_args(argv)

    project = args.project or project_name(Path.cwd())
    try:
        keep = held(read_state(args.stack, args.state), project, args.stack)
    except (StateMismatchError, OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"orphans: cannot read the state of {project}/{args.stack}: {exc}", file=sys.stderr)
        return 2
    if ops is None:
        settings = ConnectionSettings.from_env()
        if settings is None:
            print("orphans: set PROXMOX_ENDPOINT, PROXMOX_TOKEN_ID and PROXMOX_TOKEN_SECRET", file=sys.stderr)
            return 2
        ops = VmOperations(ProxmoxClient(settings))
    orphans = find_orphans(ops, owner_prefix(project, args.stack), keep)
    if not orphans:
        print(f"no orphaned VMs of {project}/{args.stack} (the state holds {len(keep)})")
        return 0
    print(f"{len(orphans)} VM(s) carry the owner markers of {project}/{args.stack} but are not in its state:")
    print(report(orphans))
    if not args.delete:
        print("dry run: nothing was changed; pass --delete to stop and destroy them")
        return 0
    failed = 0
    for orphan in orphans:
        try:
            remove(ops, orphan)
            print(f"destroyed VM {orphan.vmid} on {orphan.node}")
        except ProxmoxError as exc:
            failed += 1
            print(f"could not destroy VM {orphan.vmid} on {orphan.node}: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
