"""scripts/pulumi-toolchain.sh with the kubernetes provider plugin: found offline, and Helm says Kubernetes 1.34.

The decisive test renders a local chart whose ``kubeVersion`` constraint Helm's unstamped default
(Kubernetes v1.20) fails, through the real CLI, the built plugin and the pinned Python SDK, in render
mode (no cluster). The plugin is built on demand (cached) and the tests skip with the reason if the
build cannot run here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "pulumi-toolchain.sh"
PLUGIN_VERSION = "4.25.0"
# The Pulumi CLI and the plugin take ~30 minutes to build cold on 2 cores.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

CHART = {
    "Chart.yaml": 'apiVersion: v2\nname: kube-version-probe\nversion: 0.1.0\nkubeVersion: ">=1.25.0-0"\n',
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-probe\n"
        "data:\n  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    ),
}


def toolchain(pulumi_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PULUMI_HOME=str(pulumi_home))
    env.pop("PULUMI_TOOLCHAIN_NO_AMBIENT", None)
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=3300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bin dir, PULUMI_HOME with the plugin registered); skip with the reason if it cannot be built."""
    home = tmp_path_factory.mktemp("pulumi-home")
    proc = toolchain(home, "--install-plugins")
    if proc.returncode != 0:
        pytest.skip(f"the Pulumi toolchain could not be built: {proc.stderr.strip()[-800:]}")
    bin_dir = Path(proc.stdout.strip())
    plugin = home / "plugins" / f"resource-kubernetes-v{PLUGIN_VERSION}" / "pulumi-resource-kubernetes"
    if not plugin.exists():
        versions = bin_dir.parent / "VERSIONS"
        why = versions.read_text() if versions.exists() else proc.stderr
        pytest.skip(f"the kubernetes plugin was not built: {why.strip()[-800:]}")
    return bin_dir, home


def test_stdout_is_one_line_and_the_plugin_is_registered_not_on_path(installed: tuple[Path, Path]) -> None:
    bin_dir, home = installed
    started = time.monotonic()
    again = toolchain(home, "--install-plugins")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{bin_dir}\n"
    assert time.monotonic() - started < 10
    assert "installed pulumi-resource-kubernetes" not in again.stderr, "an identical copy must not be reinstalled"
    # On PATH the CLI would use it with a warning on every run; registered, it finds it silently.
    assert not (bin_dir / "pulumi-resource-kubernetes").exists()
    listed = subprocess.run(
        [str(bin_dir / "pulumi"), "plugin", "ls", "--json"],
        env=dict(os.environ, PULUMI_HOME=str(home), PULUMI_SKIP_UPDATE_CHECK="true"),
        capture_output=True,
        text=True,
        check=True,
    )
    plugins = {(p["kind"], p["name"], p["version"]) for p in json.loads(listed.stdout)}
    assert ("resource", "kubernetes", PLUGIN_VERSION) in plugins


def ambient_install(bin_dir: Path, where: Path) -> Path:
    """A copy of the CLI and language host in a directory of its own, as an ordinary install would be."""
    where.mkdir()
    for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        try:
            os.link(bin_dir / name, where / name)  # not a symlink: the script resolves those
        except OSError:
            shutil.copy2(bin_dir / name, where / name)
    return where


@pytest.mark.parametrize("plugin_installed", [True, False], ids=["with-plugin", "without-plugin"])
def test_an_installed_cli_and_plugin_are_used_instead_of_the_build(
    installed: tuple[Path, Path], tmp_path: Path, plugin_installed: bool
) -> None:
    bin_dir, home_with_plugin = installed
    ambient = ambient_install(bin_dir, tmp_path / "ambient")
    pulumi_home = home_with_plugin if plugin_installed else tmp_path / "empty-home"
    env = dict(
        os.environ,
        PATH=f"{ambient}:{os.environ['PATH']}",
        # HOME moves away from a real ~/.pulumi; the cache root stays where the build is.
        HOME=str(tmp_path),
        PULUMI_HOME=str(pulumi_home),
        PULUMI_TOOLCHAIN_CACHE=str(bin_dir.parent.parent),
    )
    proc = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    # Without the plugin the ambient CLI is not enough: the complete, built toolchain is handed out.
    assert proc.stdout == f"{ambient if plugin_installed else bin_dir}\n", proc.stderr


def test_versions_records_the_plugin_ldflags_and_the_command_plugin_limit(installed: tuple[Path, Path]) -> None:
    versions = (installed[0].parent / "VERSIONS").read_text()
    assert "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" in versions
    assert "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34" in versions
    assert f"pulumi-resource-kubernetes v{PLUGIN_VERSION}" in versions
    assert "plugin command: NOT BUILT (known limit)" in versions


def test_sdk_pin_matches_the_plugin() -> None:
    pins = (REPO / "requirements.txt").read_text().splitlines()
    assert f"pulumi-kubernetes=={PLUGIN_VERSION}" in pins


def test_plugin_renders_a_chart_with_a_kube_version_constraint(installed: tuple[Path, Path], tmp_path: Path) -> None:
    bin_dir, home = installed
    chart = tmp_path / "chart"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    rendered = tmp_path / "rendered"
    project = tmp_path / "project"
    project.mkdir()
    (project / ".venv").symlink_to(REPO / ".venv")
    (project / "Pulumi.yaml").write_text(
        "name: kube-version-probe\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: .venv\n"
    )
    (project / "__main__.py").write_text(
        "import pulumi\nimport pulumi_kubernetes as k8s\n\n"
        f"provider = k8s.Provider('render', render_yaml_to_directory={str(rendered)!r})\n"
        "opts = pulumi.ResourceOptions(provider=provider)\n"
        f"k8s.helm.v4.Chart('probe-v4', chart={str(chart)!r}, namespace='probe', opts=opts)\n"
        f"local = k8s.helm.v3.LocalChartOpts(path={str(chart)!r}, namespace='probe')\n"
        "k8s.helm.v3.Chart('probe-v3', local, opts=opts)\n"
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "user-home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        # No ~/.kube/config: render mode must not find a cluster to ask.
        HOME=str(tmp_path / "user-home"),
        PULUMI_HOME=str(home),
        PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}",
        PULUMI_CONFIG_PASSPHRASE="render-test-only",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_DISABLE_REGISTRY_RESOLVE="true",
    )

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    assert pulumi("stack", "init", "render").returncode == 0
    up = pulumi("up", "--yes", "--skip-preview", "--stack", "render")
    output = up.stdout + up.stderr
    assert up.returncode == 0, output
    assert "from $PATH" not in output
    texts = "\n".join(f.read_text() for f in rendered.rglob("*.yaml"))
    # Helm's default capabilities, as the built plugin's ldflags set them, reached the templates.
    for release in ("probe-v4", "probe-v3"):
        assert f"name: {release}-probe" in texts, sorted(str(f) for f in rendered.rglob("*"))
    assert texts.count('kubeVersion: "v1.34.0"') + texts.count("kubeVersion: v1.34.0") == 2, texts
