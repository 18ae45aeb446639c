"""Module paths that states written before the providers/ split still name, mapped to today's modules.

Every dynamic resource keeps its provider in state as a dill pickle *by reference*: the module path and
class name, e.g. ``providers.vm_resource.ProxmoxVmProvider``. The engine unpickles those references on
every later ``preview``, ``up``, ``refresh`` and ``destroy`` (deletes and reads use the pickle stored in
the resource's outputs, which a no-op update never rewrites). So the old paths must keep importing the
same classes for as long as any state may name them. Instead of a shim file per old module, a
meta-path finder serves each old name as an alias of its new module: ``import providers.vm_resource``
returns the very module object of ``providers.dynamic.vm``, so classes stay identical (``isinstance``
and dill agree) and new pickles always name the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

LEGACY_MODULES: Final[dict[str, str]] = {
    # the dynamic resources (their provider classes are what states pickle)
    "providers.vm_resource": "providers.dynamic.vm",
    "providers.access_resource": "providers.dynamic.access",
    "providers.firewall_resource": "providers.dynamic.firewall",
    "providers.pool_resource": "providers.dynamic.pool",
    "providers.template_resource": "providers.dynamic.template",
    "providers.base": "providers.dynamic.base",
    "providers.runtime": "providers.dynamic.runtime",
    # the plain client modules (pickles never name them, but dill may follow a reference into them)
    "providers.client": "providers.proxmox.client",
    "providers.connection": "providers.proxmox.connection",
    "providers.errors": "providers.proxmox.errors",
    "providers.wire": "providers.proxmox.wire",
    "providers.vm_config": "providers.proxmox.vm_config",
    "providers.vm_ops": "providers.proxmox.vm_ops",
    "providers.vm_plan": "providers.proxmox.vm_plan",
    "providers.vm_spec": "providers.proxmox.vm_spec",
    "providers.privileges": "providers.proxmox.privileges",
    "providers.access_api": "providers.proxmox.access",
    "providers.firewall_api": "providers.proxmox.firewall",
    "providers.pool_api": "providers.proxmox.pools",
    "providers.template_api": "providers.proxmox.templates",
}
"""Old module path -> the module that holds its code now."""


class _AliasLoader(importlib.abc.Loader):
    """Loads an old module name by importing its new module and returning that same object."""

    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        """The new module itself, so that both names refer to one module object."""
        return importlib.import_module(self._target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module was executed when it was imported."""


class LegacyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of ``LEGACY_MODULES`` (and only those)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for an old module name; None for every other name."""
        new = LEGACY_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Register the finder once per interpreter (idempotent)."""
    if not any(isinstance(finder, LegacyModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(LegacyModuleFinder())
