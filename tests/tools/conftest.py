"""Fixtures for the local control plane: its binaries (built on demand, cached) and a shared server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube import kube_binaries
from tools.kube_api import LocalKubeApi


@pytest.fixture(scope="session")
def kube_bin() -> Path:
    """Bin dir with etcd, kube-apiserver and kube-controller-manager."""
    return kube_binaries()


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory, kube_bin: Path) -> Iterator[LocalKubeApi]:
    """One running control plane for the tests of a module that only read or add objects."""
    with LocalKubeApi(tmp_path_factory.mktemp("kube"), bin_dir=kube_bin) as api:
        yield api
