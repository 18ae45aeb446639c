"""Run a Pulumi program under mocks and record every resource it registers, as the engine would see it.

Used by the unit and conformance tests (wiring, ordering, secrets, schemas) and by ``tools.render``,
which writes what the program would apply to a cluster as YAML files when no kubernetes plugin exists.
The monitor keeps each ``RegisterResource`` request: type, name, parent, provider, dependencies,
``additionalSecretOutputs`` and the inputs *as sent*, so secrets still carry Pulumi's secret signature.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import callback_pb2

T = TypeVar("T")
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


DYNAMIC = "pulumi-python:dynamic:Resource"
"""Type token of every Python dynamic resource."""

MOCK_TOKEN_SECRET = "mock-token-secret-not-real"
"""What a mocked Proxmox API token resource reports as its secret value."""


class RecordingMocks(Mocks):
    """Echo inputs as state; auto-name metadata like the kubernetes provider does; fill token outputs."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Echo the inputs as the resource's state, plus the outputs later components read.

        A Proxmox API token's id and secret exist only once Proxmox minted them; components (CSI, CAPMOX
        credentials) read them, so a mocked token reports a placeholder.
        """
        state = dict(args.inputs)
        metadata = state.get("metadata")
        if isinstance(metadata, dict) and "name" not in metadata:
            state["metadata"] = {**metadata, "name": f"{args.name}{AUTONAME_SUFFIX}"}
        if args.typ == DYNAMIC and "tokenid" in state and "userid" in state:
            state.setdefault("full_tokenid", f"{state['userid']}!{state['tokenid']}")
            state.setdefault("value", MOCK_TOKEN_SECRET)
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Invokes return nothing."""
        return {}, None


class InProcessTransforms:
    """Stands in for the SDK's callback server under mocks: keeps each ``transforms`` function by token.

    With the engine, a resource's transforms (and those of its ancestors) run before it is registered;
    mocks have no engine, so RecordingMonitor runs them itself, in the engine's order: the resource's
    own first, then its parent's, up to the root. An async transform runs to completion on its own
    event loop (the monitor is called from the SDK's worker thread; mocked props hold no Outputs).
    """

    def __init__(self) -> None:
        self.functions: dict[str, pulumi.ResourceTransform] = {}
        self._tokens: dict[pulumi.ResourceTransform, str] = {}

    def register_transform(self, transform: pulumi.ResourceTransform) -> callback_pb2.Callback:
        """Remember ``transform`` and return the callback reference the SDK puts in the request."""
        token = self._tokens.setdefault(transform, f"transform-{len(self._tokens)}")
        self.functions[token] = transform
        return callback_pb2.Callback(token=token, target="in-process")


async def _awaited(value: Awaitable[T]) -> T:
    return await value


class RecordingMonitor(MockMonitor):
    """A MockMonitor that keeps each RegisterResource request, with its transforms applied."""

    def __init__(self, mocks: Mocks, transforms: InProcessTransforms | None = None) -> None:
        super().__init__(mocks)
        self.recording = Recording()
        self.transforms = transforms or InProcessTransforms()
        self._inherited: dict[str, list[str]] = {}

    def _transformed(self, request: Any, tokens: list[str]) -> dict[str, Any]:
        props = rpc.deserialize_properties(request.object)
        for token in tokens:
            args = pulumi.ResourceTransformArgs(
                custom=bool(request.custom),
                type_=request.type,
                name=request.name,
                props=props,
                opts=pulumi.ResourceOptions(),
            )
            result = self.transforms.functions[token](args)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            if result is not None:
                props = dict(result.props)
        return dict(props)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Register as the mock monitor does, and keep the request (inputs after the transforms)."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        tokens = [c.token for c in request.transforms] + self._inherited.get(request.parent, [])
        self._inherited[response.urn] = tokens
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
                    raw_inputs=self._transformed(request, tokens),
                    id=response.id,
                    ignore_changes=list(request.ignoreChanges),
                )
            )
        return response


def record(
    program: Callable[[], object],
    *,
    project: str = "platform",
    stack: str = "test",
    mocks: Mocks | None = None,
    monitor: RecordingMonitor | None = None,
) -> Recording:
    """Run ``program`` under recording mocks (or ``monitor``) on a fresh event loop; return what it registered."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = mocks or RecordingMocks()
    monitor = monitor or RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    settings.SETTINGS.callbacks = monitor.transforms
    try:

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def run() -> object:
            return program()

        run()
    finally:
        settings.SETTINGS.callbacks = None
        loop.close()
        asyncio.set_event_loop(None)
    return monitor.recording


PLACEHOLDER_SECRET = "<placeholder: secret>"
"""What a ``secure:`` value of a stack file stands for when the program runs under mocks."""


def stack_config(stack: str, root: Path, project: str = "proxmox-k8s-platform") -> tuple[dict[str, str], list[str]]:
    """A stack file's config as the engine passes it to a program (secrets as placeholders), and the secret keys."""
    import json

    import yaml

    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.stem[7:] for p in root.glob("Pulumi.*.yaml"))
        raise SystemExit(f"no stack file {path.name}: known stacks are {known}")
    data = yaml.safe_load(path.read_text()) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = PLACEHOLDER_SECRET
            secret_keys.append(full)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


def record_stack(
    stack: str, root: Path, project: str = "proxmox-k8s-platform", secrets: Mapping[str, str] | None = None
) -> Recording:
    """Run the program's Platform under mocks with a stack file's config and record what it registers.

    ``secrets`` adds secret config values the stack file does not hold (keys without the project prefix),
    e.g. the ``managementKubeconfig`` the local stack is given at run time.
    """
    from components.platform import Platform, PlatformArgs
    from config import read_stack_config, read_stack_secrets

    config, secret_keys = stack_config(stack, root, project)
    for key, value in (secrets or {}).items():
        config[f"{project}:{key}"] = value
        secret_keys.append(f"{project}:{key}")

    def program() -> None:
        pulumi.runtime.set_all_config(config, secret_keys)
        cfg = read_stack_config(pulumi.Config())
        Platform("platform", PlatformArgs(config=cfg, secrets=read_stack_secrets(pulumi.Config(), cfg)))

    return record(program, project=project, stack=stack)
