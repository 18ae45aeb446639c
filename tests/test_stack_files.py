"""The stack files dev, staging and prod: each is valid as the program will read it (shape, preflight, the
secret keys it needs stored encrypted), holds realistic placeholders, and its secure: values decrypt
with the placeholder passphrase its header documents. And the program never branches on the stack name:
environment differences are typed config values.
"""

from __future__ import annotations

import ast
import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import SECRET_KEYS, StackConfigError, required_secret_keys
from tests.support.paths import REPO
from tools.promote import ENVIRONMENTS
from tools.stack_file import check_stack_file, parse_stack_text, read_stack_file

PROJECT = "proxmox-k8s-platform"
DOCUMENTATION_AND_PRIVATE = [
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]
"""RFC 1918 and RFC 5737: the only addresses a placeholder stack file may name."""


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for child in value.values():
            yield from strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from strings(child)
    elif isinstance(value, str):
        yield value


# ------------------------------------------------------------------------------ the stack files


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_environment_is_a_valid_stack_with_its_secrets_encrypted(stack: str) -> None:
    sf = read_stack_file(stack)
    cfg = check_stack_file(sf)  # shape, preflight, no unknown keys, required secrets present and secure
    needed = set(required_secret_keys(cfg))
    assert needed <= set(sf.secure), f"missing secure values: {needed - set(sf.secure)}"
    assert not set(SECRET_KEYS) & set(sf.plain), "a secret key is stored as plain text"
    assert set(sf.secure) == needed, "a secure value that the configuration does not use"
    assert sf.document["encryptionsalt"].startswith("v1:")


def test_the_environments_differ_only_in_typed_values_and_are_realistic() -> None:
    configs = {stack: check_stack_file(read_stack_file(stack)) for stack in ENVIRONMENTS}
    for stack, cfg in configs.items():
        assert len(cfg.nodes) == 3, stack
        assert 1 <= len(cfg.tenants) <= 2, stack
        assert cfg.proxmox.verify_tls, stack
        assert cfg.proxmox.endpoint.split("//")[1].split(":")[0].endswith(".example.com"), stack
        assert not cfg.management_cluster.external, stack
        assert cfg.local_render is None, stack
    # prod is the biggest and pins the most; staging is shaped like prod
    assert configs["prod"].management_cluster.control_planes.count == 3
    assert configs["staging"].management_cluster.control_planes.count == 3
    assert configs["dev"].management_cluster.control_planes.count == 1
    assert set(required_secret_keys(configs["prod"])) == {
        "proxmoxTokenSecret",
        "sshPrivateKey",
        "csiEncryptionPassphrase",
        "kamajiDatastorePassword",
    }
    endpoints = {cfg.proxmox.endpoint for cfg in configs.values()}
    assert len(endpoints) == len(ENVIRONMENTS)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_placeholders_use_only_private_or_documentation_addresses(stack: str) -> None:
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    seen = 0
    for text in strings(document["config"]):
        for candidate in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b", text):
            network = ipaddress.IPv4Network(candidate, strict=False)
            assert any(network.subnet_of(allowed) for allowed in DOCUMENTATION_AND_PRIVATE), f"{stack}: {candidate}"
            seen += 1
    assert seen > 10


# ------------------------------------------------------------------- the file-only rules can fail

BASE = (REPO / "Pulumi.dev.yaml").read_text()


def check_text(text: str) -> list[str]:
    try:
        check_stack_file(parse_stack_text(text, stack="dev", project=PROJECT))
    except StackConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_the_unmodified_file_passes() -> None:
    assert check_text(BASE) == []


def test_a_secret_in_plain_text_is_refused() -> None:
    document = yaml.safe_load(BASE)
    document["config"][f"{PROJECT}:proxmoxTokenSecret"] = "5f0c9e2a-0000-4000-8000-000000000000"
    problems = check_text(yaml.safe_dump(document))
    assert problems == [
        "proxmoxTokenSecret: is a secret (UUID secret of proxmox.tokenId) but is stored as plain text; "
        "set it with: pulumi config set --secret proxmoxTokenSecret <value>"
    ]


def test_a_missing_secret_is_refused() -> None:
    document = yaml.safe_load(BASE)
    del document["config"][f"{PROJECT}:sshPrivateKey"]
    problems = check_text(yaml.safe_dump(document))
    assert len(problems) == 1 and problems[0].startswith("sshPrivateKey: secret config key is missing")


def test_an_unknown_key_and_a_bad_ciphertext_are_refused() -> None:
    document = yaml.safe_load(BASE)
    document["config"][f"{PROJECT}:tenant"] = []
    document["config"][f"{PROJECT}:proxmoxTokenSecret"] = {"secure": "not-encrypted"}
    problems = check_text(yaml.safe_dump(document))
    assert any(p.startswith("tenant: unknown config key") for p in problems)
    assert any(p.startswith("proxmoxTokenSecret: secure value is not a passphrase ciphertext") for p in problems)


