"""tools.promote: the route (dev -> staging -> prod only), what moves (versions only), validation before
writing, dry run by default, and the text editor that keeps the target file's comments and layout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import DEFAULT_VERSION_SET
from tests.support.paths import REPO
from tools import promote
from tools.promote import (
    ENVIRONMENTS,
    PromotionError,
    check_route,
    effective_versions,
    explicit_versions,
    plan_promotion,
    render_scalar,
    replace_versions_block,
)
from tools.stack_file import check_stack_file, parse_stack_text, read_stack_file

PROJECT = "proxmox-k8s-platform"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the project files promote reads and writes."""
    for name in ("Pulumi.yaml", *(f"Pulumi.{env}.yaml" for env in ENVIRONMENTS)):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def set_versions(root: Path, stack: str, versions: dict[str, str] | None) -> None:
    """Rewrite a stack's versions key (None removes it) through PyYAML: test setup only."""
    path = root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    key = f"{PROJECT}:versions"
    document["config"].pop(key, None)
    if versions is not None:
        document["config"][key] = versions
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def outside_block(text: str) -> list[str]:
    """The lines of a stack file outside its versions block."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"  {PROJECT}:versions:")), None)
    if start is None:
        return lines
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return lines[:start] + lines[end:]


# ------------------------------------------------------------------------------------------- route


def test_the_order_is_dev_staging_prod_and_every_environment_has_a_stack_file() -> None:
    assert ENVIRONMENTS == ("dev", "staging", "prod")
    for env in ENVIRONMENTS:
        assert (REPO / f"Pulumi.{env}.yaml").is_file()


@pytest.mark.parametrize(("source", "target"), [("dev", "staging"), ("staging", "prod")])
def test_each_environment_promotes_to_the_next(source: str, target: str) -> None:
    check_route(source, target)


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        ("dev", "prod", "dev promotes to staging only"),
        ("staging", "dev", "staging promotes to prod only"),
        ("prod", "staging", "prod is the last environment"),
        ("dev", "dev", "dev promotes to staging only"),
        ("local", "dev", "unknown source stack 'local'"),
        ("dev", "qa", "unknown target stack 'qa'"),
    ],
)
def test_unknown_stacks_and_skipped_or_backward_steps_are_refused(source: str, target: str, why: str) -> None:
    with pytest.raises(PromotionError, match=re.escape(why)):
        check_route(source, target)


def test_cli_refuses_a_skip_and_writes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    assert promote.main(["--from", "dev", "--to", "prod", "--write"], root=root) == 1
    assert "refused" in capsys.readouterr().err
    assert (root / "Pulumi.prod.yaml").read_text() == before


def test_list_prints_the_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert promote.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(ENVIRONMENTS)


# --------------------------------------------------------------------------------- dry run, write


def test_dry_run_prints_the_differences_and_leaves_the_file_alone(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_versions(root, "dev", {"cilium": "1.19.5"})
    set_versions(root, "staging", {**DEFAULT_VERSION_SET, "cilium": "1.19.4"})
    before = (root / "Pulumi.staging.yaml").read_text()
    assert promote.main(["--from", "dev", "--to", "staging"], root=root) == 0
    out = capsys.readouterr().out
    assert re.search(r"cilium\s+1\.19\.4\s+->\s+1\.19\.5", out)
    assert "1 version differs" in out
    assert "Dry run" in out
    assert (root / "Pulumi.staging.yaml").read_text() == before


def test_write_moves_the_versions_and_nothing_else(root: Path) -> None:
    source, target = read_stack_file("dev", root), read_stack_file("staging", root)
    assert effective_versions(source) != effective_versions(target)  # the repository's stacks differ

    assert promote.main(["--from", "dev", "--to", "staging", "--write"], root=root) == 0
    after = read_stack_file("staging", root)
    assert effective_versions(after) == effective_versions(source)
    assert explicit_versions(after) == effective_versions(source)  # fully pinned
    # every line outside the versions block is byte-identical: endpoints, sizes, CIDRs, secrets, comments
    assert outside_block(after.text) == outside_block(target.text)
    assert after.secure == target.secure
    assert after.document["encryptionsalt"] == target.document["encryptionsalt"]
    assert {k: v for k, v in after.plain.items() if k != "versions"} == {
        k: v for k, v in target.plain.items() if k != "versions"
    }
    check_stack_file(after)


def test_a_second_promotion_has_nothing_to_do(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote.main(["--from", "dev", "--to", "staging", "--write"], root=root) == 0
    written = (root / "Pulumi.staging.yaml").read_text()
    capsys.readouterr()
    assert promote.main(["--from", "dev", "--to", "staging", "--write"], root=root) == 0
    out = capsys.readouterr().out
    assert "nothing to promote" in out
    assert "already up to date" in out
    assert (root / "Pulumi.staging.yaml").read_text() == written


def test_keys_followed_from_code_defaults_are_pinned_without_a_change(root: Path) -> None:
    set_versions(root, "dev", None)
    set_versions(root, "staging", {"cilium": DEFAULT_VERSION_SET["cilium"]})
    plan = plan_promotion(read_stack_file("dev", root), read_stack_file("staging", root))
    assert plan.changes == ()
    assert set(plan.newly_pinned) == set(DEFAULT_VERSION_SET) - {"cilium"}
    assert plan.rewrites_file


# ---------------------------------------------------------------------------------- validation


def test_a_version_set_the_target_cannot_run_is_refused_and_nothing_is_written(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dev moves to a template that only dev declares: staging would reference an undeclared template
    dev = root / "Pulumi.dev.yaml"
    document = yaml.safe_load(dev.read_text())
    document["config"][f"{PROJECT}:templates"]["ubuntu-2404-kube-v2"] = {"tags": ["k8s", "ubuntu-24-04-v2"]}
    document["config"][f"{PROJECT}:versions"] = {"vmTemplate": "ubuntu-2404-kube-v2"}
    dev.write_text(yaml.safe_dump(document, sort_keys=False))
    check_stack_file(read_stack_file("dev", root))  # the source itself is fine

    before = (root / "Pulumi.staging.yaml").read_text()
    assert promote.main(["--from", "dev", "--to", "staging", "--write"], root=root) == 1
    err = capsys.readouterr().err
    assert "staging cannot run the versions of dev" in err
    assert "ubuntu-2404-kube-v2" in err
    assert (root / "Pulumi.staging.yaml").read_text() == before


def test_an_invalid_source_is_refused(root: Path) -> None:
    set_versions(root, "dev", {"capiCore": "v1.9.0"})  # outside the compatibility matrix
    with pytest.raises(PromotionError, match=r"(?s)source Pulumi\.dev\.yaml is invalid.*versions\.capiCore"):
        plan_promotion(read_stack_file("dev", root), read_stack_file("staging", root))


# ------------------------------------------------------------------------------- text editing

TARGET = f"""\
# header comment
config:
  {PROJECT}:proxmox:
    endpoint: https://pve.example.com:8006  # keep me
  # about versions
  {PROJECT}:versions:
    # leading comment of the block
    cilium: 1.19.3  # renovate: datasource=helm depName=cilium

    # comment above kubernetes
    kubernetes: v1.34.6
  # belongs to the next key
  {PROJECT}:proxmoxTokenSecret:
    secure: v1:abc:def
