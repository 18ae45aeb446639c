"""The GitHub Actions workflows: actionlint and the GitHub workflow JSON schema accept them (and reject a
broken one), and they have the delivery shape of docs/delivery.md: previews of every environment on pull
requests, dev deployed from main, staging then prod (behind the ``prod`` environment) on promotion, one
deployment per stack at a time and never a cancelled ``pulumi up``, and every step a make target.

actionlint is built from the Go module proxy by ``scripts/actionlint.sh`` (cached outside the
repository); its tests skip, saying so, only when Go is not installed and no binary is cached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO
from tools.promote import ENVIRONMENTS

WORKFLOWS = REPO / ".github" / "workflows"
SETUP_ACTION = REPO / ".github" / "actions" / "setup" / "action.yml"
CHECK_JSONSCHEMA = REPO / ".venv" / "bin" / "check-jsonschema"
DEPLOYING = re.compile(r"\bmake (?:--\S+ )*deploy STACK=(\w+)")
MAKE_TARGET = re.compile(r"\bmake (?:--\S+ )*([a-z][a-z-]*)\b")

BROKEN_WORKFLOW = """\
name: broken
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
      - uses: actions/checkout@v4
        with:
          no-such-input: true
      - run: echo ${{ steps.nope.outputs.x }}
"""


def load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    return document


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` mapping (PyYAML reads the bare key ``on`` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]) for step in job.get("steps", []) if "run" in step]


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, job)
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for name, job in load(path.name)["jobs"].items()
    ]


# ----------------------------------------------------------------------------------- actionlint


@pytest.fixture(scope="module")
def actionlint() -> str:
    """The actionlint binary (built on first use); skip only when it cannot be built for lack of Go."""
    go_available = shutil.which("go") is not None or Path("/usr/local/go/bin/go").exists()
    proc = subprocess.run(
        [str(REPO / "scripts" / "actionlint.sh"), "--print-path"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        if not go_available:
            pytest.skip(f"Go is not installed, so actionlint cannot be built: {proc.stderr.strip()[-300:]}")
        pytest.fail(f"scripts/actionlint.sh could not build actionlint:\n{proc.stderr}")
    return proc.stdout.strip()


def test_actionlint_accepts_the_workflows(actionlint: str) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"preview.yml", "deploy.yml", "promote.yml"}
    proc = subprocess.run([actionlint, *map(str, files)], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_through_the_script_lints_every_workflow(actionlint: str) -> None:
    proc = subprocess.run([str(REPO / "scripts" / "actionlint.sh")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "broken.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(BROKEN_WORKFLOW)
    proc = subprocess.run([actionlint, str(workflow)], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "no-such-input" in proc.stdout
    assert "steps.nope" in proc.stdout or 'property "nope"' in proc.stdout


# ------------------------------------------------------------------------------ JSON schema


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_the_workflows_and_the_setup_action_match_the_github_schemas() -> None:
    proc = check_jsonschema("vendor.github-workflows", *sorted(WORKFLOWS.glob("*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = check_jsonschema("vendor.github-actions", SETUP_ACTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_an_invalid_workflow(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yml"
    invalid.write_text("name: invalid\non: push\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    steps: run-this\n")
    proc = check_jsonschema("vendor.github-workflows", invalid)
    assert proc.returncode == 1, proc.stdout


# -------------------------------------------------------------------------------- the shape


def test_pull_requests_preview_every_environment_and_comment() -> None:
    workflow = load("preview.yml")
    assert "pull_request" in triggers(workflow)
    assert workflow["permissions"]["pull-requests"] == "write"
    preview = workflow["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == list(ENVIRONMENTS)
    assert preview["strategy"]["fail-fast"] is False
    assert runs(preview) == ['make preview STACK="$STACK"']
    assert preview["env"]["STACK"] == "${{ matrix.stack }}"
    comment = [s for s in preview["steps"] if "github-script" in str(s.get("uses", ""))]
    assert len(comment) == 1 and "pulumi-preview:" in comment[0]["with"]["script"]
    assert "head.repo.full_name == github.repository" in preview["if"]  # no secrets for fork pull requests
    assert preview["needs"] == "checks"
    assert runs(workflow["jobs"]["checks"]) == ["make test", "make lint-workflows"]


def test_main_deploys_dev() -> None:
    workflow = load("deploy.yml")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    assert [(job.get("environment"), runs(job)) for job in workflow["jobs"].values()] == [
        ("dev", ["make deploy STACK=dev"])
    ]


def test_promotion_runs_staging_then_prod_behind_the_prod_environment() -> None:
    workflow = load("promote.yml")
    on = triggers(workflow)
    assert "workflow_dispatch" in on and on["push"]["tags"] == ["release-*"]
    jobs = workflow["jobs"]
    assert jobs["staging-preview"]["needs"] == "origin"
    assert "make preview STACK=staging" in runs(jobs["staging-preview"])
    assert jobs["staging"]["needs"] == "staging-preview" and runs(jobs["staging"]) == ["make deploy STACK=staging"]
    assert jobs["prod-preview"]["needs"] == "staging" and "make preview STACK=prod" in runs(jobs["prod-preview"])
    assert jobs["prod"]["needs"] == "prod-preview" and runs(jobs["prod"]) == ["make deploy STACK=prod"]
    assert jobs["prod"]["environment"] == "prod"
    assert jobs["staging"]["environment"] == "staging"
    assert "merge-base --is-ancestor" in runs(jobs["origin"])[0]


def test_one_deployment_per_stack_and_never_a_cancelled_up() -> None:
    deployed: dict[str, list[str]] = {}
    for workflow, name, job in all_jobs():
        stacks = {m for run in runs(job) for m in DEPLOYING.findall(run)}
        if not stacks:
            continue
        assert len(stacks) == 1, f"{workflow}:{name} deploys several stacks"
        (stack,) = stacks
        deployed.setdefault(stack, []).append(f"{workflow}:{name}")
        concurrency = job.get("concurrency")
        assert concurrency == {"group": f"pulumi-{stack}", "cancel-in-progress": False}, f"{workflow}:{name}"
    assert sorted(deployed) == sorted(ENVIRONMENTS)
    # no workflow-level group may cancel a job that deploys
    for path in WORKFLOWS.glob("*.yml"):
        top = load(path.name).get("concurrency")
        deploys = any(DEPLOYING.search(r) for wf, _name, job in all_jobs() if wf == path.name for r in runs(job))
        if top and deploys:
            assert top.get("cancel-in-progress") is False


def test_workflows_never_run_pulumi_themselves() -> None:
    """Every Pulumi operation goes through make; pulumi/actions only installs the CLI."""
    for workflow, name, job in all_jobs():
        for run in runs(job):
            assert not re.search(r"(^|\s)pulumi\s", run), f"{workflow}:{name} runs pulumi directly: {run}"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("pulumi/actions"):
                assert "command" not in (step.get("with") or {}), f"{workflow}:{name}"
    action = yaml.safe_load(SETUP_ACTION.read_text())
    pulumi_steps = [s for s in action["runs"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")]
    assert len(pulumi_steps) == 1 and "command" not in pulumi_steps[0]["with"]
    requirements = (REPO / "requirements.txt").read_text()
    assert f"pulumi=={action['inputs']['pulumi-version']['default']}\n" in requirements


def test_every_make_target_the_workflows_call_exists_in_the_makefile() -> None:
    """Fails until the Makefile has the preview/deploy/promote/lint-workflows targets (docs/delivery.md)."""
    makefile = (REPO / "Makefile").read_text()
    defined = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    called = {t for _, _, job in all_jobs() for run in runs(job) for t in MAKE_TARGET.findall(run)}
    action = yaml.safe_load(SETUP_ACTION.read_text())
    called |= {t for step in action["runs"]["steps"] for t in MAKE_TARGET.findall(str(step.get("run", "")))}
    assert called >= {"setup", "test", "lint-workflows", "preview", "deploy", "promote"}
    assert called <= defined, f"missing Makefile targets: {sorted(called - defined)}"