def test_an_invalid_domain_value_is_refused_with_its_path() -> None:
    problems = check_text(BASE.replace("cidr: 10.111.0.0/24", "cidr: 10.110.0.0/24"))
    assert any(p.startswith("tenants[0].network") for p in problems), problems


def test_the_cli_exits_non_zero_on_an_invalid_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.stack_file import main

    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text(BASE)
    assert main(["check", "dev"], root=tmp_path) == 0
    (tmp_path / "Pulumi.dev.yaml").write_text(BASE.replace("verifyTls: true", "verifyTls: maybe"))
    assert main(["check", "dev"], root=tmp_path) == 1
    assert "proxmox.verifyTls: must be true or false" in capsys.readouterr().err
    assert main(["check", "qa"], root=tmp_path) == 1


# --------------------------------------------------- the documented passphrases decrypt the secrets


def documented_passphrase(stack: str) -> str:
    header = (REPO / f"Pulumi.{stack}.yaml").read_text().split("\nconfig:", 1)[0]
    match = re.search(r'placeholder passphrase "([^"]+)"', header)
    assert match, f"Pulumi.{stack}.yaml does not document its placeholder passphrase"
    return match.group(1)


def pulumi_bin() -> str:
    given = os.environ.get("PULUMI_TOOLCHAIN_BIN")
    if given and Path(given, "pulumi").exists():
        return given
    proc = subprocess.run(
        [str(REPO / "scripts/pulumi-toolchain.sh"), "--no-plugins"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"the pulumi CLI could not be built: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


@pytest.mark.e2e
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_documented_placeholder_passphrase_decrypts_every_secret(stack: str, tmp_path: Path) -> None:
    bin_dir = pulumi_bin()
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_CONFIG_PASSPHRASE": documented_passphrase(stack),
    }
    (tmp_path / "state").mkdir()

    def pulumi(*args: str, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
        run_env = env if passphrase is None else {**env, "PULUMI_CONFIG_PASSPHRASE": passphrase}
        return subprocess.run(
            ["pulumi", *args, "--non-interactive"], cwd=tmp_path, env=run_env, capture_output=True, text=True
        )

    created = pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
    assert created.returncode == 0, created.stderr
    assert (tmp_path / f"Pulumi.{stack}.yaml").read_text() == (REPO / f"Pulumi.{stack}.yaml").read_text()
    for key in read_stack_file(stack).secure:
        got = pulumi("config", "get", "--stack", stack, key)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip().startswith("replace-me-"), key
    wrong = pulumi("config", "get", "--stack", stack, "proxmoxTokenSecret", passphrase="not-the-passphrase")
    assert wrong.returncode != 0 and "incorrect passphrase" in wrong.stderr


# ------------------------------------------------------------ no branches on the stack name


ENVIRONMENT_NAMES = frozenset({*ENVIRONMENTS, "local"})


def _is_get_stack(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == "get_stack")
        or (isinstance(node.func, ast.Name) and node.func.id == "get_stack")
    )


def stack_branches(source: str) -> list[str]:
    """Places that choose behaviour by stack name: comparisons with get_stack() or with an environment
    name, get_stack() as a lookup key, and ``match get_stack()``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            constants: list[ast.expr] = [o for o in operands if isinstance(o, ast.Constant)]
            constants += [e for o in operands if isinstance(o, ast.Tuple | ast.List | ast.Set) for e in o.elts]
            named = any(isinstance(c, ast.Constant) and c.value in ENVIRONMENT_NAMES for c in constants)
            if any(_is_get_stack(o) for o in operands) or named:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and _is_get_stack(node.slice):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Match) and _is_get_stack(node.subject):
            found.append(f"line {node.lineno}: match {ast.unparse(node.subject)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and _is_get_stack(node.args[0])
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        'if pulumi.get_stack() == "prod":\n    pass',
        'if get_stack() != "dev":\n    pass',
        "stack = pulumi.get_stack()\nif stack in ('staging', 'prod'):\n    pass",
        "size = SIZES[pulumi.get_stack()]",
        "size = SIZES.get(pulumi.get_stack(), 1)",
        "match pulumi.get_stack():\n    case _:\n        pass",
        'x = 3 if name == "local" else 1',
    ],
)
def test_the_branch_finder_finds_stack_branches(snippet: str) -> None:
    assert stack_branches(snippet)


def test_the_branch_finder_allows_naming_resources_after_the_stack() -> None:
    assert stack_branches('owner = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"') == []


def program_files() -> list[Path]:
    return [
        REPO / "__main__.py",
        *sorted((REPO / "components").rglob("*.py")),
        *sorted((REPO / "providers").rglob("*.py")),
    ]


def test_the_program_never_branches_on_the_stack_name() -> None:
    files = program_files()
    assert len(files) > 20
    offenders = {str(f.relative_to(REPO)): stack_branches(f.read_text()) for f in files}
    assert {f: b for f, b in offenders.items() if b} == {}
