"""Reading the config from the Pulumi engine (``config.reader``) and the secrets it needs (``config.secrets``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from config import load_stack_config, read_stack_config, read_stack_secrets, required_secret_keys
from tests.config.support import GOOD, good

PROJECT = "proxmox-k8s-platform"


@pytest.fixture
def stack_config() -> Iterator[dict[str, str]]:
    """A mutable Pulumi config map for PROJECT, restored afterwards."""
    values = {f"{PROJECT}:{key}": json.dumps(value) for key, value in GOOD.items()}
    values[f"{PROJECT}:proxmoxTokenSecret"] = "3f0a1f52-0000-4000-8000-000000000000"
    values[f"{PROJECT}:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----"
    token = runtime_config.CONFIG.set(values)  # the same dict, so a test's edits are visible
    yield values
    runtime_config.CONFIG.reset(token)


def test_read_stack_config_reads_every_domain_key(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:localRender"] = "rendered/local"
    cfg = read_stack_config(pulumi.Config(PROJECT))
    assert cfg == load_stack_config({**GOOD, "localRender": "rendered/local"})
    assert cfg.local_render == "rendered/local"


def test_read_stack_config_raises_a_clean_run_error(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:tenants"] = json.dumps([{**GOOD["tenants"][0], "podCidr": "10.244.0.0/16"}])
    stack_config[f"{PROJECT}:kamaji"] = "not-json"
    del stack_config[f"{PROJECT}:proxmoxTokenSecret"]
    with pytest.raises(pulumi.RunError) as info:
        read_stack_config(pulumi.Config(PROJECT))
    message = str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert "  - kamaji: must be a YAML mapping or list" in message
    assert "  - tenants[0].podCidr: 10.244.0.0/16 overlaps managementCluster.podCidr" in message
    assert message.count("  - ") == 2  # the secret check needs a valid config, so it comes on the next run


def test_read_stack_config_reports_missing_secrets(stack_config: dict[str, str]) -> None:
    del stack_config[f"{PROJECT}:proxmoxTokenSecret"]
    del stack_config[f"{PROJECT}:sshPrivateKey"]
    with pytest.raises(pulumi.RunError) as info:
        read_stack_config(pulumi.Config(PROJECT))
    message = str(info.value)
    assert "  - proxmoxTokenSecret: secret config key is missing" in message
    assert "pulumi config set --secret sshPrivateKey" in message


def test_read_stack_secrets_returns_secret_outputs(stack_config: dict[str, str]) -> None:
    async def run() -> tuple[Any, ...]:
        config = pulumi.Config(PROJECT)
        secrets = read_stack_secrets(config, read_stack_config(config))
        assert secrets.ssh_private_key is not None
        return (
            await secrets.proxmox_token_secret.future(),
            await secrets.proxmox_token_secret.is_secret(),
            await secrets.ssh_private_key.is_secret(),
            secrets.management_kubeconfig,
            secrets.csi_encryption_passphrase,
        )

    token, token_is_secret, key_is_secret, kubeconfig, passphrase = asyncio.run(run())
    assert token == "3f0a1f52-0000-4000-8000-000000000000"
    assert token_is_secret and key_is_secret
    assert kubeconfig is None and passphrase is None


def test_read_stack_secrets_requires_the_secrets_the_config_needs(stack_config: dict[str, str]) -> None:
    stack_config[f"{PROJECT}:managementCluster"] = json.dumps({"external": True})
    config = pulumi.Config(PROJECT)
    cfg = load_stack_config({**GOOD, "managementCluster": {"external": True}})

    async def run() -> None:  # Outputs are created on a running event loop, as in a Pulumi program
        read_stack_secrets(config, cfg)

    with pytest.raises(pulumi.ConfigMissingError, match="managementKubeconfig"):
        asyncio.run(run())
    with pytest.raises(pulumi.RunError, match="managementKubeconfig: secret config key is missing"):
        read_stack_config(config)


def test_rendering_needs_no_ssh_key_and_postgres_needs_its_password() -> None:
    assert required_secret_keys(load_stack_config({**good(), "localRender": "rendered/local"})) == (
        "proxmoxTokenSecret",
    )
    raw = good()
    raw["kamaji"] = {**raw.get("kamaji", {}), "datastore": {"driver": "postgresql", "endpoints": ["pg.example:5432"]}}
    assert "kamajiDatastorePassword" in required_secret_keys(load_stack_config(raw))
