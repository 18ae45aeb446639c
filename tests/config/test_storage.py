"""Preflight of storage: StorageClasses over Proxmox storages."""

from __future__ import annotations

import pytest

from config import load_stack_config, required_secret_keys
from tests.config.support import GOOD, Case, Change, apply, assert_reported, good

CASES: list[Case] = [
    ("csi-cache-mode", [("storage[0].cache", "unsafe")], ("storage[0].cache",), "must be one of"),
    (
        "storage-on-no-node",
        [("storage", [*GOOD["storage"], {"storage": "zfs-fast", "storageClass": "zfs"}])],
        ("storage[2].storage",),
        "not on any node",
    ),
    ("two-default-classes", [("storage[1].default", True)], ("storage[1].default",), "only one StorageClass"),
    ("duplicate-class-name", [("storage[0].storageClass", "local")], ("storage[1].storageClass",), "duplicate"),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_storage_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


def test_encrypted_storage_needs_the_passphrase_secret() -> None:
    raw = good()
    apply(raw, "storage[1].encrypted", True)
    assert "csiEncryptionPassphrase" in required_secret_keys(load_stack_config(raw))
