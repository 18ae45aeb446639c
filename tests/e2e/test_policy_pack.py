"""End to end with the real pulumi CLI: ``pulumi preview --policy-pack policy`` runs the Python policy pack.

The engine starts the pack through the language host's ``RunPlugin`` (tools/pulumi-language-python), in
the project's virtualenv (``runtime.options.virtualenv: ../.venv`` in policy/PulumiPolicy.yaml). The e2e
stack file is the local stack's configuration pointed at the simulator: the pack lets it through. The
same file with ``proxmox.verifyTls: false`` breaks the ``proxmox-tls-verified`` guardrail (only ``local``
may skip TLS verification): the preview fails and says why.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from policy.guardrails import PACK_NAME
from tests.e2e.conftest import STACK, Deployment
from tools.scratch import PROJECT, Cli

pytestmark = pytest.mark.e2e

PROXMOX_KEY = f"{PROJECT}:proxmox"


def preview_with_pack(d: Deployment) -> subprocess.CompletedProcess[str]:
    """``pulumi preview --policy-pack <copy>/policy``, told its stack as scripts/stack.sh tells it."""
    # The engine does not pass the stack name to a pack it runs through a language host; the pack
    # reads it from GUARDRAILS_STACK (scripts/stack.sh exports it the same way).
    env = {**d.cli.env, "GUARDRAILS_STACK": STACK, "GUARDRAILS_PROJECT_DIR": str(d.cli.cwd)}
    cli = Cli(d.cli.cwd, env, STACK, d.cli.transcript)
    return cli.run("preview", "--policy-pack", str(d.cli.cwd / "policy"), check=False)


@pytest.fixture(scope="module")
def deployed(deployment: Deployment) -> Deployment:
    """The stack deployed once: a first preview on an empty cluster cannot plan a chart whose objects
    are of a kind another chart installs in the same run (pulumi-kubernetes#3176, see README)."""
    deployment.cli.run("up", "--yes", "--skip-preview")
    return deployment


@pytest.fixture
def tls_off(deployed: Deployment) -> Iterator[None]:
    """The e2e stack file with ``proxmox.verifyTls: false`` (and no caBundle, which requires it) for one test."""
    path = deployed.cli.cwd / f"Pulumi.{STACK}.yaml"
    original = path.read_text()
    document = yaml.safe_load(original)
    proxmox = {k: v for k, v in document["config"][PROXMOX_KEY].items() if k != "caBundle"}
    document["config"][PROXMOX_KEY] = {**proxmox, "verifyTls": False}
    path.write_text(yaml.safe_dump(document))
    try:
        yield
    finally:
        path.write_text(original)


def test_pack_lets_the_local_configuration_through(deployed: Deployment) -> None:
    stack_file = yaml.safe_load(Path(deployed.cli.cwd, f"Pulumi.{STACK}.yaml").read_text())
    assert stack_file["config"][PROXMOX_KEY]["verifyTls"] is True
    proc = preview_with_pack(deployed)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"preview with the policy pack failed:\n{output}"
    assert PACK_NAME in output, f"the policy pack did not run:\n{output}"
    assert "mandatory" not in output.lower(), f"a guardrail reported a violation:\n{output}"


@pytest.mark.usefixtures("tls_off")
def test_pack_fails_the_preview_when_tls_verification_is_off(deployed: Deployment) -> None:
    proc = preview_with_pack(deployed)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"preview passed with verifyTls: false outside local:\n{output}"
    assert "proxmox-tls-verified" in output, output
    assert f"Pulumi.{STACK}.yaml: proxmox.verifyTls is false in stack '{STACK}'" in output, output
