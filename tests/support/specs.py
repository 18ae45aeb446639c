"""Builders for ProxmoxVm inputs used across tests."""

from __future__ import annotations

import uuid
from typing import Any

from providers.proxmox.vm_spec import VmSpec

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5Zm9ydGVzdHNvbmx5 test@example"


def vm_inputs(name: str = "cp-1", **overrides: Any) -> dict[str, Any]:
    """A realistic control-plane VM declaration against the seeded simulator."""
    base: dict[str, Any] = {
        "name": name,
        "owner": f"proxmox-k8s-platform/test/{name}",
        "marker": uuid.uuid4().hex,
        "allowed_nodes": ["pve1", "pve2"],
        "template_tags": ["k8s", "ubuntu-24-04"],
        "vmid_range": {"start": 1000, "end": 1999},
        "tags": ["k8s", "control-plane"],
        "cpu": {"cores": 2, "sockets": 1, "type": "x86-64-v2-AES"},
        "memory_mib": 4096,
        "disks": {"scsi0": {"size_gib": 10}},
        "nics": {"net0": {"bridge": "vmbr0", "vlan": 10}},
        "cloud_init": {
            "user": "ubuntu",
            "ssh_keys": [SSH_KEY],
            "ip_configs": {"net0": {"ipv4": "10.10.0.11/24", "gateway4": "10.10.0.1"}},
            "dns_servers": ["10.10.0.1"],
            "search_domain": "lab.example",
        },
        "wait_for_ip": {"family": "ipv4", "timeout_s": 5},
        "timeouts": {"clone": 60, "config": 30, "start": 30, "shutdown": 30, "delete": 60},
    }
    base.update(overrides)
    return base


def vm_spec(name: str = "cp-1", **overrides: Any) -> VmSpec:
    """A validated VmSpec from ``vm_inputs``."""
    return VmSpec.from_inputs(vm_inputs(name, **overrides))
