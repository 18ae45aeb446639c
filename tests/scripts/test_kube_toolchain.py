"""scripts/kube-toolchain.sh: its output contract, the pinned versions, and its cache rules.

The cache rules (a stamp decides, a lock serialises, an override moves the root) are checked on a
fabricated cache with a ``go`` that always fails, so they cost milliseconds instead of a build.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.kube import kube_binaries

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-toolchain.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")

pytestmark = [pytest.mark.kube, pytest.mark.timeout(1800)]  # a cold build takes ~10 minutes


def run(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def built() -> Path:
    """The real bin dir (built on demand); skip with the reason if the build cannot run here."""
    if os.environ.get("KUBE_TOOLCHAIN_BIN"):
        pytest.skip("KUBE_TOOLCHAIN_BIN is set: the script's own cache is not in use")
    return kube_binaries()


def test_prints_one_line_the_bin_dir_and_is_fast_when_warm(built: Path) -> None:
    started = time.monotonic()
    proc = run(dict(os.environ))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{built}\n"
    assert elapsed < 5, f"warm run took {elapsed:.1f}s"
    assert all(os.access(built / name, os.X_OK) for name in BINARIES)
    recipe_dir = built.parent
    assert (recipe_dir / ".complete").read_text().strip() == recipe_dir.name
    versions = (recipe_dir / "VERSIONS").read_text()
    assert "k8s.io/kubernetes@v1.34.4, 29 staging modules => v0.34.4" in versions
    assert not str(recipe_dir).startswith(str(REPO)), "binaries must live outside the repository"


def test_binaries_report_the_pinned_versions(built: Path) -> None:
    for name in ("kube-apiserver", "kube-controller-manager"):
        out = subprocess.run([str(built / name), "--version"], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "Kubernetes v1.34.4", name
    out = subprocess.run([str(built / "etcd"), "--version"], capture_output=True, text=True, check=True).stdout
    assert "etcd Version: 3.6.17" in out


@pytest.fixture
def fake_cache(built: Path, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An override cache root with the real recipe's layout, and a PATH whose ``go`` always fails."""
    recipe = built.parent.name
    fake_go = tmp_path / "fakebin" / "go"
    fake_go.parent.mkdir()
    fake_go.write_text("#!/bin/sh\necho 'fake go: no build in this test' >&2\nexit 1\n")
    fake_go.chmod(0o755)
    env = dict(os.environ, KUBE_TOOLCHAIN_CACHE=str(tmp_path / "cache"), PATH=f"{fake_go.parent}:{os.environ['PATH']}")
    return env, tmp_path / "cache" / recipe


def fill(recipe_dir: Path, stamp: str | None) -> None:
    (recipe_dir / "bin").mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        (recipe_dir / "bin" / name).write_text("#!/bin/sh\n")
        (recipe_dir / "bin" / name).chmod(0o755)
    if stamp is not None:
        (recipe_dir / ".complete").write_text(stamp + "\n")


def test_cache_root_override_is_used_when_its_stamp_matches(fake_cache: tuple[dict[str, str], Path]) -> None:
    env, recipe_dir = fake_cache
    fill(recipe_dir, stamp=recipe_dir.name)
    proc = run(env)
    assert (proc.returncode, proc.stdout) == (0, f"{recipe_dir}/bin\n"), proc.stderr


@pytest.mark.parametrize("stamp", [None, "0000000000000000"], ids=["killed-build", "other-recipe"])
def test_binaries_without_a_matching_stamp_are_rebuilt_not_used(
    fake_cache: tuple[dict[str, str], Path], stamp: str | None
) -> None:
    env, recipe_dir = fake_cache
    fill(recipe_dir, stamp)
    proc = run(env)
    # It went on to build (and the fake go stopped it): the half-made cache was not handed out.
    assert proc.returncode != 0 and proc.stdout == ""
    assert "fake go" in proc.stderr or "error" in proc.stderr


def test_a_second_run_waits_for_the_lock_and_takes_the_first_ones_result(
    fake_cache: tuple[dict[str, str], Path],
) -> None:
    env, recipe_dir = fake_cache
    recipe_dir.mkdir(parents=True)
    with open(recipe_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = subprocess.Popen([str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            assert waiting.poll() is None, "the second run should block on the lock"
            fill(recipe_dir, stamp=recipe_dir.name)  # what the lock holder's build leaves behind
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        out, err = waiting.communicate(timeout=30)
    assert (waiting.returncode, out) == (0, f"{recipe_dir}/bin\n"), err
    assert "another build holds" in err and "built meanwhile" in err
