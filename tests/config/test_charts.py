"""Preflight of charts: a directory source must hold every chart the stack installs, at its pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import load_stack_config
from config.charts import ChartsConfig
from tests.config.support import Case, Change, apply, assert_reported, good, problems_of

CASES: list[Case] = [
    ("directory-without-path", [("charts", {"source": "directory"})], ("charts.directory",), "required with"),
    (
        "path-without-directory-source",
        [("charts", {"directory": "charts"})],
        ("charts.directory",),
        "only used with source: directory",
    ),
    (
        "directory-missing",
        [("charts", {"source": "directory", "directory": "/nonexistent/charts"})],
        ("charts.directory",),
        "is not a directory",
    ),
    ("unknown-installer", [("charts.installer", "kustomize")], ("charts.installer",), "'release' or 'chart'"),
]
"""One bad configuration per row (see ``tests.config.support.Case``)."""


@pytest.mark.parametrize(("changes", "paths", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_charts_config_is_reported_at_its_key_path(
    changes: list[Change], paths: tuple[str, ...], fragment: str
) -> None:
    assert_reported(changes, paths, fragment)


def unpack(root: Path, names: list[str]) -> None:
    """Fake unpacked charts: a Chart.yaml per ``<chart>-<version>`` directory."""
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "Chart.yaml").write_text(f"name: {name}\n")


def test_a_directory_needs_every_installed_chart_at_its_pinned_version(tmp_path: Path) -> None:
    raw = good()
    apply(raw, "charts", {"source": "directory", "directory": str(tmp_path), "installer": "chart"})
    charts = load_stack_config({**good(), "localRender": "x"}).installed_charts()
    names = [f"{c.chart}-{c.version}" for c in charts]
    assert {"cilium-1.19.5", "kube-ovn-v1.16.2", "cert-manager-v1.20.2", "kamaji-0.0.0+latest"} <= set(names)
    unpack(tmp_path, names[1:])
    (problem,) = problems_of(raw)
    assert problem.path == "charts.directory" and names[0] in problem.message
    unpack(tmp_path, names[:1])
    cfg = load_stack_config(raw)
    assert cfg.charts.chart_dir(charts[0]) == tmp_path / names[0]


def test_a_cluster_brought_in_needs_no_cni_chart() -> None:
    raw = good()
    raw["managementCluster"] = {"external": True}
    names = {c.chart for c in load_stack_config(raw).installed_charts()}
    assert "cilium" not in names and "kube-ovn" not in names and "cert-manager" in names


def test_a_version_override_moves_the_directory_it_looks_for() -> None:
    raw = good()
    apply(raw, "versions.cilium", "1.19.6")
    charts = {c.chart: c.version for c in load_stack_config(raw).installed_charts()}
    assert charts["cilium"] == "1.19.6"


def test_defaults_are_repositories_and_helm_releases() -> None:
    charts = ChartsConfig()
    assert (charts.source, charts.installer, charts.directory) == ("repository", "release", None)
