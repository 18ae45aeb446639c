"""Seed a fakepve simulator with what the platform expects: nodes, templates, storages and a token.

Used by the integration tests and by the local stack's simulator launcher, so both run against the
same cluster shape.
"""

from __future__ import annotations

from typing import Any

TOKEN_ID = "pulumi@pve!iac"
TOKEN_SECRET = "local-only-token-secret"
TEMPLATE_TAGS = "k8s;ubuntu-24-04"
GIB = 1024**3


def seed(pve: Any, *, nodes: tuple[str, ...] = ("pve1", "pve2"), storage_gib: int = 2048) -> dict[str, int]:
    """Add nodes, one cloud-init template per node (VMID 9000 + index) and the API token; return templates."""
    pve.apitokens[TOKEN_ID] = TOKEN_SECRET
    for node in nodes:
        pve.add_node(node)
    lvm = pve.storages["local-lvm"]
    lvm["avail"] = storage_gib * GIB
    templates = {}
    for index, node in enumerate(nodes):
        vmid = 9000 + index
        volume = f"base-{vmid}-disk-0"
        lvm.setdefault("volumes", {})[volume] = {
            "content": "images",
            "format": "raw",
            "size": 10 * GIB,
            "vmid": vmid,
            "ctime": 0,
        }
        pve.add_vm(
            vmid,
            f"ubuntu-2404-{node}",
            node=node,
            template=True,
            config={
                "scsihw": "virtio-scsi-single",
                "scsi0": f"local-lvm:{volume},size=10G",
                "ide2": f"local-lvm:vm-{vmid}-cloudinit,media=cdrom",
                "net0": "virtio=BC:24:11:00:00:0" + str(index) + ",bridge=vmbr0,firewall=1",
                "boot": "order=scsi0",
                "agent": "1",
                "serial0": "socket",
                "tags": TEMPLATE_TAGS,
                "template": 1,
            },
        )
        templates[node] = vmid
    return templates


class ServedSimulator:
    """A fakepve on a private event loop in a daemon thread, bound to loopback with its own certificate."""

    def __init__(self, directory: str, *, host: str = "127.0.0.1", time_scale: float = 0.0) -> None:
        import asyncio
        import threading

        from fakepve.certs import make_cert
        from fakepve.server import FakePve

        self.cafile, keyfile, _ = make_cert(directory, hosts=(host,))
        self.pve = FakePve(user="root@pam", password="local-only", host=host, port=0)
        self.pve.time_scale = time_scale
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.pve.start(self.cafile, keyfile), self._loop).result(30)

    def stop(self) -> None:
        """Stop serving and end the loop thread."""
        import asyncio

        asyncio.run_coroutine_threadsafe(self.pve.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
