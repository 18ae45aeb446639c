"""tools.kube_api against real etcd, kube-apiserver and kube-controller-manager binaries, on loopback only.

The binaries come from scripts/kube-toolchain.sh (built on demand and cached; the tests skip with the
build's error when it cannot run here). Each behaviour the module promises is checked by its effect:
RBAC by a refused user, the controller manager by a namespace deletion that completes, the disabled
webhook plugins by a write that a dead webhook would otherwise block.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tools import kube_api
from tools.kube_api import (
    CRD_PRELOAD_PATTERNS,
    CrdsNotFoundError,
    KubeApiError,
    LocalKubeApi,
    ProcessRecord,
    is_ours,
    preload_crds,
    recorded_processes,
    strays,
)

REPO = Path(__file__).resolve().parents[2]

# A cold build of the binaries (first run on a machine) takes ~10 minutes on 2 cores.
pytestmark = [pytest.mark.kube, pytest.mark.timeout(1800)]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {timeout:g}s")


def gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture
def core(kube: LocalKubeApi) -> Iterator[Any]:
    api_client = kube.api_client()
    yield client.CoreV1Api(api_client)
    api_client.close()


def make_namespace(core: Any, name: str, labels: dict[str, str] | None = None) -> None:
    core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})


# ---------------------------------------------------------------------------------------------
# Serving, authentication, authorization


def test_readyz_is_ok_and_version_is_stamped(kube: LocalKubeApi) -> None:
    cert = (str(kube.pki.path("admin.crt")), str(kube.pki.path("admin.key")))  # type: ignore[union-attr]
    ready = requests.get(f"{kube.url}/readyz", cert=cert, verify=str(kube.ca_file), timeout=10)
    assert (ready.status_code, ready.text) == (200, "ok")
    version = requests.get(f"{kube.url}/version", cert=cert, verify=str(kube.ca_file), timeout=10).json()
    assert (version["gitVersion"], version["major"], version["minor"]) == ("v1.34.4", "1", "34")


def test_binds_the_loopback_address_it_was_given(kube: LocalKubeApi) -> None:
    assert kube.url.startswith("https://127.0.0.1:")
    for record in kube.processes():
        listen = [a for a in record.argv if a.startswith(("--bind-address=", "--listen-client-urls="))]
        assert listen and all("127.0.0.1" in a and "0.0.0.0" not in a for a in listen), record.argv


def test_unauthenticated_request_is_refused(kube: LocalKubeApi) -> None:
    for path in ("/api/v1/namespaces", "/readyz"):
        answer = requests.get(f"{kube.url}{path}", verify=str(kube.ca_file), timeout=10)
        assert answer.status_code == 401, (path, answer.status_code, answer.text)


def test_non_admin_user_is_forbidden_until_rbac_grants_it(kube: LocalKubeApi) -> None:
    cert, key = kube.client_certificate("jane", groups=["developers"])
    url = f"{kube.url}/api/v1/namespaces"
    refused = requests.get(url, cert=(str(cert), str(key)), verify=str(kube.ca_file), timeout=10)
    assert refused.status_code == 403
    assert 'User "jane" cannot list resource "namespaces"' in refused.json()["message"]

    # The refusal is RBAC's decision, not a blanket deny: a role that grants the list lets jane in.
    # (Not the built-in `view`: it is aggregated by a controller that does not run here.)
    api_client = kube.api_client()
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "namespace-reader"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "jane-namespace-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "namespace-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}],
        }
    )
    try:
        wait_for(
            lambda: (
                requests.get(url, cert=(str(cert), str(key)), verify=str(kube.ca_file), timeout=10).status_code == 200
            ),
            30,
            "jane allowed after the binding",
        )
    finally:
        rbac.delete_cluster_role_binding("jane-namespace-reader")
        rbac.delete_cluster_role("namespace-reader")
        api_client.close()


# ---------------------------------------------------------------------------------------------
# Controllers


def test_namespace_deletion_completes(core: Any) -> None:
    make_namespace(core, "doomed")
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "content"}, "data": {"k": "v"}})
    core.delete_namespace("doomed")
    # Without the namespace controller the namespace stays Terminating with its finalizer forever.
    wait_for(lambda: gone(lambda: core.read_namespace("doomed")), 90, "namespace doomed deleted")


def test_a_resource_quota_gets_its_status_from_the_controller(core: Any) -> None:
    # The kubernetes provider waits until status.hard is set; without the controller it times out.
    make_namespace(core, "quota")
    core.create_namespaced_resource_quota(
        "quota", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "5", "requests.cpu": "2"}}}
    )

    def filled() -> bool:
        status = core.read_namespaced_resource_quota("q", "quota").status
        return bool(status and status.hard == {"pods": "5", "requests.cpu": "2"} and status.used is not None)

    wait_for(filled, 60, "ResourceQuota status filled")


def test_foreground_deletion_completes_through_the_garbage_collector(core: Any) -> None:
    make_namespace(core, "gc")
    owner = core.create_namespaced_config_map("gc", {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        "gc",
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                        "blockOwnerDeletion": True,
                    }
                ],
            }
        },
    )
    # The Pulumi provider deletes with foreground propagation and waits for the object to go.
    core.delete_namespaced_config_map("owner", "gc", propagation_policy="Foreground")
    wait_for(lambda: gone(lambda: core.read_namespaced_config_map("owner", "gc")), 60, "owner deleted")
    assert gone(lambda: core.read_namespaced_config_map("dependent", "gc"))


# ---------------------------------------------------------------------------------------------
# Admission


def webhook_configurations(namespace_label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A validating and a mutating webhook for ConfigMaps in labelled namespaces, served by nothing."""
    hook = {
        "clientConfig": {"url": "https://127.0.0.1:1/nowhere"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {namespace_label: "true"}},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 2,
    }
    validating = {"metadata": {"name": "dead-validator"}, "webhooks": [{**hook, "name": "validate.nowhere.test"}]}
    mutating = {"metadata": {"name": "dead-mutator"}, "webhooks": [{**hook, "name": "mutate.nowhere.test"}]}
    return validating, mutating


