"""The charts domain: where the pinned Helm charts come from and how they are installed.

``source: repository`` (the default) pulls each chart at its pinned version from the repository in
``config.versions``. ``source: directory`` takes ``<directory>/<chart>-<version>/`` instead: unpacked,
unmodified upstream charts kept beside the checkout, for machines without the chart repositories (the
local stack uses the pinned copies in ``../shared/charts``).

``installer: release`` (the default) installs each chart as a ``helm.v3.Release``: Helm itself runs the
hooks and waits. ``installer: chart`` uses ``helm.v4.Chart``: the chart is templated and every object is
a Pulumi resource applied with server-side apply (previewed, diffed and drift-checked one by one), but
Helm hooks are not run. Rendering (``localRender``) always templates.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from config.base import ConfigModel, Problems, join
from config.versions import ChartRef


class ChartsConfig(ConfigModel):
    """Where the pinned Helm charts come from, and whether Helm or Pulumi applies their objects."""

    source: Literal["repository", "directory"] = "repository"
    """repository: the pinned chart repositories; directory: unpacked charts under ``directory``."""
    directory: str | None = None
    """With source directory: a folder holding ``<chart>-<version>/`` for every chart the stack installs
    (relative paths are relative to the project directory)."""
    installer: Literal["release", "chart"] = "release"
    """release: helm.v3.Release (Helm runs hooks and waits); chart: helm.v4.Chart (each object a Pulumi
    resource applied with server-side apply; hooks are not run)."""

    def chart_dir(self, chart: ChartRef) -> Path | None:
        """The local directory of ``chart`` with source directory, else None."""
        if self.source != "directory" or self.directory is None:
            return None
        return Path(self.directory) / f"{chart.chart}-{chart.version}"


def check_charts(charts: ChartsConfig, needed: Iterable[ChartRef], out: Problems) -> None:
    """A directory source names an existing folder holding every chart the stack installs."""
    if charts.source != "directory":
        if charts.directory is not None:
            out.add("charts.directory", "only used with source: directory")
        return
    if charts.directory is None:
        out.add("charts.directory", "required with source: directory: the folder of unpacked charts")
        return
    root = Path(charts.directory)
    if not root.is_dir():
        out.add("charts.directory", f"{charts.directory!r} is not a directory (relative to the project directory)")
        return
    wanted = [f"{c.chart}-{c.version}" for c in needed]
    missing = [name for name in wanted if not (root / name / "Chart.yaml").is_file()]
    if missing:
        out.add(
            "charts.directory",
            f"{charts.directory!r} has no unpacked chart for {join(missing)} "
            "(each chart at its pinned version, as <chart>-<version>/Chart.yaml)",
        )
