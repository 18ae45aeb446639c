"""Preflight of versions against the compatibility matrix; the defaults are the pins."""

from __future__ import annotations

import pytest

from config import COMPATIBILITY_MATRIX, DEFAULT_VERSION_SET, DEFAULT_VERSIONS, VersionsConfig
from tests.config.support import Case, Change, assert_reported, good, problems_of

CASES: list[Case] = [
    ("version-without-v", [("versions.kubernetes", "1.34.8")], ("versions.kubernetes",), "leading 'v'"),
    ("capmox-mismatch", [("versions.capmox", "v0.8.1")], ("versions.capmox",), "does not pair with Cluster API v1.12"),
    (
        "management-kubernetes-too-old",
        [("versions.kubernetes", "v1.32.4")],
        ("versions.kubernetes",),
        "Kamaji 26.8.2-edge needs v1.33 or newer",
    ),
    ("cilium-not-chained", [("versions.cilium", "1.17.3")], ("versions.cilium",), "not chained with Kube-OVN v1.16"),
    ("capi-unknown", [("versions.capiCore", "v1.13.0")], ("versions.capiCore",), "supported: v1.12.x, v1.11.x"),
    (
        "kamaji-unknown",
        [("versions.kamajiImageTag", "25.12.5-edge")],
        ("versions.kamajiImageTag",),
        "not in the compatibility matrix",
    ),
    ("cert-manager-old", [("versions.certManager", "v1.14.0")], ("versions.certManager",), "v1.18.x"),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_versions_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


def test_versions_defaults_are_the_pins_the_components_install() -> None:
    # One source of truth: the stack's versions key defaults to exactly what config.versions pins.
    pins = DEFAULT_VERSIONS.as_dict()
    for name, value in VersionsConfig().model_dump().items():
        pinned = pins[name]
        assert value == (pinned.split("@", 1)[1] if "@" in pinned else pinned), name
    assert VersionsConfig().model_dump(by_alias=True) == dict(DEFAULT_VERSION_SET)


def test_default_versions_are_inside_the_matrix() -> None:
    assert DEFAULT_VERSIONS.capi_core.startswith(tuple(COMPATIBILITY_MATRIX.cluster_api))
    raw = good()
    raw["versions"] = dict(DEFAULT_VERSION_SET)
    assert problems_of(raw) == []