def create_behind_dead_webhooks(api: LocalKubeApi, namespace: str) -> None:
    api_client = api.api_client()
    try:
        admission = client.AdmissionregistrationV1Api(api_client)
        core = client.CoreV1Api(api_client)
        validating, mutating = webhook_configurations("dead-webhooks")
        admission.create_validating_webhook_configuration(validating)
        admission.create_mutating_webhook_configuration(mutating)
        make_namespace(core, namespace, {"dead-webhooks": "true"})
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "written"}})
        assert core.read_namespaced_config_map("written", namespace).metadata.name == "written"
    finally:
        api_client.close()


def test_webhook_pointing_nowhere_does_not_block_writes(kube: LocalKubeApi) -> None:
    assert set(kube_api.DISABLED_ADMISSION_PLUGINS) == {"MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"}
    create_behind_dead_webhooks(kube, "behind-dead-webhooks")


def test_same_write_fails_when_the_webhook_plugins_are_on(tmp_path: Path, kube_bin: Path) -> None:
    # The control for the test above: it proves the webhooks would be called and would block.
    with (
        LocalKubeApi(tmp_path, bin_dir=kube_bin, controllers=False, disabled_admission_plugins=()) as api,
        pytest.raises(ApiException) as refused,
    ):
        create_behind_dead_webhooks(api, "behind-live-plugins")
    assert "failed calling webhook" in str(refused.value.body)


def test_privileged_containers_are_allowed(core: Any) -> None:
    make_namespace(core, "privileged")
    # No service-account controller runs here, so the default account the Pod uses is made by hand.
    core.create_namespaced_service_account("privileged", {"metadata": {"name": "default"}})
    pod = {
        "metadata": {"name": "agent"},
        "spec": {
            "containers": [
                {"name": "agent", "image": "registry.invalid/agent:1", "securityContext": {"privileged": True}}
            ]
        },
    }
    created = core.create_namespaced_pod("privileged", pod)
    assert created.spec.containers[0].security_context.privileged is True


# ---------------------------------------------------------------------------------------------
# CRD preload


