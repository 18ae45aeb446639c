"""The tree is the architecture: imports flow config -> providers -> components -> ``__main__.py``.

Each rule below is checked on the source (every ``import`` statement, also the ones inside functions),
so a lazy import cannot sneak a dependency back up the layers. ``providers/proxmox`` is also imported
in a fresh interpreter to prove that the plain client never loads pulumi, not even transitively.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

PROJECT_PACKAGES = ("config", "providers", "components", "tools", "policy", "tests", "benchmarks", "scripts")

ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset({"config"}),
    "providers/proxmox": frozenset({"providers.proxmox", "providers"}),
    "providers/dynamic": frozenset({"providers.proxmox", "providers.dynamic", "providers"}),
    "providers": frozenset({"providers"}),
    "components": frozenset({"config", "providers", "components"}),
    "__main__.py": frozenset({"config", "components"}),
    "policy": frozenset({"policy"}),
}
"""Layer (a folder or a file) -> the project packages its modules may import."""


def modules(layer: str) -> Iterator[Path]:
    """The Python files of a layer (a folder, recursively, or one file)."""
    root = REPO / layer
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def project_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of a project package in the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PROJECT_PACKAGES:
                yield node.lineno, name


def owner(layer: str, path: Path) -> str:
    """The most specific layer of ALLOWED that holds ``path``."""
    rel = path.relative_to(REPO).as_posix()
    return max((lay for lay in ALLOWED if rel == lay or rel.startswith(lay + "/")), key=len, default=layer)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_never_run_back_up_the_layers(layer: str) -> None:
    violations = []
    for path in modules(layer):
        if owner(layer, path) != layer:
            continue  # a sub-layer with its own rule (providers/proxmox inside providers)
        allowed = ALLOWED[layer]
        for line, name in project_imports(path):
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                violations.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not violations, "imports against the data flow:\n" + "\n".join(violations)


def test_the_proxmox_client_has_no_pulumi_import() -> None:
    offenders = []
    for path in modules("providers/proxmox"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}" for n in names if n.split(".")[0] == "pulumi"]
    assert not offenders, f"pulumi imported by the plain client: {offenders}"


def test_importing_the_proxmox_client_loads_no_pulumi_module() -> None:
    packages = sorted("providers.proxmox." + p.stem for p in modules("providers/proxmox") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {packages!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'pulumi' or m.startswith('pulumi.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_config_package_has_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in modules("config"):
        name = "config" if path.stem == "__init__" else f"config.{path.stem}"
        graph[name] = {n for _, n in project_imports(path) if n != "config"}
    graph.pop("config")  # the package re-exports its modules; nothing inside imports it
    seen: dict[str, str] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        if seen.get(node) == "done":
            return
        assert seen.get(node) != "active", f"import cycle: {' -> '.join((*trail, node))}"
        seen[node] = "active"
        for dep in sorted(graph.get(node, ())):
            visit(dep, (*trail, node))
        seen[node] = "done"

    for module in sorted(graph):
        visit(module, ())


def test_no_config_module_is_over_about_400_lines() -> None:
    long = {p.name: n for p in modules("config") if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long


@pytest.mark.parametrize(
    ("what", "path"),
    [
        ("the Proxmox client", "providers/proxmox/client.py"),
        ("the VM resource", "providers/dynamic/vm.py"),
        ("the tenant component", "components/tenants/tenant.py"),
        ("the preflight of tenants[].workerPools", "config/tenants.py"),
        ("the management cluster's bootstrap scripts", "components/management/bootstrap/kubeadm-init.sh"),
        ("the wiring of the layers", "components/platform.py"),
    ],
)
def test_a_newcomer_finds_things_by_folder_name(what: str, path: str) -> None:
    assert (REPO / path).is_file(), f"{what} is expected at {path} (README, Layout)"


def test_every_source_module_has_tests_at_its_mirrored_path() -> None:
    missing = []
    for layer in ("config", "providers/proxmox", "providers/dynamic", "components"):
        for path in modules(layer):
            if path.stem.startswith("__"):
                continue
            rel = path.relative_to(REPO).with_suffix("")
            tests_dir = REPO / "tests" / rel.parent
            if not list(tests_dir.glob(f"test_{rel.name}*.py")) and not list(tests_dir.glob("test_*.py")):
                missing.append(str(rel))
    assert not missing, f"modules without a tests folder mirroring them: {missing}"
