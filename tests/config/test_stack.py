"""The whole model: a realistic stack passes, every problem is reported at once, the JSON schema."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import ValidationError

from config import (
    DEFAULT_VERSIONS,
    StackConfig,
    StackConfigError,
    load_stack_config,
    preflight,
    render_stack_config_schema,
    required_secret_keys,
    stack_config_json_schema,
)
from tests.config import (
    test_charts,
    test_cluster_api,
    test_errors,
    test_management,
    test_networks,
    test_operations,
    test_proxmox,
    test_storage,
    test_tenants,
    test_versions,
)
from tests.config.support import GOOD, apply, good
from tests.support.paths import REPO as ROOT

SCHEMA_FILE = ROOT / "schema" / "stack-config.schema.json"
ALL_CASES = [
    case
    for module in (
        test_charts,
        test_proxmox,
        test_networks,
        test_management,
        test_storage,
        test_cluster_api,
        test_tenants,
        test_operations,
        test_versions,
        test_errors,
    )
    for case in module.CASES
]
"""The table of bad configurations, kept beside the domain each row breaks."""


def test_good_config_passes_and_resolves_defaults() -> None:
    cfg = load_stack_config(GOOD)
    assert preflight(cfg) == []
    assert cfg.proxmox.endpoint == "https://pve1.example.com:8006"
    assert cfg.proxmox.api_url == "https://pve1.example.com:8006/api2/json"
    assert cfg.proxmox.verify_tls is True
    assert cfg.node_names() == ("pve1", "pve2", "pve3")
    assert [t.name for t in cfg.tenants] == ["team-a", "team-b"]
    assert cfg.tenant_kubernetes_version(cfg.tenants[0]) == DEFAULT_VERSIONS.kubernetes
    assert cfg.tenant_kubernetes_version(cfg.tenants[1]) == "v1.33.5"
    assert cfg.tenants[0].pod_cidr == IPv4Network("10.200.0.0/16")
    assert cfg.management_cluster.control_plane_endpoint == IPv4Address("10.10.10.10")
    assert cfg.management_cluster.ip_range is not None
    assert cfg.management_cluster.ip_range.as_capmox() == "10.10.10.20-10.10.10.39"
    assert cfg.resolve_template(cfg.tenants[0].worker_pools[0].template) == "ubuntu-2404-kube"
    assert cfg.pool_nodes(cfg.tenants[1].worker_pools[1]) == ("pve2",)
    assert cfg.pool_nodes(cfg.tenants[1].worker_pools[0]) == ("pve1", "pve2", "pve3")
    default_class = cfg.default_storage_class()
    assert default_class is not None and default_class.storage_class == "ceph"
    assert cfg.storage[0].disk_iops == 4000
    assert cfg.versions.capmox == DEFAULT_VERSIONS.capmox
    assert cfg.local_render is None
    assert required_secret_keys(cfg) == ("proxmoxTokenSecret", "sshPrivateKey")


def test_models_are_frozen_and_accept_python_names() -> None:
    cfg = load_stack_config(GOOD)
    with pytest.raises(ValidationError):
        cfg.proxmox.verify_tls = False
    by_name = StackConfig.model_validate(cfg.model_dump())
    assert by_name == cfg
    assert StackConfig.model_validate(cfg.model_dump(by_alias=True, mode="json")) == cfg


def test_table_has_enough_distinct_cases() -> None:
    assert len(ALL_CASES) >= 25
    assert len({c[0] for c in ALL_CASES}) == len(ALL_CASES)
    assert len({json.dumps(c[1], default=str) for c in ALL_CASES}) == len(ALL_CASES)


def test_several_preflight_problems_are_reported_at_once() -> None:
    raw = good()
    apply(raw, "tenants[1].podCidr", "10.200.5.0/24")
    apply(raw, "tenants[1].name", "team-a")
    apply(raw, "versions.capmox", "v0.8.1")
    apply(raw, "storage[1].default", True)
    apply(raw, "operations.backups.storage", "pbs2")
    with pytest.raises(StackConfigError) as info:
        load_stack_config(raw)
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == sorted(
        [
            "tenants[1].podCidr",
            "tenants[1].name",
            "versions.capmox",
            "storage[1].default",
            "operations.backups.storage",
        ]
    )
    message = str(info.value)
    assert message.startswith("Stack configuration is invalid (5 problems):")
    for problem in info.value.problems:
        assert f"  - {problem.path}: {problem.message}" in message


def test_stored_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_stack_config_schema(), (
        "schema/stack-config.schema.json is stale: run python scripts/export_config_schema.py"
    )


def test_export_script_check_mode_and_output(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "export_config_schema.py"
    ok = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "s.json"
    subprocess.run([sys.executable, str(script), "-o", str(out)], capture_output=True, check=True)
    assert out.read_text(encoding="utf-8") == render_stack_config_schema()
    out.write_text("{}\n", encoding="utf-8")
    stale = subprocess.run(
        [sys.executable, str(script), "--check", "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1 and "out of date" in stale.stderr


def test_schema_is_draft_2020_12_and_validates_the_good_config() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(GOOD)) == []
    assert "memoryMiB" in schema["$defs"]["WorkerPoolConfig"]["properties"]
    assert stack_config_json_schema() == schema


@pytest.mark.parametrize("path", ["surprise", "proxmox.insecureSkipVerify", "tenants[0].network.ipRange.step"])
@pytest.mark.parametrize("source", ["stored", "generated"])
def test_schema_rejects_unknown_keys(path: str, source: str) -> None:
    stored = source == "stored"
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) if stored else stack_config_json_schema()
    raw = good()
    apply(raw, path, True)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(raw))
    assert errors and all("Additional properties are not allowed" in e.message for e in errors)