def expected_crd_names(directory: Path) -> set[str]:
    names = set()
    for pattern in CRD_PRELOAD_PATTERNS:
        for file in directory.glob(pattern):
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    names.add(doc["metadata"]["name"])
    return names


def test_crd_preload_makes_every_chosen_crd_established(kube: LocalKubeApi) -> None:
    try:
        directory = kube_api.crds_dir()
        files = kube_api.crd_files()
    except CrdsNotFoundError as exc:
        pytest.skip(f"reference CRDs absent: {exc}")
    for pattern in CRD_PRELOAD_PATTERNS:
        assert any(f.match(pattern) for f in files), f"no {pattern} in {directory}"
    assert kube.kubeconfig is not None
    names = preload_crds(kube.kubeconfig, progress=lambda _: None)
    assert set(names) == expected_crd_names(directory)
    # Server-side apply is idempotent: a second preload (a restarted local stack) succeeds.
    assert preload_crds(kube.kubeconfig, progress=lambda _: None) == names

    api_client = kube.api_client()
    try:
        api = client.ApiextensionsV1Api(api_client)
        for name in names:
            crd = api.read_custom_resource_definition(name)
            conditions = {c.type: c.status for c in crd.status.conditions}
            assert conditions.get("Established") == "True", (name, conditions)
            assert kube_api.CRD_FIELD_MANAGER in {m.manager for m in crd.metadata.managed_fields}
    finally:
        api_client.close()


