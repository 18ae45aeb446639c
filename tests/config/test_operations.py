"""Preflight of operations: backups."""

from __future__ import annotations

import pytest

from tests.config.support import Case, Change, assert_reported

CASES: list[Case] = [
    (
        "backup-storage-not-everywhere",
        [("nodes[2].storages", ["local-lvm", "ceph-vm"])],
        ("operations.backups.storage",),
        "not on pve3",
    ),
    (
        "backup-keeps-nothing",
        [("operations.backups.retention", {"keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0})],
        ("operations.backups.retention",),
        "keeps nothing",
    ),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_operations_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)
