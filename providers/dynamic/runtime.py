"""Per-process connection state of the dynamic providers, kept OUT of the pickled provider objects.

Pulumi pickles every dynamic provider instance into state (``__provider``). Anything on ``self`` ends up
there, so credentials, sessions and locks live here instead: ``configure()`` (called once per provider
process with the stack config) records the settings, and the first operation builds one shared,
thread-safe client.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionConfigError, ConnectionSettings
from providers.proxmox.vm_ops import CloneSlots

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
    if data.get("caBundle"):
        data["caBundle"] = ca_bundle_file(str(data["caBundle"]))
    secrets = {"tokenSecret": get(TOKEN_SECRET_KEY), "password": get(PASSWORD_KEY)}
    limit = int(data.get("maxConcurrentClonesPerNode", 2))
    return ConnectionSettings.from_mapping(data, secrets), limit


def ca_bundle_file(value: str) -> str:
    """A path to the CA bundle: PEM text is written to a private temp file, relative paths are made absolute.

    Relative paths are resolved against the working directory, which is the Pulumi project directory for
    both the program and the provider processes the engine starts.
    """
    if value.lstrip().startswith("-----BEGIN"):
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"proxmox-ca-{os.getuid()}-{digest}.pem")
        if not os.path.exists(path):
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
            os.replace(path + ".tmp", path)
        return path
    return os.path.abspath(value)


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
