"""The base of every Proxmox dynamic provider: connection settings come from the stack config."""

from __future__ import annotations

from pulumi import dynamic

from providers.dynamic import runtime


class ProxmoxProvider(dynamic.ResourceProvider):
    """A stateless dynamic provider whose Proxmox connection is read in ``configure()``, never pickled."""

    def configure(self, req: dynamic.ConfigureRequest) -> None:
        """Read the connection from the stack config (PROXMOX_* environment variables are the fallback)."""
        settings, limit = runtime.settings_from_config(req.config.get)
        runtime.configure(settings, limit)
