"""The shared Kubernetes helpers: how a chart is installed (source, installer) and what skips awaiting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components.k8s import ChartInstall, cluster_provider, install_chart
from components.platform import SKIP_AWAIT_KINDS, drop_empty_data, skip_workload_await
from config import load_stack_config
from config.versions import DEFAULT_VERSIONS
from tests.config.support import apply, good
from tools.recording import Recording, record

CILIUM = DEFAULT_VERSIONS.cilium


def chart_of(install: ChartInstall) -> Recording:
    def program() -> None:
        provider = cluster_provider("k8s", cluster_identifier="mgmt", kubeconfig="apiVersion: v1")
        install_chart(
            "cilium",
            chart=CILIUM,
            release_name="cilium",
            namespace="kube-system",
            values={"a": 1},
            install=install,
            opts=pulumi.ResourceOptions(provider=provider),
        )

    return record(program)


def test_repository_release_by_default() -> None:
    (release,) = chart_of(ChartInstall()).of_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "cilium" and release.inputs["version"] == CILIUM.version
    assert release.inputs["repositoryOpts"]["repo"] == CILIUM.repo


def test_a_local_directory_is_templated_from_the_unpacked_chart(tmp_path: Path) -> None:
    unpacked = tmp_path / f"cilium-{CILIUM.version}"
    unpacked.mkdir()
    (unpacked / "Chart.yaml").write_text("name: cilium\n")
    (chart,) = chart_of(ChartInstall(template=True, directory=str(tmp_path))).of_type("kubernetes:helm.sh/v4:Chart")
    assert chart.inputs["chart"] == str(unpacked)
    assert "version" not in chart.inputs and "repositoryOpts" not in chart.inputs


def test_skip_await_reaches_the_chart() -> None:
    (chart,) = chart_of(ChartInstall(template=True, skip_await=True)).of_type("kubernetes:helm.sh/v4:Chart")
    assert chart.inputs["skipAwait"] is True
    (release,) = chart_of(ChartInstall(skip_await=True)).of_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["skipAwait"] is True and release.inputs["waitForJobs"] is False


def test_a_chart_missing_from_the_directory_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"charts.directory: no unpacked chart cilium"):
        ChartInstall(directory=str(tmp_path)).chart_path(CILIUM)


def test_from_stack_follows_render_installer_source_and_await() -> None:
    assert ChartInstall.from_stack(load_stack_config(good())) == ChartInstall()
    raw = good()
    apply(raw, "charts.installer", "chart")
    apply(raw, "managementCluster.awaitReadiness", False)
    assert ChartInstall.from_stack(load_stack_config(raw)) == ChartInstall(template=True, skip_await=True)
    rendering = load_stack_config({**good(), "localRender": "out"})
    assert ChartInstall.from_stack(rendering).template is True


def transform(type_: str, props: dict[str, Any], custom: bool = True) -> pulumi.ResourceTransformResult | None:
    args = pulumi.ResourceTransformArgs(
        custom=custom, type_=type_, name="x", props=props, opts=pulumi.ResourceOptions()
    )
    return skip_workload_await(args)


@pytest.mark.parametrize("kind", sorted(SKIP_AWAIT_KINDS))
def test_workloads_are_annotated_to_skip_the_readiness_wait(kind: str) -> None:
    result = transform(f"kubernetes:{kind}", {"metadata": {"name": "a", "annotations": {"keep": "me"}}})
    assert result is not None
    metadata: Any = result.props["metadata"]
    assert metadata["annotations"] == {"keep": "me", "pulumi.com/skipAwait": "true"}


@pytest.mark.parametrize(
    "type_", ["kubernetes:core/v1:Namespace", "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"]
)
def test_namespaces_and_crds_are_still_awaited(type_: str) -> None:
    assert transform(type_, {"metadata": {"name": "a"}}) is None
    assert transform("kubernetes:apps/v1:Deployment", {}, custom=False) is None


def test_the_programs_own_waits_are_dropped() -> None:
    result = transform(
        "kubernetes:operator.cluster.x-k8s.io/v1alpha2:CoreProvider",
        {"metadata": {"name": "cluster-api", "annotations": {"pulumi.com/waitFor": "condition=ProviderInstalled"}}},
    )
    assert result is not None
    metadata: Any = result.props["metadata"]
    assert metadata["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_a_custom_resource_without_a_wait_is_left_alone() -> None:
    assert transform("kubernetes:cluster.x-k8s.io/v1beta2:Cluster", {"metadata": {"name": "t"}}) is None


def test_an_empty_secret_data_map_is_dropped_and_a_full_one_kept() -> None:
    args = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:core/v1:Secret",
        name="ca",
        props={"metadata": {"name": "ca"}, "type": "Opaque", "data": {}},
        opts=pulumi.ResourceOptions(),
    )
    result = asyncio.run(drop_empty_data(args))
    assert result is not None and dict(result.props) == {"metadata": {"name": "ca"}, "type": "Opaque"}
    full = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:core/v1:Secret",
        name="s",
        props={"data": {"k": "dg=="}},
        opts=pulumi.ResourceOptions(),
    )
    assert asyncio.run(drop_empty_data(full)) is None


def test_an_empty_data_map_the_engine_sends_as_a_secret_is_dropped() -> None:
    # What a Chart v4 child looks like in the transform: the provider marked the Secret's data secret.
    wrapped = rpc.wrap_rpc_secret({})
    args = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:core/v1:Secret",
        name="etcd-ca",
        props={"metadata": {"name": "etcd-ca"}, "data": wrapped},
        opts=pulumi.ResourceOptions(),
    )
    result = asyncio.run(drop_empty_data(args))
    assert result is not None and "data" not in result.props
    kept = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:core/v1:Secret",
        name="s",
        props={"data": rpc.wrap_rpc_secret({"k": "dg=="})},
        opts=pulumi.ResourceOptions(),
    )
    assert asyncio.run(drop_empty_data(kept)) is None


def test_an_empty_data_map_that_arrives_as_a_secret_output_is_dropped() -> None:
    # With the real engine, the SDK hands a chart child's secret data to the transform as an Output.
    async def transformed(data: object) -> pulumi.ResourceTransformResult | None:
        args = pulumi.ResourceTransformArgs(
            custom=True,
            type_="kubernetes:core/v1:Secret",
            name="etcd-ca",
            props={"metadata": {"name": "etcd-ca"}, "data": pulumi.Output.secret(data)},
            opts=pulumi.ResourceOptions(),
        )
        return await drop_empty_data(args)

    result = asyncio.run(transformed({}))
    assert result is not None and "data" not in result.props
    assert asyncio.run(transformed({"ca.crt": "Y2E="})) is None
