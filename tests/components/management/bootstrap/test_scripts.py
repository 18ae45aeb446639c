"""The bootstrap scripts: rendering, quoting, shellcheck, and their behaviour against fake kubeadm/kubectl."""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from components.management.bootstrap import BOOTSTRAP_DIR, SCRIPTS, render_script, script_parameters
from components.management.bootstrap.kubeadm import (
    JoinCredentials,
)
from tests.components.management.test_cluster import CERT_KEY, TOKEN, _embedded
from tests.support.tools import venv_tool

# ---------------------------------------------------------------------------------------------
# Scripts: rendering, shellcheck, behaviour against fake kubeadm/kubectl

SAMPLE_PARAMS: dict[str, dict[str, str]] = {
    "prepare-node.sh": {
        "NODE_NAME": "n1",
        "NODE_ROLE": "control-plane",
        "KUBERNETES_VERSION": "v1.34.8",
        "AUDIT_POLICY": "x",
    },
    "kubeadm-init.sh": {
        "NODE_NAME": "n1",
        "KUBEADM_CONFIG": "kind: InitConfiguration",
        "KUBE_VIP_INIT_MANIFEST": "path: /etc/kubernetes/super-admin.conf",
        "KUBE_VIP_MANIFEST": "path: /etc/kubernetes/admin.conf",
    },
    "join-credentials.sh": {"CLUSTER_NAME": "mgmt", "TOKEN_TTL": "2h", "CERTIFICATE_KEY": "true"},
    "kubeadm-join.sh": {
        "NODE_NAME": "n2",
        "NODE_ROLE": "control-plane",
        "KUBEADM_CONFIG": "kind: JoinConfiguration\ntoken: it's 'quoted' $HOME `x`",
        "KUBE_VIP_MANIFEST": "kube-vip",
    },
}


def test_every_script_declares_what_the_component_passes() -> None:
    assert {p.name for p in BOOTSTRAP_DIR.glob("*.sh")} == {*SCRIPTS, "common.sh"}
    for name, params in SAMPLE_PARAMS.items():
        declared = script_parameters(name)
        assert declared.required <= set(params), name
        assert set(params) <= declared.allowed, name
    assert script_parameters("kubeadm-join.sh").optional >= {"KUBE_VIP_MANIFEST", "K8S_DIR"}


def test_render_script_refuses_missing_unknown_and_nul_parameters() -> None:
    with pytest.raises(ValueError, match="missing required parameters \\['KUBEADM_CONFIG'\\]"):
        render_script("kubeadm-join.sh", {"NODE_NAME": "n", "NODE_ROLE": "worker"})
    with pytest.raises(ValueError, match="undeclared parameters \\['TYPO'\\]"):
        render_script("join-credentials.sh", {**SAMPLE_PARAMS["join-credentials.sh"], "TYPO": "x"})
    with pytest.raises(ValueError, match="NUL"):
        render_script("join-credentials.sh", {**SAMPLE_PARAMS["join-credentials.sh"], "TOKEN_TTL": "2h\0"})
    with pytest.raises(ValueError, match="unknown bootstrap script"):
        render_script("rm-rf.sh", {})


def test_rendered_parameters_survive_shell_quoting() -> None:
    script = render_script("kubeadm-join.sh", SAMPLE_PARAMS["kubeadm-join.sh"])
    assert _embedded(script, "KUBEADM_CONFIG") == SAMPLE_PARAMS["kubeadm-join.sh"]["KUBEADM_CONFIG"]