def test_crd_preload_names_the_variable_when_the_directory_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kube_api.CRDS_ENV, str(tmp_path / "absent"))
    with pytest.raises(CrdsNotFoundError, match="PLATFORM_CRDS_DIR"):
        kube_api.crd_files()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrdsNotFoundError, match=r"capi_\*\.yaml"):
        kube_api.crd_files(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Lifecycle


def alive(pid: int) -> bool:
    stat = kube_api._proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def test_stop_leaves_no_process(tmp_path: Path, kube_bin: Path) -> None:
    api = LocalKubeApi(tmp_path, bin_dir=kube_bin).start()
    records = api.processes()
    assert [r.name for r in records] == ["etcd", "kube-apiserver", "kube-controller-manager"]
    assert all(is_ours(r) for r in records)
    api.stop()
    assert not [r for r in records if alive(r.pid)]
    assert strays(tmp_path) == []
    assert recorded_processes(tmp_path) == []


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.kube_api", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli_env(kube_bin: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env[kube_api.BIN_ENV] = str(kube_bin)
    return env


def test_command_line_start_status_env_stop(tmp_path: Path, cli_env: dict[str, str]) -> None:
    where = ["--dir", str(tmp_path / "state"), "--host", "127.0.0.1"]
    kubeconfig = tmp_path / "cfg" / "admin.kubeconfig"
    started = cli("start", *where, "--kubeconfig", str(kubeconfig), env=cli_env)
    try:
        assert started.returncode == 0, started.stderr
        # One line on stdout (the kubeconfig); the phases with their timings on stderr.
        assert started.stdout == f"{kubeconfig}\n"
        for phase in ("PKI generated", "etcd healthy", "kube-apiserver ready", "kube-controller-manager healthy"):
            assert phase in started.stderr
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"

        status = cli("status", *where, env=cli_env)
        assert status.returncode == 0 and status.stdout.startswith("running https://127.0.0.1:")
        env = cli("env", *where, env=cli_env)
        assert env.stdout == f"export KUBECONFIG={kubeconfig}\n"

        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == status.stdout.split()[1]
    finally:
        stopped = cli("stop", *where, env=cli_env)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    status = cli("status", *where, env=cli_env)
    assert (status.returncode, status.stdout.splitlines()[0]) == (3, "stopped")
    refused = cli("preload-crds", *where, env=cli_env)
    assert refused.returncode == 1 and "not running" in refused.stderr


def test_killed_start_is_cleaned_up_by_the_next_start(tmp_path: Path, kube_bin: Path, cli_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.kube_api", "start", "--dir", str(state), "--host", "127.0.0.1"],
        cwd=REPO,
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Kill the start while it waits for the apiserver: etcd and kube-apiserver are already running.
        wait_for(
            lambda: [r.name for r in recorded_processes(state)] == ["etcd", "kube-apiserver"],
            60,
            "the start recorded etcd and kube-apiserver",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = recorded_processes(state)
    assert all(is_ours(r) for r in left), "the killed run's processes should outlive it"

    with LocalKubeApi(state, bin_dir=kube_bin, progress=lambda _: None) as api:
        wait_for(lambda: not any(alive(r.pid) for r in left), 10, "the previous run's processes gone")
        assert {r.pid for r in api.processes()}.isdisjoint({r.pid for r in left})
        assert requests.get(f"{api.url}/readyz", cert=admin_cert(api), verify=str(api.ca_file), timeout=10).ok
    assert strays(state) == []


def admin_cert(api: LocalKubeApi) -> tuple[str, str]:
    assert api.pki is not None
    return str(api.pki.path("admin.crt")), str(api.pki.path("admin.key"))


def test_start_stops_a_stray_whose_record_was_lost(tmp_path: Path) -> None:
    # An "etcd" (argv[0]) with an argument inside the state dir, and no state file at all.
    stray = subprocess.Popen(
        ["etcd", "-c", "import time; time.sleep(120)", f"--data-dir={tmp_path}/etcd-data"], executable=sys.executable
    )
    try:
        wait_for(lambda: strays(tmp_path) == [stray.pid], 10, "the stray is recognised")
        assert kube_api.stop(tmp_path) == [f"stray pid {stray.pid}"]
        assert stray.wait(10) == -signal.SIGTERM
    finally:
        if stray.poll() is None:
            stray.kill()


def test_stop_never_kills_a_process_that_is_not_ours(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        stat = kube_api._proc_stat(bystander.pid)
        assert stat is not None
        # The PID was reused by another program (other argv), or by a later process (other start time).
        records = [
            ProcessRecord("kube-apiserver", bystander.pid, ["kube-apiserver", "--x"], stat[1], ""),
            ProcessRecord("etcd", bystander.pid, ["sleep", "120"], stat[1] + 1, ""),
        ]
        (tmp_path / "state.json").write_text(json.dumps({"processes": [r.__dict__ for r in records]}))
        assert not any(is_ours(r) for r in records)
        assert kube_api.stop(tmp_path) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def fake_bin(tmp_path: Path, kube_bin: Path, apiserver_code: str) -> Path:
    """A bin dir with the real etcd and a Python stand-in for kube-apiserver (no child processes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-controller-manager"):
        (bin_dir / name).symlink_to(kube_bin / name)
    fake = bin_dir / "kube-apiserver"
    fake.write_text(f"#!{sys.executable}\nimport sys, time\n{apiserver_code}\n")
    fake.chmod(0o755)
    return bin_dir


def test_apiserver_that_exits_fails_the_start_with_its_log_and_leaves_nothing(tmp_path: Path, kube_bin: Path) -> None:
    bin_dir = fake_bin(tmp_path, kube_bin, 'print("fake apiserver: boom", file=sys.stderr)\nsys.exit(7)')
    state = tmp_path / "state"
    with pytest.raises(KubeApiError, match=r"exited with 7[\s\S]*fake apiserver: boom"):
        LocalKubeApi(state, bin_dir=bin_dir, progress=lambda _: None).start()
    assert recorded_processes(state) == []
    assert strays(state) == []


def test_apiserver_never_ready_fails_within_the_bound(tmp_path: Path, kube_bin: Path) -> None:
    bin_dir = fake_bin(tmp_path, kube_bin, 'print("fake apiserver: hanging", flush=True)\ntime.sleep(300)')
    state = tmp_path / "state"
    started = time.monotonic()
    with pytest.raises(KubeApiError, match=r"not ready \(/readyz\) after 3s[\s\S]*fake apiserver: hanging"):
        LocalKubeApi(state, bin_dir=bin_dir, apiserver_timeout=3, progress=lambda _: None).start()
    assert time.monotonic() - started < 30
    assert strays(state) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::1", "localhost"])
def test_refuses_anything_but_ipv4_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(KubeApiError):
        LocalKubeApi(tmp_path, host=host)
