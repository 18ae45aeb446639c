"""The local Proxmox simulator: seeding, an in-thread server for tests, and a daemon for the local stack.

fakepve (AGPL) is a development and test dependency only: the Pulumi program never imports it. The
integration tests, the benchmarks and the ``local`` stack all use ``seed`` so they run against the same
cluster shape: nodes pve1 and pve2, one cloud-init template per node, an API token.

Command line (used by the Makefile):

    python -m tools.simulator start   # serve in the background on 127.0.0.2:8006, wait until ready
    python -m tools.simulator stop
    python -m tools.simulator status
"""

from __future__ import annotations

from typing import Any

TOKEN_ID = "pulumi@pve!iac"
TOKEN_SECRET = "local-only-token-secret"
TEMPLATE_TAGS = "k8s;ubuntu-24-04"
GIB = 1024**3
# The Linux bridges every simulated node has (the stack files and tests use vmbr0 and vmbr1).
HOST_BRIDGES = ("vmbr0", "vmbr1")


def serve_host_bridges(pve: Any, bridges: tuple[str, ...] = HOST_BRIDGES) -> None:
    """Answer ``GET /nodes/{node}/network`` from ``pve.host_bridges`` ({node: [bridge, ...]}).

    fakepve does not model host networks: its generic answer for that listing is one made-up bridge, the
    same for every node. The provider checks declared bridges against this listing before it clones, so
    the simulator keeps a per-node list that tests can change (``pve.host_bridges['pve2'].remove(...)``).
    """
    pve.host_bridges = {}
    generic = pve.synthesise

    async def synthesise(match: Any, method: str, info: Any, user: Any, values: dict[str, Any]) -> Any:
        if method == "GET" and match.template == "/nodes/{node}/network":
            names = pve.host_bridges.get(values.get("node"), [])
            return [
                {
                    "iface": name,
                    "type": "bridge",
                    "active": 1,
                    "autostart": 1,
                    "method": "manual",
                    "families": ["inet"],
                    "priority": index,
                }
                for index, name in enumerate(names)
            ]
        return await generic(match, method, info, user, values)

    pve.synthesise = synthesise
    pve.host_bridges.update({node: list(bridges) for node in pve.nodes})


def seed(pve: Any, *, nodes: tuple[str, ...] = ("pve1", "pve2"), storage_gib: int = 2048) -> dict[str, int]:
    """Add nodes, one cloud-init template per node (VMID 9000 + index) and the API token; return templates."""
    pve.apitokens[TOKEN_ID] = TOKEN_SECRET
    for node in nodes:
        pve.add_node(node)
    serve_host_bridges(pve)
    lvm = pve.storages["local-lvm"]
    lvm["avail"] = storage_gib * GIB
    templates = {}
    for index, node in enumerate(nodes):
        vmid = 9000 + index
        _template(pve, vmid, f"ubuntu-2404-{node}", node, "local-lvm", TEMPLATE_TAGS, index)
        templates[node] = vmid
    return templates


def _template(pve: Any, vmid: int, name: str, node: str, storage: str, tags: str, index: int) -> None:
    """A cloud-init template VM with a 10 GiB boot disk on ``storage``, as the seeds use it."""
    volume = f"base-{vmid}-disk-0"
    pve.storages[storage].setdefault("volumes", {})[volume] = {
        "content": "images",
        "format": "raw",
        "size": 10 * GIB,
        "vmid": vmid,
        "ctime": 0,
    }
    pve.add_vm(
        vmid,
        name,
        node=node,
        template=True,
        config={
            "scsihw": "virtio-scsi-single",
            "scsi0": f"{storage}:{volume},size=10G",
            "ide2": f"{storage}:vm-{vmid}-cloudinit,media=cdrom",
            "net0": f"virtio=BC:24:11:00:{index // 256:02X}:{index % 256:02X},bridge=vmbr0,firewall=1",
            "boot": "order=scsi0",
            "agent": "1",
            "serial0": "socket",
            "tags": tags,
            "template": 1,
        },
    )


STORAGE_TYPES = {"nfs": "nfs", "rbd": "rbd", "dir": "dir", "lvm": "lvm", "lvmthin": "lvmthin", "zfspool": "zfspool"}


