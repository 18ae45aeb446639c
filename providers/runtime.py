"""Per-process connection state of the dynamic providers, kept OUT of the pickled provider objects.

Pulumi pickles every dynamic provider instance into state (``__provider``). Anything on ``self`` ends up
there, so credentials, sessions and locks live here instead: ``configure()`` (called once per provider
process with the stack config) records the settings, and the first operation builds one shared,
thread-safe client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from providers.client import ProxmoxClient
from providers.connection import ConnectionConfigError, ConnectionSettings
from providers.vm_ops import CloneSlots

# Stack config keys read by configure() (in the program's namespace).
CONFIG_KEY = "proxmox"
TOKEN_SECRET_KEY = "proxmoxTokenSecret"
PASSWORD_KEY = "proxmoxPassword"

_lock = threading.Lock()
_settings: ConnectionSettings | None = None
_clone_limit = 2
_client: ProxmoxClient | None = None
_clone_slots: CloneSlots | None = None


def settings_from_config(get: Callable[[str], Any]) -> tuple[ConnectionSettings | None, int]:
    """Connection settings and the per-node clone limit from a config getter (None if not configured)."""
    raw = get(CONFIG_KEY)
    if raw in (None, ""):
        return None, 2
    data = json.loads(raw) if isinstance(raw, str) else dict(raw)
    secrets = {"tokenSecret": get(TOKEN_SECRET_KEY), "password": get(PASSWORD_KEY)}
    limit = int(data.get("maxConcurrentClonesPerNode", 2))
    return ConnectionSettings.from_mapping(data, secrets), limit


def configure(settings: ConnectionSettings | None, clone_limit: int = 2) -> None:
    """Record the connection for this process; later operations use it."""
    global _settings, _client, _clone_limit, _clone_slots
    with _lock:
        if settings != _settings or clone_limit != _clone_limit:
            _settings, _clone_limit = settings, clone_limit
            _client, _clone_slots = None, None


def client() -> tuple[ProxmoxClient, CloneSlots]:
    """The shared client and clone slots, built on first use."""
    global _client, _clone_slots
    with _lock:
        if _client is None:
            settings = _settings or ConnectionSettings.from_env()
            if settings is None:
                raise ConnectionConfigError(
                    f"the Proxmox connection is not configured: set the stack config key '{CONFIG_KEY}' "
                    f"(endpoint, tokenId, verifyTls, caBundle) and the secret '{TOKEN_SECRET_KEY}', "
                    "or PROXMOX_ENDPOINT / PROXMOX_TOKEN_ID / PROXMOX_TOKEN_SECRET for tests"
                )
            _client = ProxmoxClient(settings)
            _clone_slots = CloneSlots(_clone_limit)
        assert _clone_slots is not None
        return _client, _clone_slots
