"""Shared fixtures: a fakepve simulator on loopback over verified TLS, seeded like a small Proxmox cluster.

Tests mirror the source tree (the tests of ``providers/proxmox/client.py`` are in
``tests/providers/proxmox/test_client*.py``); the tier of a test is a marker, not a folder. Every test
that uses the simulator is marked ``integration`` here, so ``pytest -m "not integration"`` runs the
unit tier alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providers.proxmox.client import ProxmoxClient, RetryPolicy
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.vm_ops import CloneSlots, VmOperations
from tests.support.simulator import TOKEN_ID, TOKEN_SECRET, seed


@pytest.fixture
def pve(fakepve: Any) -> Any:
    """The simulator (fakepve's own fixture: 127.0.0.1, self-signed cert, time_scale 0), seeded."""
    seed(fakepve)
    return fakepve


@pytest.fixture
def settings(pve: Any, fakepve_cafile: str) -> ConnectionSettings:
    """Token auth with TLS verified against the simulator's certificate."""
    return ConnectionSettings(
        endpoint=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_bundle=fakepve_cafile, http_timeout=30
    )


FAST = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, lock_wait=5.0)


@pytest.fixture
def client(settings: ConnectionSettings) -> Iterator[ProxmoxClient]:
    """A client with short backoff so fault tests run quickly."""
    yield ProxmoxClient(settings, retry=FAST, task_poll_interval=0.05)


@pytest.fixture
def ops(client: ProxmoxClient) -> VmOperations:
    """VM operations with fast polling."""
    return VmOperations(client, clone_slots=CloneSlots(2), poll_interval=0.02)


SIMULATOR_FIXTURES = frozenset({"pve", "fakepve"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to the simulator as ``integration``."""
    for item in items:
        if SIMULATOR_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
