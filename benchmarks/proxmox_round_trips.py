"""Benchmark: Proxmox API round trips per VM operation, against the minimal call sequence.

Run: .venv/bin/python -m benchmarks.proxmox_round_trips

Each operation runs against the fakepve simulator (time_scale 0, so tasks finish at once and every
status poll is a single round trip). The minimal sequences are what any correct client must send for the
same outcome; the ratio shows the overhead of this provider's safety checks (ownership, lock and
pending-change reads).
"""

from __future__ import annotations

import tempfile

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.vm_ops import CloneSlots, VmOperations
from providers.proxmox.vm_plan import plan
from tests.support.specs import vm_spec
from tools.simulator import TOKEN_ID, TOKEN_SECRET, ServedSimulator, seed

# Minimal call sequences, one entry per HTTP request.
MINIMAL = {
    "create": [
        "GET /cluster/resources (template, placement, free VMIDs)",
        "GET /cluster/nextid?vmid=N (confirm the VMID)",
        "POST /nodes/{n}/qemu/{tpl}/clone",
        "GET task status (clone)",
        "POST /nodes/{n}/qemu/{id}/config",
        "GET task status (config)",
        "POST status/start",
        "GET task status (start)",
    ],
    "read (no-op refresh)": [
        "GET /cluster/resources (where is it now)",
        "GET config",
        "GET pending (reboot required?)",
    ],
    "update (cores + tags)": [
        "GET /cluster/resources",
        "GET config (digest, MACs)",
        "POST config",
        "GET task status",
        "GET pending",
    ],
    "delete": [
        "GET /cluster/resources",
        "GET config (ownership)",
        "POST status/shutdown",
        "GET task status",
        "DELETE qemu/{id}",
        "GET task status",
        "GET /cluster/resources (confirm gone)",
    ],
}


def main() -> None:
    """Run each operation once and print round trips, the minimum and the ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        sim = ServedSimulator(tmp)
        try:
            seed(sim.pve)
            settings = ConnectionSettings(
                endpoint=sim.pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_bundle=sim.cafile
            )
            client = ProxmoxClient(settings, task_poll_interval=0.05)
            ops = VmOperations(client, clone_slots=CloneSlots(2), poll_interval=0.05)
            spec = vm_spec()
            new = vm_spec(marker=spec.marker, cpu={"cores": 4}, tags=["k8s", "control-plane", "bench"])
            measured: dict[str, int] = {}

            def measure(name: str, action: object) -> None:
                before = len(sim.pve.requests)
                action()  # type: ignore[operator]
                measured[name] = len(sim.pve.requests) - before

            holder: dict[str, int] = {}
            measure("create", lambda: holder.update(vmid=ops.create(spec).vmid))
            vmid = holder["vmid"]
            measure("read (no-op refresh)", lambda: ops.read(vmid, spec))
            change = plan(spec, new, current_node="pve1", current_vmid=vmid)
            measure("update (cores + tags)", lambda: ops.update(vmid, spec, new, change))
            measure("delete", lambda: ops.delete(vmid, new))
        finally:
            sim.stop()

    print(f"{'operation':<24}{'round trips':>12}{'minimal':>9}{'ratio':>8}")
    for name, minimal in MINIMAL.items():
        got = measured[name]
        print(f"{name:<24}{got:>12}{len(minimal):>9}{got / len(minimal):>8.2f}")
    total = sum(measured.values())
    floor = sum(len(m) for m in MINIMAL.values())
    print(f"{'all four':<24}{total:>12}{floor:>9}{total / floor:>8.2f}")


if __name__ == "__main__":
    main()
