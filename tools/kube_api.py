"""A local Kubernetes API server (etcd, kube-apiserver, kube-controller-manager) for the local stack and the tests.

Local scaffolding only: the Pulumi program never imports this module. The binaries come from
``scripts/kube-toolchain.sh`` (built from Go modules, cached outside the repository), or from
``$KUBE_TOOLCHAIN_BIN`` when that names a directory holding all three.

What runs, all bound to one loopback address (127.0.0.0/8, never 0.0.0.0) on free ports:

* etcd, TLS with client certificates (so no other local user can read the cluster's secrets);
* kube-apiserver with RBAC, no anonymous access, privileged containers allowed and the webhook
  admission plugins off (see ``DISABLED_ADMISSION_PLUGINS``);
* kube-controller-manager with only the namespace and garbage-collector controllers, so namespace
  deletion and foreground deletion (the Pulumi provider's default) complete. No scheduler and no
  kubelet run: Pods are stored but never scheduled.

Every start is a fresh cluster (new PKI, empty etcd). Command line:

    python -m tools.kube_api start            # prints the admin kubeconfig path when /readyz is ok
    python -m tools.kube_api stop
    python -m tools.kube_api status           # exit 0 when running, 3 when not
    python -m tools.kube_api env              # prints `export KUBECONFIG=...` for eval
    python -m tools.kube_api preload-crds [DIR]

Tests use ``LocalKubeApi`` as a context manager in a temporary directory.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fcntl
import functools
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import requests
import yaml

REPO: Final = Path(__file__).resolve().parents[1]
STATE_DIR: Final = ".local/kube"
"""Default state directory, relative to the working directory (the repository root for the Makefile)."""
DEFAULT_HOST: Final = "127.0.0.3"
"""Loopback address of the command-line server (the simulator uses 127.0.0.2)."""
BINARIES: Final = ("etcd", "kube-apiserver", "kube-controller-manager")
BIN_ENV: Final = "KUBE_TOOLCHAIN_BIN"
CRDS_ENV: Final = "PLATFORM_CRDS_DIR"
DEFAULT_CRDS_DIR: Final = REPO.parent / "shared" / "reference" / "crds"

DISABLED_ADMISSION_PLUGINS: Final = ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")
"""Admission plugins turned off.

The platform installs webhook configurations (cert-manager, Cluster API and its providers, Kamaji,
Kube-OVN...) whose backends are Pods. No scheduler or kubelet runs here, so those Pods never serve,
and with the webhook plugins on, every write the webhooks match would fail (``failurePolicy: Fail``)
or wait for the call to time out. The configurations are still stored and validated; they are
simply not called. Everything else (RBAC, schema and CEL validation, ValidatingAdmissionPolicy) is on.
"""

SERVICE_CIDR: Final = "10.96.0.0/16"
"""Only allocated from: no traffic goes to it. Its first address is the ``kubernetes`` Service."""
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS: Final = ("namespace", "garbagecollector", "resourcequota")
"""The controllers whose absence would stall the kubernetes provider: a deleted Namespace finalized, a
foreground delete completed, and a ResourceQuota's status filled (the provider waits for it)."""
CERT_VALIDITY: Final = datetime.timedelta(days=30)
"""Certificates are regenerated at every start; 30 days outlives any local session."""
CRD_PRELOAD_PATTERNS: Final = ("capi_*.yaml", "capmox_*.yaml", "capi-ipam_*.yaml", "capi-kamaji_*.yaml", "caaph_*.yaml")
"""CRDs that the Cluster API operator installs at run time from provider releases (out of reach offline)."""
CRD_FIELD_MANAGER: Final = "platform-local-crd-preload"

ETCD_TIMEOUT: Final = 30.0
APISERVER_TIMEOUT: Final = 120.0
"""Bound on kube-apiserver readiness: 3-4 s on an idle 2-core machine, far more under a parallel build."""
CONTROLLERS_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 20.0
"""SIGTERM, then SIGKILL after this many seconds (the apiserver drains gracefully in ~5 s)."""

