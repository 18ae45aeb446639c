"""The real ``pulumi`` CLI driving a copy of this project against a simulator running in the test process.

The CLI comes from ``scripts/pulumi-toolchain.sh`` (built from Go modules and cached outside the repo).
Each test module gets its own project copy, file backend, PULUMI_HOME and simulator, so nothing touches
the developer's local stack.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.simulator import TOKEN_SECRET, ServedSimulator, seed

REPO = Path(__file__).resolve().parents[2]
PROJECT = "proxmox-k8s-platform"
STACK = "e2e"
PASSPHRASE = "e2e-only-passphrase"
COPY = ("Pulumi.yaml", "__main__.py", "config", "components", "providers", "tools", "policy")


def toolchain_bin() -> str:
    """The bin dir holding ``pulumi``; skip (with the reason) if the toolchain cannot be built here."""
    given = os.environ.get("PULUMI_TOOLCHAIN_BIN")
    if given and Path(given, "pulumi").exists():
        return given
    proc = subprocess.run(
        [str(REPO / "scripts/pulumi-toolchain.sh"), "--no-plugins"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"the pulumi CLI could not be built: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


@dataclass
class Cli:
    """Runs pulumi in the project copy and keeps everything it printed (for the secret scan)."""

    cwd: Path
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one pulumi command; fail with its output if ``check`` and it failed."""
        proc = subprocess.run(
            ["pulumi", *args, "--stack", STACK, "--non-interactive"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.transcript.append(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start a pulumi command in its own process group (so it can be killed with its plugins)."""
        return subprocess.Popen(
            ["pulumi", *args, "--stack", STACK, "--non-interactive"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


@dataclass
class Deployment:
    """A project copy wired to a simulator, with its CLI."""

    cli: Cli
    sim: ServedSimulator
    root: Path

    @property
    def pve(self) -> Any:
        """The simulator's model (VMs, tokens, requests)."""
        return self.sim.pve

    def guests(self) -> dict[int, Any]:
        """Non-template VMs in the simulator, by VMID."""
        return {vm.vmid: vm for vm in self.pve.vms if not vm.template}

    def state_text(self) -> str:
        """The stack's checkpoint file as stored by the file backend."""
        files = list((self.root / "state").rglob(f"{STACK}.json"))
        assert files, "no checkpoint file found"
        return files[0].read_text()


def reap(root: Path) -> None:
    """Kill plugin processes still running from this deployment's project copy.

    A CLI killed on purpose (the killed-up test) leaves its language host and dynamic-provider processes
    behind: the engine starts plugins in process groups of their own.
    """
    marker = str(root).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            in_copy = marker in (proc / "cmdline").read_bytes() or os.readlink(proc / "cwd").startswith(str(root))
            if in_copy:
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            continue


def copy_project(source: Path, project: Path, names: tuple[str, ...] = COPY) -> None:
    """Copy the program's files from ``source`` (a checkout) into ``project`` and link the virtualenv."""
    project.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, project / name)
    (project / ".venv").symlink_to(REPO / ".venv")


def stack_file(sim: ServedSimulator, local_stack: Path = REPO / "Pulumi.local.yaml") -> str:
    """The local stack's configuration pointed at ``sim`` (without the secret, which is set per stack)."""
    local = yaml.safe_load(local_stack.read_text())
    config = {k: v for k, v in local["config"].items() if not k.endswith(":proxmoxTokenSecret")}
    config[f"{PROJECT}:proxmox"] = {**config[f"{PROJECT}:proxmox"], "endpoint": sim.pve.url, "caBundle": sim.cafile}
    return yaml.safe_dump({"config": config})


def cli_env(bin_dir: str, root: Path) -> dict[str, str]:
    """An environment for the CLI with its own PULUMI_HOME and file backend under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "PROXMOX_", "KUBECONFIG"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PULUMI_HOME=str(root / "home"),
        PULUMI_BACKEND_URL=f"file://{root / 'state'}",
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_DISABLE_REGISTRY_RESOLVE="true",
    )
    (root / "state").mkdir(exist_ok=True)
    return env


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A fresh project copy, backend and simulator; the stack is initialised but nothing is deployed."""
    bin_dir = toolchain_bin()
    root = tmp_path_factory.mktemp("e2e")
    project = root / "project"
    copy_project(REPO, project)
    sim = ServedSimulator(str(root))
    seed(sim.pve)
    (project / f"Pulumi.{STACK}.yaml").write_text(stack_file(sim))
    cli = Cli(project, cli_env(bin_dir, root))
    cli.run("stack", "init")
    cli.run("config", "set", "--secret", "proxmoxTokenSecret", TOKEN_SECRET)
    try:
        yield Deployment(cli, sim, root)
    finally:
        sim.stop()
        reap(root)
