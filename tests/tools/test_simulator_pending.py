"""``tools.simulator_pending``: the simulator reads a VM's config as Proxmox does, over verified TLS.

A change that cannot be hotplugged into a running VM (memory here) goes pending; Proxmox's ``GET
.../config`` answers with it applied unless ``current=1``, and ``/pending`` still lists it. The e2e
drift test depends on this: after ``up`` repairs a memory change by hand, a refresh must not report
the old value again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from tools.simulator import TOKEN_ID, TOKEN_SECRET, ServedSimulator, seed

pytestmark = pytest.mark.integration

VMID = 4242
CONFIG = f"/nodes/pve1/qemu/{VMID}/config"


@pytest.fixture
def client(tmp_path: Any) -> Iterator[ProxmoxClient]:
    served = ServedSimulator(str(tmp_path))
    try:
        seed(served.pve)
        served.pve.add_vm(VMID, "running", node="pve1", status="running", config={"memory": "4096", "cores": 2})
        settings = ConnectionSettings(
            endpoint=served.pve.url,
            token_id=TOKEN_ID,
            token_secret=TOKEN_SECRET,
            ca_bundle=served.cafile,
            http_timeout=30,
        )
        yield ProxmoxClient(settings)
    finally:
        served.stop()


def test_a_pending_change_is_read_applied_and_current_1_reads_the_running_value(client: ProxmoxClient) -> None:
    client.put(CONFIG, memory=1024, delete="cores")
    pending = {row["key"]: row for row in client.get(f"/nodes/pve1/qemu/{VMID}/pending")}
    assert str(pending["memory"]["pending"]) == "1024", "memory did not go pending: nothing to read applied"
    applied = client.get(CONFIG)
    assert applied["memory"] == "1024"
    assert "cores" not in applied  # a pending delete reads as deleted
    current = client.get(CONFIG, current=1)
    assert current["memory"] == "4096"
    assert current["cores"] == 2
    assert applied["digest"] == current["digest"]


def test_without_pending_changes_both_reads_agree(client: ProxmoxClient) -> None:
    assert client.get(CONFIG) == client.get(CONFIG, current=1)


def test_the_mixin_replaces_only_the_config_read() -> None:
    """A same-named helper would silently replace one of fakepve's many mixins' methods."""
    from fakepve.server import FakePve

    from tools.simulator_pending import PendingAppliedConfig

    mine = {name for name in vars(PendingAppliedConfig) if not name.startswith("__")}
    assert mine & set(dir(FakePve)) == {"_config_get"}