_YAML_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml when available: the CAPI CRD files are megabytes, the pure-Python loader takes seconds."""

Progress = Callable[[str], None]


class KubeApiError(RuntimeError):
    """The local control plane could not be built, started, stopped or used."""


class CrdsNotFoundError(KubeApiError):
    """The reference CRD directory is absent or holds none of the preloaded CRD files."""


def _stderr(message: str) -> None:
    print(f"kube-api: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Binaries


def find_binaries(progress: Progress = _stderr) -> Path:
    """The bin dir with etcd, kube-apiserver and kube-controller-manager: ``$KUBE_TOOLCHAIN_BIN`` or a build."""
    given = os.environ.get(BIN_ENV)
    if given:
        path = Path(given)
        missing = [name for name in BINARIES if not os.access(path / name, os.X_OK)]
        if missing:
            raise KubeApiError(f"{BIN_ENV}={given} lacks {', '.join(missing)}")
        return path
    script = REPO / "scripts" / "kube-toolchain.sh"
    started = time.monotonic()
    # stderr passes through: a cold build takes minutes and prints its phases.
    proc = subprocess.run([str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise KubeApiError(f"{script.name} failed (exit {proc.returncode}); its messages are above")
    progress(f"binaries ready ({time.monotonic() - started:.1f}s)")
    return Path(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the certificates and keys of one local control plane (PEM files)."""

    directory: Path

    def path(self, name: str) -> Path:
        """``<directory>/<name>``."""
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        """The CA every component and client trusts."""
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        """The CA's private key (signs further client certificates)."""
        return self.path("ca.key")


def _write_private(path: Path, data: bytes) -> None:
    # Keys are created 0600 from the start, never world-readable for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    # ECDSA P-256: generated in milliseconds (RSA 2048 takes ~0.1 s each), supported by every component.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _load_ca(pki: Pki) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    return cert, key


