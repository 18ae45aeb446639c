"""A scratch Pulumi workspace: a copy of the program, its own file backend and PULUMI_HOME, and the CLI.

``tools.render`` runs a stack's program in one (against a simulator, nothing real touched) and the
end-to-end tests run theirs in one, so that nothing they do reaches the developer's ``.local`` stack.
The CLI and its plugins come from ``scripts/pulumi-toolchain.sh`` (built from Go modules, cached
outside the repository, or a pulumi installed the normal way); the kubernetes plugin is registered in
the workspace's own PULUMI_HOME.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
PROJECT: Final = "proxmox-k8s-platform"
PROGRAM_FILES: Final = ("Pulumi.yaml", "__main__.py", "config", "components", "providers", "tools", "policy")
"""What a project copy needs to run the program (``tools`` for the language host's helpers, ``policy``
for ``--policy-pack``)."""


class ToolchainError(RuntimeError):
    """The Pulumi CLI (or a plugin) could not be built or found."""


def toolchain_bin(home: Path | None = None) -> str:
    """The bin directory holding ``pulumi``; with ``home``, the kubernetes plugin is registered there.

    ``home`` is the PULUMI_HOME the workspace's CLI will use: the plugin is installed into it (the
    script skips an identical copy), so the CLI finds it without a download attempt.
    """
    args = [str(REPO / "scripts/pulumi-toolchain.sh")]
    env = dict(os.environ)
    if home is None:
        args.append("--no-plugins")
    else:
        home.mkdir(parents=True, exist_ok=True)
        args.append("--install-plugins")
        env["PULUMI_HOME"] = str(home)
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise ToolchainError(f"scripts/pulumi-toolchain.sh failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout.strip().splitlines()[-1]


def copy_project(source: Path, project: Path, names: Sequence[str] = PROGRAM_FILES) -> None:
    """Copy the program's files from ``source`` (a checkout) into ``project`` and link the virtualenv."""
    project.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, project / name)
    venv = project / ".venv"
    if not venv.exists():
        venv.symlink_to(REPO / ".venv")


def cli_env(bin_dir: str, root: Path, passphrase: str) -> dict[str, str]:
    """An environment for the CLI with its own PULUMI_HOME and file backend under ``root``, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "PROXMOX_", "KUBECONFIG"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PULUMI_HOME=str(root / "home"),
        PULUMI_BACKEND_URL=f"file://{root / 'state'}",
        PULUMI_CONFIG_PASSPHRASE=passphrase,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_DISABLE_REGISTRY_RESOLVE="true",
    )
    (root / "state").mkdir(parents=True, exist_ok=True)
    return env


class CliError(RuntimeError):
    """A pulumi command failed; the message holds what it printed."""

    def __init__(self, args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode = proc.returncode
        super().__init__(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@dataclass
class Cli:
    """Runs pulumi for one stack in a project directory and keeps everything it printed."""

    cwd: Path
    env: dict[str, str]
    stack: str
    transcript: list[str] = field(default_factory=list)

    def run(
        self, *args: str, check: bool = True, timeout: float = 900, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one pulumi command (``stdin`` fed to it); raise CliError with its output if ``check`` and it failed."""
        proc = subprocess.run(
            ["pulumi", *args, "--stack", self.stack, "--non-interactive"],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.transcript.append(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            raise CliError(args, proc)
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start a pulumi command in its own process group (so it can be killed with its plugins)."""
        return subprocess.Popen(
            ["pulumi", *args, "--stack", self.stack, "--non-interactive"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def reap(root: Path) -> None:
    """Kill plugin processes still running from a project copy under ``root``.

    A CLI killed on purpose (or by a timeout) leaves its language host and provider processes behind:
    the engine starts plugins in process groups of their own.
    """
    import signal

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
