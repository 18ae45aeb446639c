"""Run a Pulumi program under mocks and record every resource it registers, as the engine would see it.

Used by the unit and conformance tests (wiring, ordering, secrets, schemas) and by ``tools.render``,
which writes what the program would apply to a cluster as YAML files when no kubernetes plugin exists.
The monitor keeps each ``RegisterResource`` request: type, name, parent, provider, dependencies,
``additionalSecretOutputs`` and the inputs *as sent*, so secrets still carry Pulumi's secret signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART = "kubernetes:helm.sh/v4:Chart"
PROVIDER_NAME = "mgmt-k8s"
AUTONAME_SUFFIX = "-a1b2c3d4"


def unwrap(value: Any) -> Any:
    """Strip Pulumi secret wrappers recursively (what the provider would finally send)."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    """Whether a Pulumi secret wrapper occurs anywhere in ``value``."""
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def plaintext_strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` that is *not* inside a secret wrapper."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from plaintext_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plaintext_strings(v)


@dataclass
class Registration:
    """One ``RegisterResource`` request as the engine would have received it."""

    type: str
    name: str
    urn: str
    custom: bool
    remote: bool
    parent: str
    provider: str
    providers: dict[str, str]
    dependencies: list[str]
    additional_secret_outputs: list[str]
    raw_inputs: dict[str, Any]
    id: str = ""
    ignore_changes: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secret wrappers removed."""
        result: dict[str, Any] = unwrap(self.raw_inputs)
        return result

    @property
    def object_name(self) -> str:
        """``metadata.name`` as the provider would set it (auto-named objects get the mock's suffix)."""
        name = self.inputs.get("metadata", {}).get("name")
        return str(name) if name else f"{self.name}{AUTONAME_SUFFIX}"

    def depends_on(self, other: Registration) -> bool:
        """Whether ``other`` is among this resource's dependencies."""
        return other.urn in self.dependencies


@dataclass
class Recording:
    """All registrations of one program run."""

    registrations: list[Registration] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registration]:
        """Registrations of one type token."""
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        """The single registration with logical name ``name``."""
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {[r.type for r in found]}"
        return found[0]

    def kind(self, kind: str) -> list[Registration]:
        """Kubernetes objects of ``kind`` (by the last segment of the type token)."""
        return [r for r in self.registrations if r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")]

    def kubernetes_objects(self) -> list[Registration]:
        """Every Kubernetes object the program emits (not charts/releases, not providers)."""
        return [
            r for r in self.registrations if r.custom and r.type.startswith("kubernetes:") and r.type not in (RELEASE,)
        ]

    def provider_urn(self) -> str:
        """URN of the explicit kubernetes provider."""
        return self.named(PROVIDER_NAME).urn


class RecordingMocks(Mocks):
    """Echo inputs as state; auto-name metadata like the kubernetes provider does."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Echo the inputs as the resource's state."""
        state = dict(args.inputs)
        metadata = state.get("metadata")
        if isinstance(metadata, dict) and "name" not in metadata:
            state["metadata"] = {**metadata, "name": f"{args.name}{AUTONAME_SUFFIX}"}
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Invokes return nothing."""
        return {}, None


class RecordingMonitor(MockMonitor):
    """A MockMonitor that keeps each RegisterResource request."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.recording = Recording()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Register as the mock monitor does, and keep the request."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.recording.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    custom=bool(request.custom),
                    remote=bool(request.remote),
                    parent=request.parent,
                    provider=request.provider,
                    providers=dict(request.providers),
                    dependencies=list(request.dependencies),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    raw_inputs=rpc.deserialize_properties(request.object),
                    id=response.id,
                    ignore_changes=list(request.ignoreChanges),
                )
            )
        return response


def record(
    program: Callable[[], object], *, project: str = "platform", stack: str = "test", mocks: Mocks | None = None
) -> Recording:
    """Run ``program`` under recording mocks on a fresh event loop and return what it registered."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = mocks or RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    try:

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def run() -> object:
            return program()

        run()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return monitor.recording
