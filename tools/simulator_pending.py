"""``GET .../qemu/{vmid}/config`` as Proxmox answers it: pending changes applied unless ``current=1``.

fakepve always answers with the current (running) config. Proxmox VE returns the config with pending
changes applied by default (``Qemu.pm`` ``vm_config``; ``current=1`` asks for the running values), and
the provider reads drift from that answer: a change that went pending on a running VM (memory without
hotplug) is what the VM will run after its next reboot, not drift. Without this, every refresh after
such a change would report the old value again.
"""

from __future__ import annotations

from typing import Any

from fakepve.routing import ok

TRUE = frozenset({"1", "true", "yes", "on"})


class PendingAppliedConfig:
    """A fakepve mixin: the VM config read with its pending changes applied, as Proxmox does."""

    async def _config_get(self, request: Any) -> Any:
        vm = self._vm(request, "VM.Audit")  # type: ignore[attr-defined]  # FakePve's, untyped
        cfg = dict(vm.config)
        if str(request.query.get("current", "0")).lower() not in TRUE:
            for key, value in vm.pending.items():
                if value is None:  # a pending delete
                    cfg.pop(key, None)
                else:
                    cfg[key] = value
        if "memory" in cfg:
            cfg["memory"] = str(cfg["memory"])  # PVE sends it as a string
        cfg["digest"] = vm.digest()
        return ok(cfg)