def issue_certificate(
    pki: Pki,
    name: str,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    hosts: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> tuple[Path, Path]:
    """Sign a leaf certificate with the CA; write ``<name>.crt`` and ``<name>.key``; return their paths.

    ``organizations`` become the Kubernetes groups of a client certificate; ``hosts`` (IPs or DNS
    names) become subject alternative names of a serving certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert, ca_key = _load_ca(pki)
    key = _new_key()
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    if not usages:
        raise ValueError("a certificate needs server=True, client=True or both")
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = pki.path(f"{name}.crt"), pki.path(f"{name}.key")
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def make_pki(directory: Path, host: str) -> Pki:
    """A fresh CA, serving certificates for ``host``, the component and admin client certificates, SA keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca_key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "platform-local-ca")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(pki.ca_key, _key_pem(ca_key))
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    loopback = [*sorted({host, "127.0.0.1"}), "localhost"]
    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    in_cluster = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    issue_certificate(
        pki, "apiserver", common_name="kube-apiserver", hosts=[*loopback, service_ip, *in_cluster], server=True
    )
    # etcd's one certificate serves clients and peers and authenticates it to its peer listener.
    issue_certificate(pki, "etcd", common_name="etcd", hosts=loopback, server=True, client=True)
    issue_certificate(pki, "apiserver-etcd-client", common_name="kube-apiserver-etcd-client", client=True)
    issue_certificate(
        pki, "controller-manager-serving", common_name="kube-controller-manager", hosts=loopback, server=True
    )
    # The controller manager runs the namespace controller with its own credentials (no token
    # controller runs to mint per-controller service accounts), and that controller deletes every
    # kind of object: hence system:masters rather than the narrower bootstrap role.
    issue_certificate(
        pki,
        "controller-manager",
        common_name="system:kube-controller-manager",
        organizations=["system:masters"],
        client=True,
    )
    issue_certificate(pki, "admin", common_name="platform-local-admin", organizations=["system:masters"], client=True)

    sa_key = _new_key()
    _write_private(pki.path("sa.key"), _key_pem(sa_key))
    pki.path("sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def write_kubeconfig(path: Path, *, server: str, ca: Path, cert: Path, key: Path, name: str = "platform-local") -> Path:
    """A self-contained kubeconfig (certificates embedded), mode 0600."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": name, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class ProcessRecord:
    """A process we started, with what identifies it beyond its PID (PIDs are reused)."""

    name: str
    pid: int
    argv: list[str]
    start_ticks: int
    log: str


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _proc_argv(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def is_ours(record: ProcessRecord) -> bool:
    """True if ``record.pid`` is alive and still the process we started (same start time and command line)."""
    stat = _proc_stat(record.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    if stat[1] != record.start_ticks:
        return False
    actual = _proc_argv(record.pid) or []
    # An interpreter script (a stand-in binary in tests) shows as `interpreter [arg] script args...`.
    return actual == record.argv or (
        len(actual) - len(record.argv) in (1, 2) and actual[-len(record.argv) :] == record.argv
    )


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (VmRSS), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def strays(state_dir: Path, bin_names: Sequence[str] = BINARIES) -> list[int]:
    """PIDs running one of our binaries with arguments inside ``state_dir`` (runs whose record was lost)."""
    marker = str(state_dir.resolve()) + os.sep
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _proc_argv(int(entry.name))
        if not argv or os.path.basename(argv[0]) not in bin_names:
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if any(marker in arg for arg in argv[1:]):
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, popen: subprocess.Popen[bytes] | None, check: Callable[[], bool], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if popen is not None:
            popen.poll()  # reap our own child, or it lingers as a zombie
        if not check():
            return True
        time.sleep(0.05)
    return not check()


Target = tuple[int, Callable[[], bool], "subprocess.Popen[bytes] | None"]
"""A PID, a check that it is still the process we mean, and its Popen if it is our child (to reap it)."""


def terminate(targets: Sequence[Target], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every target still ``check()``-ed as ours, then SIGKILL those alive after ``timeout``."""
    live = [t for t in targets if t[1]()]
    for pid, _check, _popen in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid, check, popen in live:
        if not _wait_gone(pid, popen, check, deadline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, popen, check, time.monotonic() + 5)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(5)


# ---------------------------------------------------------------------------------------------
# State


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def read_state(state_dir: Path) -> dict[str, Any]:
    """The state file of ``state_dir`` (empty if none or unreadable)."""
    try:
        data = json.loads(_state_file(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_processes(state_dir: Path) -> list[ProcessRecord]:
    """Processes recorded by the last run in ``state_dir``, in start order."""
    records = []
    for item in read_state(state_dir).get("processes", []):
        with contextlib.suppress(TypeError, KeyError):
            records.append(ProcessRecord(**item))
    return records


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    # Serialises start and stop on one state directory (two starts would kill each other's processes).
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stop_unlocked(state_dir: Path, popens: dict[int, subprocess.Popen[bytes]] | None = None) -> list[str]:
    """Stop the recorded processes still ours, newest first, and any stray; return what was stopped."""
    popens = popens or {}
    records = recorded_processes(state_dir)
    stopped = []
    # The controller manager and the apiserver go first, together; etcd last, so the apiserver
    # can drain against a live etcd.
    for group in ([r for r in records if r.name != "etcd"], [r for r in records if r.name == "etcd"]):
        batch: list[Target] = []
        for record in reversed(group):
            if is_ours(record):
                batch.append((record.pid, functools.partial(is_ours, record), popens.get(record.pid)))
                stopped.append(f"{record.name} (pid {record.pid})")
        terminate(batch)
    leftover = strays(state_dir)
    if leftover:
        stopped += [f"stray pid {pid}" for pid in leftover]
        terminate([(pid, functools.partial(_alive, pid), popens.get(pid)) for pid in leftover])
    for popen in popens.values():
        popen.poll()  # reap children that had already exited on their own
    with contextlib.suppress(FileNotFoundError):
        _state_file(state_dir).unlink()
    return stopped


def stop(state_dir: Path) -> list[str]:
    """Stop what the last run in ``state_dir`` started (only processes still verifiably ours)."""
    with _locked(state_dir):
        return _stop_unlocked(state_dir)


def _free_ports(host: str, count: int) -> list[int]:
    # All sockets stay open until every port is picked, so the ports are distinct.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def _check_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise KubeApiError(f"host must be an IPv4 loopback address, got {host!r}") from exc
    if address.version != 4 or not address.is_loopback:
        raise KubeApiError(f"the local API server binds 127.0.0.0/8 only, got {host}")


# ---------------------------------------------------------------------------------------------
# The control plane


@dataclass
class LocalKubeApi:
    """etcd + kube-apiserver (+ kube-controller-manager) in ``directory``; a context manager for tests.

    ``start()`` first stops whatever an earlier run in the same directory left running (recorded
    processes still ours, and strays whose arguments point into the directory).
    """

    directory: Path
    host: str = "127.0.0.1"
    bin_dir: Path | None = None
    kubeconfig: Path | None = None
    controllers: bool = True
    disabled_admission_plugins: Sequence[str] = DISABLED_ADMISSION_PLUGINS
    progress: Progress = _stderr
    apiserver_timeout: float = APISERVER_TIMEOUT
    url: str = field(default="", init=False)
    pki: Pki | None = field(default=None, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)
    _popens: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_loopback(self.host)
        self.directory = Path(self.directory).resolve()
        self.kubeconfig = Path(self.kubeconfig).resolve() if self.kubeconfig else self.directory / "admin.kubeconfig"

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalKubeApi:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalKubeApi:
        """Start a fresh control plane and wait until it serves; on failure, stop it and raise with log tails."""
        with _locked(self.directory):
            stopped = _stop_unlocked(self.directory)
            if stopped:
                self.progress(f"stopped what a previous run left: {', '.join(stopped)}")
            try:
                self._start_unlocked()
            except BaseException:
                _stop_unlocked(self.directory, self._popens)
                raise
        return self

    def stop(self) -> None:
        """Stop the processes of this directory's last run (ours only: PID, start time and command line match)."""
        started = time.monotonic()
        with _locked(self.directory):
            stopped = _stop_unlocked(self.directory, self._popens)
        self._popens.clear()
        if stopped:
            self.progress(f"stopped {', '.join(stopped)} ({time.monotonic() - started:.1f}s)")

    def processes(self) -> list[ProcessRecord]:
        """The processes of the current run, in start order."""
        return recorded_processes(self.directory)

    # -- helpers for tests ------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signs the apiserver's serving certificate."""
        if self.pki is None:
            raise KubeApiError("not started")
        return self.pki.ca_cert

    def client_certificate(self, user: str, groups: Sequence[str] = ()) -> tuple[Path, Path]:
        """A client certificate (cert, key) for ``user`` in ``groups``, signed by this cluster's CA."""
        if self.pki is None:
            raise KubeApiError("not started")
        safe = "".join(c if c.isalnum() else "-" for c in user)
        return issue_certificate(self.pki, f"user-{safe}", common_name=user, organizations=groups, client=True)

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` with the admin credentials."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # -- internals --------------------------------------------------------------------------

    def _phase(self, name: str, started: float) -> None:
        self.timings[name] = time.monotonic() - started
        self.progress(f"{name} ({self.timings[name]:.1f}s)")

    def _record_state(self, records: list[ProcessRecord]) -> None:
        state = {
            "host": self.host,
            "url": self.url,
            "kubeconfig": str(self.kubeconfig),
            "processes": [asdict(r) for r in records],
        }
        tmp = _state_file(self.directory).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(_state_file(self.directory))

    def _spawn(self, name: str, argv: list[str], records: list[ProcessRecord]) -> ProcessRecord:
        log = self.directory / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as handle:
            # A session of its own: a Ctrl-C in the terminal that ran `start` does not reach it,
            # and the process outlives the command-line `start`.
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._popens[popen.pid] = popen
        stat = _proc_stat(popen.pid)
        record = ProcessRecord(name, popen.pid, argv, stat[1] if stat else -1, str(log))
        records.append(record)
        # Recorded at once, so a start killed from here on leaves a record the next start acts on.
        self._record_state(records)
        return record

    def _wait(
        self, what: str, record: ProcessRecord, timeout: float, probe: Callable[[], bool], logs: Sequence[Path]
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            popen = self._popens[record.pid]
            if popen.poll() is not None:
                raise KubeApiError(
                    f"{record.name} exited with {popen.returncode} before {what}; last lines of {record.log}:\n"
                    + _tail(Path(record.log))
                )
            try:
                if probe():
                    return
            except (requests.RequestException, OSError, ValueError):
                pass
            time.sleep(0.2)
        tails = "\n".join(f"--- {log} ---\n{_tail(log)}" for log in logs)
        raise KubeApiError(f"{record.name}: not {what} after {timeout:g}s\n{tails}")

    def _start_unlocked(self) -> None:
        total = time.monotonic()
        self.timings.clear()
        self._popens.clear()
        bin_dir = Path(self.bin_dir) if self.bin_dir else find_binaries(self.progress)
        for sub in ("pki", "etcd-data", "apiserver-certs"):
            # Every start is a fresh cluster: an old etcd under a new CA and SA key would hold tokens
            # and certificates that no longer verify.
            shutil.rmtree(self.directory / sub, ignore_errors=True)

        started = time.monotonic()
        pki = self.pki = make_pki(self.directory / "pki", self.host)
        self._phase("PKI generated", started)

        etcd_port, peer_port, api_port, kcm_port = _free_ports(self.host, 4)
        host = self.host
        records: list[ProcessRecord] = []
        client_cert = (str(pki.path("apiserver-etcd-client.crt")), str(pki.path("apiserver-etcd-client.key")))

        started = time.monotonic()
        etcd_url, peer_url = f"https://{host}:{etcd_port}", f"https://{host}:{peer_port}"
        etcd_tls = [f"--cert-file={pki.path('etcd.crt')}", f"--key-file={pki.path('etcd.key')}"]
        etcd = self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=platform-local",
                f"--data-dir={self.directory / 'etcd-data'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=platform-local={peer_url}",
                "--initial-cluster-state=new",
                *etcd_tls,
                "--client-cert-auth",
                f"--trusted-ca-file={pki.ca_cert}",
                *(f"--peer-{flag[2:]}" for flag in etcd_tls),
                "--peer-client-cert-auth",
                f"--peer-trusted-ca-file={pki.ca_cert}",
                # Throwaway data: skipping fsync makes writes (CRD applies) much faster on slow disks.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            records,
        )

        def etcd_healthy() -> bool:
            answer = requests.get(f"{etcd_url}/health", cert=client_cert, verify=str(pki.ca_cert), timeout=2)
            return bool(answer.ok and answer.json().get("health") == "true")

        self._wait("healthy", etcd, ETCD_TIMEOUT, etcd_healthy, [Path(etcd.log)])
        self._phase("etcd healthy", started)

        started = time.monotonic()
        self.url = f"https://{host}:{api_port}"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--bind-address={host}",
                f"--advertise-address={host}",
                f"--secure-port={api_port}",
                f"--etcd-servers={etcd_url}",
                f"--etcd-cafile={pki.ca_cert}",
                f"--etcd-certfile={client_cert[0]}",
                f"--etcd-keyfile={client_cert[1]}",
                f"--client-ca-file={pki.ca_cert}",
                f"--tls-cert-file={pki.path('apiserver.crt')}",
                f"--tls-private-key-file={pki.path('apiserver.key')}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.path('sa.pub')}",
                f"--service-account-signing-key-file={pki.path('sa.key')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # Only certificate holders get in: an unauthenticated request is refused (401).
                "--anonymous-auth=false",
                # CNI and CSI charts (Cilium, Kube-OVN, proxmox-csi) run privileged DaemonSets.
                "--allow-privileged=true",
                # A loopback advertise address is not a valid Endpoints IP.
                "--endpoint-reconciler-type=none",
                *(
                    [f"--disable-admission-plugins={','.join(self.disabled_admission_plugins)}"]
                    if self.disabled_admission_plugins
                    else []
                ),
                # Unused (tls-cert-file is set) but keeps the default /var/run/kubernetes out of it.
                f"--cert-dir={self.directory / 'apiserver-certs'}",
                "--profiling=false",
            ],
            records,
        )
        admin_cert = (str(pki.path("admin.crt")), str(pki.path("admin.key")))

        def apiserver_ready() -> bool:
            answer = requests.get(f"{self.url}/readyz", cert=admin_cert, verify=str(pki.ca_cert), timeout=5)
            return answer.status_code == 200 and answer.text == "ok"

        self._wait(
            "ready (/readyz)", apiserver, self.apiserver_timeout, apiserver_ready, [Path(apiserver.log), Path(etcd.log)]
        )
        assert self.kubeconfig is not None
        write_kubeconfig(
            self.kubeconfig, server=self.url, ca=pki.ca_cert, cert=pki.path("admin.crt"), key=pki.path("admin.key")
        )
        self._phase(f"kube-apiserver ready at {self.url}", started)

        if self.controllers:
            started = time.monotonic()
            kcm_config = write_kubeconfig(
                self.directory / "controller-manager.kubeconfig",
                server=self.url,
                ca=pki.ca_cert,
                cert=pki.path("controller-manager.crt"),
                key=pki.path("controller-manager.key"),
            )
            kcm = self._spawn(
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={kcm_config}",
                    f"--controllers={','.join(CONTROLLERS)}",
                    "--leader-elect=false",
                    f"--bind-address={host}",
                    f"--secure-port={kcm_port}",
                    f"--tls-cert-file={pki.path('controller-manager-serving.crt')}",
                    f"--tls-private-key-file={pki.path('controller-manager-serving.key')}",
                    f"--cert-dir={self.directory / 'apiserver-certs'}",
                    "--profiling=false",
                ],
                records,
            )

            def controllers_healthy() -> bool:
                # /healthz includes a check per started controller; allowed without credentials.
                answer = requests.get(f"https://{host}:{kcm_port}/healthz", verify=str(pki.ca_cert), timeout=5)
                return answer.status_code == 200 and answer.text == "ok"

            self._wait("healthy", kcm, CONTROLLERS_TIMEOUT, controllers_healthy, [Path(kcm.log)])
            self._phase("kube-controller-manager healthy (" + ", ".join(CONTROLLERS) + ")", started)
        self.timings["total"] = time.monotonic() - total


# ---------------------------------------------------------------------------------------------
# CRD preload (local scaffolding: a controller installs these at run time on a real cluster)


def crds_dir(directory: str | Path | None = None) -> Path:
    """The CRD directory: ``directory``, else ``$PLATFORM_CRDS_DIR``, else ``../shared/reference/crds``."""
    return Path(directory or os.environ.get(CRDS_ENV) or DEFAULT_CRDS_DIR)


def crd_files(directory: str | Path | None = None, patterns: Sequence[str] | None = None) -> list[Path]:
    """The CRD files to preload, sorted; raise ``CrdsNotFoundError`` (saying what to set) if there are none."""
    patterns = tuple(patterns or CRD_PRELOAD_PATTERNS)
    path = crds_dir(directory)
    if not path.is_dir():
        raise CrdsNotFoundError(
            f"CRD directory {path} not found: pass a directory or set {CRDS_ENV} "
            "(the reference CRDs live beside the checkout in ../shared/reference/crds)"
        )
    files = sorted({f for pattern in patterns for f in path.glob(pattern)})
    if not files:
        raise CrdsNotFoundError(f"no {', '.join(patterns)} in {path}")
    return files


def crd_documents(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in ``files``."""
    documents = []
    for file in files:
        for doc in yaml.load_all(file.read_text(), Loader=_YAML_LOADER):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                documents.append(doc)
    return documents


def _established(crd: Any) -> bool:
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def preload_crds(
    kubeconfig: str | Path,
    directory: str | Path | None = None,
    *,
    timeout: float = 120.0,
    progress: Progress = _stderr,
    patterns: Sequence[str] | None = None,
) -> list[str]:
    """Server-side apply the Cluster API providers' CRDs (or the files matching ``patterns``), wait until
    all are Established; return their names."""
    from kubernetes import client, config

    files = crd_files(directory, patterns)
    documents = crd_documents(files)
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    api = client.ApiextensionsV1Api(api_client)
    started = time.monotonic()
    names = []
    try:
        for doc in documents:
            name = doc["metadata"]["name"]
            # The typed client cannot send an apply patch (it picks JSON patch for dict bodies),
            # so the request goes through the client's generic call with the apply content type.
            api_client.call_api(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                "PATCH",
                path_params={"name": name},
                query_params=[("fieldManager", CRD_FIELD_MANAGER), ("force", "true")],
                header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
                body=doc,
                response_type=None,  # nothing read back here: Established is polled below
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
            names.append(name)
        progress(f"applied {len(names)} CRDs from {len(files)} files in {crds_dir(directory)}")
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not _established(api.read_custom_resource_definition(n))]
            if pending:
                time.sleep(0.2)
        if pending:
            raise KubeApiError(f"CRDs not Established after {timeout:g}s: {', '.join(pending)}")
    finally:
        api_client.close()
    progress(f"CRDs Established: {len(names)} ({time.monotonic() - started:.1f}s)")
    return names


# ---------------------------------------------------------------------------------------------
# Command line


@dataclass(frozen=True)
class NodeRegistration:
    """A Node as its kubelet would register it: name, InternalIP and whether it is a control plane."""

    name: str
    address: str
    control_plane: bool = False


def register_nodes(
    kubeconfig: str | Path, nodes: Sequence[NodeRegistration], progress: Progress = _stderr
) -> list[str]:
    """Create the Node objects the kubelets of ``nodes`` would register (no kubelet runs here).

    Local scaffolding for a cluster "bootstrapped elsewhere": on a real one the nodes have joined before
    the program runs, with the labels every kubelet sets and their InternalIP. The program patches them
    (topology labels) and charts look them up (Kube-OVN); neither may create or own them. Existing
    Nodes are left as they are. Returns the names created.
    """
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    created = []
    try:
        for node in nodes:
            labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
            if node.control_plane:
                labels["node-role.kubernetes.io/control-plane"] = ""
            body = {"metadata": {"name": node.name, "labels": labels}}
            try:
                api.create_node(body, field_manager="kubelet")
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue
            status = {"status": {"addresses": [{"type": "InternalIP", "address": node.address}]}}
            api.patch_node_status(node.name, status, field_manager="kubelet")
            created.append(node.name)
    finally:
        api.api_client.close()
    if created:
        progress(f"registered nodes (local scaffolding, as their kubelets would): {', '.join(created)}")
    return created


def serving(state_dir: Path) -> bool:
    """Whether the control plane recorded in ``state_dir`` runs and answers ``/readyz`` with ``ok``."""
    if not _status(state_dir)[0]:
        return False
    state = read_state(state_dir)
    pki = Pki(state_dir / "pki")
    try:
        answer = requests.get(
            f"{state['url']}/readyz",
            cert=(str(pki.path("admin.crt")), str(pki.path("admin.key"))),
            verify=str(pki.ca_cert),
            timeout=5,
        )
    except (requests.RequestException, KeyError, OSError):
        return False
    return answer.status_code == 200 and answer.text == "ok"


def ensure(state_dir: Path, host: str = DEFAULT_HOST, progress: Progress = _stderr) -> tuple[Path, bool]:
    """The admin kubeconfig of a serving control plane in ``state_dir``: the running one (reused, so a
    second ``make up`` finds the objects the first applied) or a fresh one. Returns (kubeconfig, reused)."""
    if serving(state_dir):
        progress(f"reusing the running API server at {read_state(state_dir)['url']}")
        return Path(read_state(state_dir)["kubeconfig"]), True
    api = LocalKubeApi(state_dir, host=host, progress=progress)
    api.start()
    assert api.kubeconfig is not None
    return api.kubeconfig, False


def _status(state_dir: Path) -> tuple[bool, list[str]]:
    records = recorded_processes(state_dir)
    lines = []
    for record in records:
        if is_ours(record):
            rss = rss_bytes(record.pid) or 0
            lines.append(f"{record.name}: running, pid {record.pid}, RSS {rss / 2**20:.0f} MiB")
        else:
            lines.append(f"{record.name}: not running (pid {record.pid} recorded)")
    up = bool(records) and all(is_ours(r) for r in records)
    return up, lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start | stop | status | env | preload-crds."""
    parser = argparse.ArgumentParser(prog="python -m tools.kube_api", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env", "preload-crds"])
    parser.add_argument(
        "crds", nargs="?", help="preload-crds: CRD directory (default $PLATFORM_CRDS_DIR or ../shared/reference/crds)"
    )
    parser.add_argument(
        "--dir", default=os.environ.get("KUBE_API_DIR", STATE_DIR), help="state directory (default .local/kube)"
    )
    parser.add_argument(
        "--host", default=os.environ.get("KUBE_API_HOST", DEFAULT_HOST), help="loopback address to bind"
    )
    parser.add_argument("--kubeconfig", help="admin kubeconfig to write/use (default <dir>/admin.kubeconfig)")
    parser.add_argument("--no-controllers", action="store_true", help="start: no kube-controller-manager")
    args = parser.parse_args(argv)
    state_dir = Path(args.dir).resolve()
    try:
        if args.command == "start":
            api = LocalKubeApi(
                state_dir, host=args.host, kubeconfig=args.kubeconfig, controllers=not args.no_controllers
            )
            api.start()
            _stderr(
                f'ready in {api.timings["total"]:.1f}s: {api.url}; use it with: eval "$(python -m tools.kube_api env)"'
            )
            print(api.kubeconfig)
        elif args.command == "stop":
            started = time.monotonic()
            stopped = stop(state_dir)
            _stderr(
                f"stopped {', '.join(stopped)} ({time.monotonic() - started:.1f}s)"
                if stopped
                else "nothing was running"
            )
        elif args.command == "status":
            up, lines = _status(state_dir)
            print(f"running {read_state(state_dir).get('url', '')}" if up else "stopped")
            for line in lines:
                print(f"  {line}")
            return 0 if up else 3
        elif args.command == "env":
            up, _ = _status(state_dir)
            if not up:
                raise KubeApiError("not running: python -m tools.kube_api start")
            print(f"export KUBECONFIG={shlex.quote(read_state(state_dir)['kubeconfig'])}")
        else:
            kubeconfig = args.kubeconfig
            if not kubeconfig:
                # Only our own server's kubeconfig, never $KUBECONFIG: that may name a real cluster.
                if not _status(state_dir)[0]:
                    raise KubeApiError("not running: python -m tools.kube_api start (or pass --kubeconfig)")
                kubeconfig = read_state(state_dir)["kubeconfig"]
            preload_crds(kubeconfig, args.crds)
    except KubeApiError as exc:
        _stderr(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