@pytest.mark.parametrize("name", sorted(SAMPLE_PARAMS))
def test_rendered_scripts_parse_with_bash(name: str) -> None:
    script = render_script(name, SAMPLE_PARAMS[name])
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", sorted(BOOTSTRAP_DIR.glob("*.sh")), ids=lambda p: p.name)
def test_scripts_are_shellcheck_clean(path: Path) -> None:
    result = subprocess.run([venv_tool("shellcheck"), "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", sorted(SAMPLE_PARAMS))
def test_rendered_scripts_are_shellcheck_clean(name: str) -> None:
    script = render_script(name, SAMPLE_PARAMS[name])
    result = subprocess.run(
        [venv_tool("shellcheck"), "--shell=bash", "-"], input=script, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


FAKE_KUBEADM = """#!/usr/bin/env bash
echo "kubeadm $*" >>"$FAKE_CALLS"
case "$1 $2" in
  "init --config")
    cp "$K8S_DIR/manifests/kube-vip.yaml" "$FAKE_DIR/kube-vip-during-init.yaml"
    touch "$K8S_DIR/admin.conf" ;;
  "join --config") cp "$3" "$FAKE_DIR/join-config-seen.yaml"; touch "$K8S_DIR/kubelet.conf" ;;
  "token create") echo "abcdef.0123456789abcdef" ;;
  "certs certificate-key") echo "c0ffee0000000000000000000000000000000000000000000000000000000000" ;;
esac
exit "${FAKE_KUBEADM_RC:-0}"
"""
FAKE_KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >>"$FAKE_CALLS"
exit "${FAKE_KUBECTL_RC:-0}"
"""


@dataclass
class Node:
    """A scratch node: K8S_DIR, a log dir and fake kubeadm/kubectl that record their calls."""

    root: Path

    @property
    def k8s(self) -> Path:
        return self.root / "kubernetes"

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, name: str, params: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
        script = render_script(name, params)
        environment = {
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "K8S_DIR": str(self.k8s),
            "BOOTSTRAP_LOG_DIR": str(self.root / "log"),
            "FAKE_CALLS": str(self.root / "calls"),
            "FAKE_DIR": str(self.root),
            "API_WAIT_ATTEMPTS": "1",
            **env,
        }
        return subprocess.run(["bash", "-s"], input=script, text=True, capture_output=True, env=environment)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kubeadm", FAKE_KUBEADM), ("kubectl", FAKE_KUBECTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "kubernetes").mkdir()
    (tmp_path / "log").mkdir()
    return Node(tmp_path)


def test_init_runs_once_and_switches_kube_vip_to_admin_conf(node: Node) -> None:
    params = SAMPLE_PARAMS["kubeadm-init.sh"]
    first = node.run("kubeadm-init.sh", params)
    assert first.returncode == 0, first.stderr
    assert [c for c in node.calls() if c.startswith("kubeadm")] == [
        f"kubeadm init --config {node.k8s}/bootstrap/kubeadm-init.yaml"
    ]
    assert (node.root / "kube-vip-during-init.yaml").read_text().strip() == params["KUBE_VIP_INIT_MANIFEST"]
    assert (node.k8s / "manifests/kube-vip.yaml").read_text().strip() == params["KUBE_VIP_MANIFEST"]
    assert (node.root / "log/kubeadm-init.log").stat().st_mode & 0o077 == 0

    second = node.run("kubeadm-init.sh", params)
    assert second.returncode == 0, second.stderr
    assert "already initialised" in second.stderr
    assert [c for c in node.calls() if c.startswith("kubeadm")] == [
        f"kubeadm init --config {node.k8s}/bootstrap/kubeadm-init.yaml"
    ]


def test_init_on_a_half_initialised_node_fails_with_advice_and_never_resets(node: Node) -> None:
    (node.k8s / "admin.conf").touch()
    result = node.run("kubeadm-init.sh", SAMPLE_PARAMS["kubeadm-init.sh"], FAKE_KUBECTL_RC="1")
    assert result.returncode == 1
    assert "kubeadm reset -f" in result.stderr
    assert not any(c.startswith("kubeadm") for c in node.calls())


def test_failed_init_reports_without_the_join_token(node: Node) -> None:
    (node.root / "bin/kubeadm").write_text(
        "#!/usr/bin/env bash\necho 'kubeadm join 10.10.10.10:6443 --token abcdef.0123456789abcdef'\n"
        "echo 'error execution phase wait-control-plane'\nexit 1\n"
    )
    result = node.run("kubeadm-init.sh", SAMPLE_PARAMS["kubeadm-init.sh"])
    assert result.returncode == 1
    assert "wait-control-plane" in result.stderr
    assert TOKEN not in result.stderr and TOKEN not in result.stdout


def test_join_runs_once_removes_the_token_file_and_adds_kube_vip_on_control_planes(node: Node) -> None:
    params = SAMPLE_PARAMS["kubeadm-join.sh"]
    first = node.run("kubeadm-join.sh", params)
    assert first.returncode == 0, first.stderr
    assert node.calls() == [f"kubeadm join --config {node.k8s}/bootstrap/kubeadm-join.yaml"]
    assert (node.root / "join-config-seen.yaml").read_text().strip() == params["KUBEADM_CONFIG"]
    assert not (node.k8s / "bootstrap/kubeadm-join.yaml").exists()
    assert (node.k8s / "manifests/kube-vip.yaml").read_text().strip() == "kube-vip"

    second = node.run("kubeadm-join.sh", params)
    assert second.returncode == 0 and "already joined" in second.stderr
    assert len(node.calls()) == 1


def test_worker_join_gets_no_kube_vip_and_a_failed_join_keeps_no_token(node: Node) -> None:
    params = {**SAMPLE_PARAMS["kubeadm-join.sh"], "NODE_ROLE": "worker"}
    del params["KUBE_VIP_MANIFEST"]
    failed = node.run("kubeadm-join.sh", params, FAKE_KUBEADM_RC="1")
    assert failed.returncode == 1 and "kubeadm join failed" in failed.stderr
    assert not (node.k8s / "bootstrap/kubeadm-join.yaml").exists()
    ok = node.run("kubeadm-join.sh", params)
    assert ok.returncode == 0, ok.stderr
    assert not (node.k8s / "manifests/kube-vip.yaml").exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_join_credentials_print_what_the_component_parses(node: Node) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (node.k8s / "pki").mkdir()
    (node.k8s / "pki/ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (node.k8s / "admin.conf").touch()
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    result = node.run("join-credentials.sh", SAMPLE_PARAMS["join-credentials.sh"])
    assert result.returncode == 0, result.stderr
    creds = JoinCredentials.parse(result.stdout)
    assert creds.token == TOKEN
    assert creds.ca_cert_hash == "sha256:" + hashlib.sha256(spki).hexdigest()
    assert creds.certificate_key == CERT_KEY
    assert any(c.startswith("kubeadm init phase upload-certs --upload-certs") for c in node.calls())

    without = node.run("join-credentials.sh", {**SAMPLE_PARAMS["join-credentials.sh"], "CERTIFICATE_KEY": "false"})
    assert JoinCredentials.parse(without.stdout).certificate_key is None


RENDERED_SHA256 = {
    "prepare-node.sh": "e1bea1522e8e777e2ffd763dfd92c767bc6277a358ec1fd0b15289f305f7fe54",
    "kubeadm-init.sh": "aca26671eeee8e9dd505d5ebd183fd4e76c45de86fa6c36632cafd84373fb332",
    "join-credentials.sh": "fdc83b6995b5197ffb3daee3816586a4eb674aec084a82a9781e23ef24695782",
    "kubeadm-join.sh": "e6d8ed17333d94e6af107bb1105f8bce4552a2063f465da94fcd0c4e45759fbb",
}
"""sha256 of each script rendered with every declared parameter set to ``value-<name>``.

A rendered script is the input of a bootstrap command on every existing management cluster: any change
to it re-runs that step there. Change a script on purpose, then update its hash here and say in the
commit that existing clusters re-run it.
"""


@pytest.mark.parametrize("name", sorted(RENDERED_SHA256))
def test_rendered_scripts_are_byte_for_byte_what_existing_clusters_ran(name: str) -> None:
    params = {key: f"value-{key.lower()}" for key in sorted(script_parameters(name).allowed)}
    digest = hashlib.sha256(render_script(name, params).encode()).hexdigest()
    assert digest == RENDERED_SHA256[name], f"{name} renders differently: existing clusters would re-run it"