encryptionsalt: v1:salt:x
"""


def test_the_block_editor_keeps_comments_order_and_every_other_line() -> None:
    wanted = {**DEFAULT_VERSION_SET, "cilium": "1.19.5", "kubernetes": "v1.34.8"}
    out = replace_versions_block(TARGET, PROJECT, wanted)
    lines = out.splitlines()
    assert lines[:6] == TARGET.splitlines()[:6]
    assert lines[6] == "    # leading comment of the block"
    assert lines[7] == "    cilium: 1.19.5  # renovate: datasource=helm depName=cilium"
    assert lines[8:11] == ["", "    # comment above kubernetes", "    kubernetes: v1.34.8"]
    appended = [k for k in DEFAULT_VERSION_SET if k not in ("cilium", "kubernetes")]
    assert [line.split(":")[0].strip() for line in lines[11 : 11 + len(appended)]] == appended
    assert lines[11 + len(appended) :] == TARGET.splitlines()[-4:]
    parsed = parse_stack_text(out, stack="staging", project=PROJECT)
    assert explicit_versions(parsed) == wanted
    assert parsed.secure == {"proxmoxTokenSecret": "v1:abc:def"}


def test_a_target_without_versions_gets_a_block_at_the_end_of_config() -> None:
    text = TARGET.replace(
        f"  {PROJECT}:versions:\n    # leading comment of the block\n"
        "    cilium: 1.19.3  # renovate: datasource=helm depName=cilium\n\n"
        "    # comment above kubernetes\n    kubernetes: v1.34.6\n",
        "",
    )
    assert "versions" not in text.replace("# about versions", "")
    out = replace_versions_block(text, PROJECT, dict(DEFAULT_VERSION_SET))
    parsed = parse_stack_text(out, stack="staging", project=PROJECT)
    assert explicit_versions(parsed) == dict(DEFAULT_VERSION_SET)
    assert out.startswith(text.split("encryptionsalt")[0])
    assert out.endswith("encryptionsalt: v1:salt:x\n")


@pytest.mark.parametrize(
    "block",
    [
        f"  {PROJECT}:versions: {{cilium: 1.19.3}}\n",
        f"  {PROJECT}:versions:\n    cilium: &c 1.19.3\n",
        f"  {PROJECT}:versions:\n    cilium:\n      nested: 1\n",
        f'  {PROJECT}:versions:\n    "cilium": 1.19.3\n',
    ],
)
def test_blocks_the_editor_cannot_rewrite_safely_are_refused(block: str) -> None:
    text = f"config:\n{block}encryptionsalt: v1:salt:x\n"
    with pytest.raises(PromotionError, match=r"rewrite|editor does not rewrite|cannot edit"):
        replace_versions_block(text, PROJECT, dict(DEFAULT_VERSION_SET))


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("1.19.5", "1.19.5"),
        ("v1.34.8", "v1.34.8"),
        ("0.0.0+latest", "0.0.0+latest"),
        ("26.8.2-edge", "26.8.2-edge"),
        ("1.20", '"1.20"'),  # a float to YAML
        ("yes", '"yes"'),  # a boolean to YAML 1.1
        ("1e3", '"1e3"'),
    ],
)
def test_versions_are_written_as_strings_yaml_reads_back_unchanged(value: str, rendered: str) -> None:
    assert render_scalar(value) == rendered
    assert yaml.safe_load(f"k: {render_scalar(value)}") == {"k": value}


VERSION = st.from_regex(r"\Av?[0-9]{1,2}\.[0-9]{1,2}(\.[0-9]{1,2})?\Z")
OVERRIDES = st.dictionaries(st.sampled_from(sorted(DEFAULT_VERSION_SET)), VERSION, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=OVERRIDES, target=st.one_of(st.none(), OVERRIDES), comment=st.booleans())
def test_property_the_rewritten_block_reads_back_as_the_source_versions(
    source: dict[str, str], target: dict[str, str] | None, comment: bool
) -> None:
    lines = ["config:", f"  {PROJECT}:proxmox:", "    endpoint: https://pve.example.com:8006"]
    if target is not None:
        lines.append(f"  {PROJECT}:versions:")
        lines += [f"    {k}: {render_scalar(v)}" + ("  # pinned" if comment else "") for k, v in target.items()]
    lines += [f"  {PROJECT}:proxmoxTokenSecret:", "    secure: v1:abc:def", "encryptionsalt: v1:salt:x"]
    text = "\n".join(lines) + "\n"
    wanted = {**DEFAULT_VERSION_SET, **source}
    out = replace_versions_block(text, PROJECT, wanted)
    before = parse_stack_text(text, stack="staging", project=PROJECT)
    after = parse_stack_text(out, stack="staging", project=PROJECT)
    assert explicit_versions(after) == wanted
    assert after.plain["proxmox"] == before.plain["proxmox"]
    assert after.secure == before.secure
    assert after.document["encryptionsalt"] == before.document["encryptionsalt"]
    assert out.count("# pinned") == (len(target) if (target is not None and comment) else 0)
