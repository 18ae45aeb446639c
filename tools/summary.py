"""Print a readable summary of a stack from ``pulumi stack output --json`` on standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def summarise(outputs: dict[str, Any], root: Path) -> str:
    """The VMs with their IDs, nodes and IPs, the Proxmox pools, and where manifests were rendered."""
    lines = ["", "Management cluster VMs:", f"  {'name':<20}{'vmid':>8}  {'node':<8}{'ip':<16}"]
    for role in ("controlPlanes", "workers"):
        for vm in outputs.get(role) or []:
            name, vmid, node, ip = (str(vm.get(k, "?")) for k in ("name", "vmid", "node", "ip"))
            lines.append(f"  {name:<20}{vmid:>8}  {node:<8}{ip:<16}")
    lines.append(f"API endpoint: {outputs.get('managementApiEndpoint', '-')}")
    pools = outputs.get("proxmoxPools") or {}
    if pools:
        lines.append("Proxmox pools: " + ", ".join(f"{k}={v}" for k, v in sorted(pools.items())))
    render = outputs.get("renderDir")
    if render:
        files = sorted(p for p in (root / render).rglob("*.yaml"))
        lines.append(f"Kubernetes manifests: {len(files)} files under {render}/ (charts in {render}/charts/)")
    return "\n".join(lines)


def main() -> None:
    """Read the outputs JSON from stdin and print the summary."""
    print(summarise(json.load(sys.stdin), Path.cwd()))


if __name__ == "__main__":
    main()
