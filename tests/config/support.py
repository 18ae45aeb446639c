"""The stack configuration the config tests start from, and helpers to break it one key at a time."""

from __future__ import annotations

import copy
import re
from typing import Any

from config import ConfigProblem, StackConfigError, format_problems, load_stack_config

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXJrZXlmb3J0ZXN0aW5nb25seQ platform@example"

# A realistic stack: three nodes with local, Ceph and PBS storage, a built and a tagged template,
# a management cluster on VMs, two tenants on their own VLANs, backups.
GOOD: dict[str, Any] = {
    "proxmox": {
        "endpoint": "https://pve1.example.com:8006",
        "tokenId": "pulumi@pve!platform",
        "clusterName": "pve-lab",
    },
    "nodes": [
        {"name": "pve1", "storages": ["local-lvm", "ceph-vm", "pbs"]},
        {"name": "pve2", "storages": ["local-lvm", "ceph-vm", "pbs"]},
        {"name": "pve3", "storages": ["local-lvm", "ceph-vm", "pbs"], "weight": 2},
    ],
    "templates": {
        "ubuntu-2404-kube": {
            "cloudImageUrl": "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
            "vmid": 9000,
            "node": "pve1",
            "storage": "ceph-vm",
        },
        "ubuntu-2404-tagged": {"tags": ["ubuntu-2404", "k8s-v1.34"]},
    },
    "networks": {
        "management": {
            "bridge": "vmbr0",
            "cidr": "10.10.10.0/24",
            "gateway": "10.10.10.1",
            "dnsServers": ["10.10.10.1"],
        },
        "storage": {"bridge": "vmbr1", "vlan": 30, "cidr": "10.10.30.0/24", "mtu": 9000},
    },
    "managementCluster": {
        "controlPlanes": {"count": 3, "cores": 4, "memoryMiB": 8192, "diskGiB": 60},
        "workers": {"count": 3},
        "ipRange": {"start": "10.10.10.20", "end": "10.10.10.39"},
        "controlPlaneEndpoint": "10.10.10.10",
        "sshPublicKeys": [SSH_KEY],
    },
    "storage": [
        {"storage": "ceph-vm", "storageClass": "ceph", "ssd": True, "default": True, "diskIOPS": 4000},
        {"storage": "local-lvm", "storageClass": "local", "reclaimPolicy": "Retain"},
    ],
    "kamaji": {"loadBalancer": {"ipRange": {"start": "10.10.10.200", "end": "10.10.10.220"}}},
    "tenants": [
        {
            "name": "team-a",
            "workerPools": [{"name": "general", "count": 3, "cores": 4, "memoryMiB": 8192}],
            "podCidr": "10.200.0.0/16",
            "serviceCidr": "10.201.0.0/16",
            "network": {
                "bridge": "vmbr0",
                "vlan": 110,
                "cidr": "10.110.0.0/24",
                "gateway": "10.110.0.1",
                "ipRange": {"start": "10.110.0.100", "end": "10.110.0.150"},
                "dnsServers": ["10.110.0.1"],
            },
            "quota": {"cpu": 8, "memoryGiB": 32, "storageGiB": 200, "pods": 50},
        },
        {
            "name": "team-b",
            "kubernetesVersion": "v1.33.5",
            "controlPlaneReplicas": 3,
            "workerPools": [
                {"name": "small", "count": 2},
                {"name": "pinned", "count": 1, "template": "ubuntu-2404-tagged", "allowedNodes": ["pve2"]},
            ],
            "podCidr": "10.210.0.0/16",
            "serviceCidr": "10.211.0.0/16",
            "network": {
                "bridge": "vmbr0",
                "vlan": 120,
                "cidr": "10.120.0.0/24",
                "gateway": "10.120.0.1",
                "ipRange": {"start": "10.120.0.100", "end": "10.120.0.150"},
                "dnsServers": ["10.120.0.1"],
            },
            "storageClass": "local",
            "vmidRange": {"start": 300000, "end": 300099},
        },
    ],
    "operations": {"backups": {"storage": "pbs", "schedule": "sun 01:30"}},
}

DELETE = object()

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def apply(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE, remove) the value at a YAML key path like ``tenants[1].network.vlan``."""
    parts: list[str | int] = [name if name else int(index) for name, index in _SEGMENT.findall(path)]
    node: Any = raw
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value


def problems_of(raw: Any) -> list[ConfigProblem]:
    try:
        load_stack_config(raw)
    except StackConfigError as exc:
        return list(exc.problems)
    return []


Change = tuple[str, Any]
Case = tuple[str, list[Change], tuple[str, ...], str]
"""One bad configuration: a name, the changes to GOOD, the exact key path(s) reported, a message fragment."""


def assert_reported(changes: list[Change], paths: tuple[str, ...], fragment: str) -> None:
    """Apply ``changes`` to GOOD and check that exactly ``paths`` are reported, each naming ``fragment``."""
    raw = good()
    for path, value in changes:
        apply(raw, path, value)
    problems = problems_of(raw)
    assert [p.path for p in problems] == list(paths), format_problems(problems)
    assert all(fragment in p.message for p in problems), format_problems(problems)