def seed_stack(pve: Any, cfg: Any, token_id: str, token_secret: str, storage_gib: int = 4096) -> dict[str, int]:
    """Seed the simulator with a stack's shape: its nodes, their storages, its templates and its token.

    ``cfg`` is the stack's ``StackConfig``. Templates found by tags get one template VM (on the first
    node) carrying those tags; templates with a VMID get that VMID on their node; templates built from
    a cloud image get nothing (the program builds them). Storages unknown to the simulator are added
    with the type a ``storage[]`` entry gives them (``dir`` otherwise), able to hold disks and backups.
    Returns the template VMIDs by template name.
    """
    pve.apitokens[token_id] = token_secret
    for node in cfg.nodes:
        pve.add_node(node.name)
    types = {sc.storage: sc.type for sc in cfg.storage}
    shared = {sc.storage for sc in cfg.storage if sc.shared or sc.type in ("nfs", "rbd")}
    for sid in sorted({s for node in cfg.nodes for s in node.storages}):
        if sid not in pve.storages:
            kind = STORAGE_TYPES.get(types.get(sid, "dir"), "dir")
            pve.storages[sid] = {
                "type": kind,
                "active": 1,
                "content": "images,rootdir,backup,iso,snippets",
                "files": set(),
                "path": f"/mnt/pve/{sid}",
                **({"shared": 1} if sid in shared else {}),
            }
        pve.storages[sid]["avail"] = storage_gib * GIB
    first = cfg.nodes[0]
    disk_storage = next((s for s in first.storages if s in ("local-lvm", *types)), first.storages[0])
    templates: dict[str, int] = {}
    for index, (name, tpl) in enumerate(sorted(cfg.templates.items())):
        if tpl.cloud_image_url is not None:
            continue
        vmid = tpl.vmid if tpl.vmid is not None else 9000 + index
        node = tpl.node or first.name
        _template(pve, vmid, name, node, disk_storage, ";".join(tpl.tags) or "template", index)
        templates[name] = vmid
    return templates


class ServedSimulator:
    """A fakepve on a private event loop in a daemon thread, bound to loopback with its own certificate."""

    def __init__(self, directory: str, *, host: str = "127.0.0.1", time_scale: float = 0.0) -> None:
        import asyncio
        import threading

        from fakepve.certs import make_cert

        from tools.simulator_access import LocalPve

        self.cafile, keyfile, _ = make_cert(directory, hosts=(host,))
        self.pve = LocalPve(user="root@pam", password="local-only", host=host, port=0)
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


STATE_DIR = ".local/simulator"
DEFAULT_HOST = "127.0.0.2"
DEFAULT_PORT = 8006


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def _paths(root: str) -> dict[str, str]:
    import os

    base = os.path.join(root, STATE_DIR)
    return {
        "dir": base,
        "ca": os.path.join(base, "ca.pem"),
        "key": os.path.join(base, "key.pem"),
        "pid": os.path.join(base, "pid"),
        "log": os.path.join(base, "simulator.log"),
        "url": os.path.join(base, "url"),
    }


def serve(root: str, host: str, port: int) -> None:
    """Run the simulator in the foreground until killed (the daemon body)."""
    import asyncio
    import os

    from fakepve.certs import make_cert

    from tools.simulator_access import LocalPve

    paths = _paths(root)
    os.makedirs(paths["dir"], exist_ok=True)
    cert, key, _ = make_cert(paths["dir"], hosts=(host,))
    os.replace(cert, paths["ca"])
    os.replace(key, paths["key"])

    async def main() -> None:
        pve = LocalPve(user="root@pam", password=os.environ.get("PVE_PASS", "local-only"), host=host, port=port)
        pve.time_scale = float(os.environ.get("SIMULATOR_TIME_SCALE", "0"))
        seed(pve)
        await pve.start(paths["ca"], paths["key"])
        with open(paths["url"], "w") as handle:
            handle.write(pve.url)
        await asyncio.Event().wait()

    asyncio.run(main())


def start(root: str, host: str, port: int, timeout: float = 30.0) -> str:
    """Start the daemon unless it runs; wait until it answers; return its URL."""
    import os
    import subprocess
    import sys
    import time

    import requests

    paths = _paths(root)
    if running(root):
        return _read(paths["url"])
    os.makedirs(paths["dir"], exist_ok=True)
    for stale in ("url", "ca"):
        if os.path.exists(paths[stale]):
            os.remove(paths[stale])
    with open(paths["log"], "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.simulator", "serve", "--host", host, "--port", str(port)],
            cwd=root,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    with open(paths["pid"], "w") as handle:
        handle.write(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"simulator exited early; see {paths['log']}")
        if os.path.exists(paths["url"]) and os.path.exists(paths["ca"]):
            url = _read(paths["url"])
            try:
                requests.get(url + "/api2/json/version", verify=paths["ca"], timeout=2)
                return url
            except requests.RequestException:
                pass
        time.sleep(0.2)
    stop(root)
    raise SystemExit(f"simulator did not answer within {timeout:g}s; see {paths['log']}")


def running(root: str) -> bool:
    """True if the daemon recorded in the pid file is alive."""
    import os

    paths = _paths(root)
    try:
        pid = int(_read(paths["pid"]))
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def stop(root: str) -> None:
    """Stop the daemon if it runs."""
    import os
    import signal
    import time

    paths = _paths(root)
    if not running(root):
        return
    pid = int(_read(paths["pid"]))
    os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not running(root):
            break
        time.sleep(0.1)
    os.remove(paths["pid"])


def main() -> None:
    """Command line: start | stop | status | serve."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m tools.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--host", default=os.environ.get("SIMULATOR_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIMULATOR_PORT", DEFAULT_PORT)))
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("the simulator binds loopback addresses (127.0.0.0/8) only")
    root = os.getcwd()
    if args.command == "serve":
        serve(root, args.host, args.port)
    elif args.command == "start":
        print(start(root, args.host, args.port))
    elif args.command == "stop":
        stop(root)
    else:
        print("running" if running(root) else "stopped")


if __name__ == "__main__":
    main()
