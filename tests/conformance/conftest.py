"""Fixtures of the conformance tier: the CRD catalog and the objects the platform emits.

The CRD schemas live beside the checkout (``../shared/reference/crds``, or ``$PLATFORM_CRDS_DIR``);
tests that need them skip with a clear reason when they are absent. Core kinds are validated with the
schemas bundled in ``kubernetes_validate`` and never skip.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from config.versions import DEFAULT_VERSIONS
from tests.components.services.test_platform_services import build_platform
from tests.conformance.schemas import CrdCatalog, crds_dir
from tools.recording import Recording, record

KUBERNETES_VERSION = DEFAULT_VERSIONS.kubernetes
"""Kubernetes version the core kinds are validated against: the management cluster's."""

SKIP_REASON = (
    "../shared/reference/crds not found (set PLATFORM_CRDS_DIR): "
    "conformance schemas are only available beside the checkout"
)

VARIANTS = {
    "live-etcd-full": {"render": False, "postgres": False, "full": True},
    "render-postgres-minimal": {"render": True, "postgres": True, "full": False},
}
"""Platform variants whose emitted objects are validated (together they switch every option)."""


@pytest.fixture(scope="session")
def crd_path() -> Path:
    """The CRD directory, or skip."""
    path = crds_dir()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def catalog(crd_path: Path) -> CrdCatalog:
    """Every CRD version found in the CRD directory."""
    return CrdCatalog(crd_path)


@pytest.fixture(scope="session")
def recordings() -> dict[str, Recording]:
    """What each platform variant registers under mocks."""
    return {name: record(functools.partial(build_platform, **kw)) for name, kw in VARIANTS.items()}
