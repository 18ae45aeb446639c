"""Provider references pickled into state before the providers/ split still load, as the same classes."""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from providers import legacy
from tests.support.paths import REPO

LEGACY_PICKLES: dict[str, str] = {
    "providers.vm_resource.ProxmoxVmProvider": (
        "gASVMgAAAAAAAACMFXByb3ZpZGVycy52bV9yZXNvdXJjZZSMEVByb3htb3hWbVByb3ZpZGVylJOUKYGULg=="
    ),
    "providers.access_resource.ProxmoxRoleProvider": (
        "gASVOAAAAAAAAACMGXByb3ZpZGVycy5hY2Nlc3NfcmVzb3VyY2WUjBNQcm94bW94Um9sZVByb3ZpZGVylJOUKYGULg=="
    ),
    "providers.access_resource.ProxmoxUserProvider": (
        "gASVOAAAAAAAAACMGXByb3ZpZGVycy5hY2Nlc3NfcmVzb3VyY2WUjBNQcm94bW94VXNlclByb3ZpZGVylJOUKYGULg=="
    ),
    "providers.access_resource.ProxmoxApiTokenProvider": (
        "gASVPAAAAAAAAACMGXByb3ZpZGVycy5hY2Nlc3NfcmVzb3VyY2WUjBdQcm94bW94QXBpVG9rZW5Qcm92aWRlcpSTlCmBlC4="
    ),
    "providers.access_resource.ProxmoxAclProvider": (
        "gASVNwAAAAAAAACMGXByb3ZpZGVycy5hY2Nlc3NfcmVzb3VyY2WUjBJQcm94bW94QWNsUHJvdmlkZXKUk5QpgZQu"
    ),
    "providers.firewall_resource.ProxmoxSecurityGroupProvider": (
        "gASVQwAAAAAAAACMG3Byb3ZpZGVycy5maXJld2FsbF9yZXNvdXJjZZSMHFByb3htb3hTZWN1cml0eUdyb3VwUHJvdmlkZXKUk5QpgZQu"
    ),
    "providers.pool_resource.ProxmoxPoolProvider": (
        "gASVNgAAAAAAAACMF3Byb3ZpZGVycy5wb29sX3Jlc291cmNllIwTUHJveG1veFBvb2xQcm92aWRlcpSTlCmBlC4="
    ),
    "providers.template_resource.ProxmoxTemplateProvider": (
        "gASVPgAAAAAAAACMG3Byb3ZpZGVycy50ZW1wbGF0ZV9yZXNvdXJjZZSMF1Byb3htb3hUZW1wbGF0ZVByb3ZpZGVylJOUKYGULg=="
    ),
}
"""``__provider`` values exactly as the previous layout wrote them (``serialize_provider`` of each class)."""


@pytest.mark.parametrize("reference", sorted(LEGACY_PICKLES))
def test_a_pre_split_pickle_loads_the_current_class(reference: str) -> None:
    # A fresh interpreter, as the engine's provider host is: nothing imported beforehand.
    code = (
        "import base64, sys, dill\n"
        f"obj = dill.loads(base64.b64decode({LEGACY_PICKLES[reference]!r}))\n"
        "print(type(obj).__module__ + '.' + type(obj).__qualname__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    module, _, name = result.stdout.strip().rpartition(".")
    assert module == legacy.LEGACY_MODULES[reference.rpartition(".")[0]]
    assert name == reference.rpartition(".")[2]


@pytest.mark.parametrize("reference", sorted(LEGACY_PICKLES))
def test_old_and_new_paths_are_one_class_and_new_pickles_name_the_new_path(reference: str) -> None:
    old_module, _, name = reference.rpartition(".")
    old = getattr(importlib.import_module(old_module), name)
    new = getattr(importlib.import_module(legacy.LEGACY_MODULES[old_module]), name)
    assert old is new
    loaded = dill.loads(base64.b64decode(LEGACY_PICKLES[reference]))
    assert type(loaded) is new
    fresh = base64.b64decode(serialize_provider(new()))
    assert legacy.LEGACY_MODULES[old_module].encode() in fresh and old_module.encode() not in fresh


def test_every_legacy_module_maps_to_an_existing_module() -> None:
    for old, new in legacy.LEGACY_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old


def test_the_finder_ignores_every_other_name() -> None:
    finder = legacy.LegacyModuleFinder()
    assert finder.find_spec("providers.nonexistent", None) is None
    assert finder.find_spec("json", None) is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("providers.vm_resourcez")
