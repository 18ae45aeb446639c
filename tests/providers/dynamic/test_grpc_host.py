"""The ProxmoxVm provider served by ``python -m pulumi.dynamic`` and driven over gRPC, as the engine does.

The provider travels as it will in state: dill-pickled into ``__provider``. The simulator runs in this
process on loopback; the provider process reaches it over verified TLS with the credentials it received
through Configure (never through the pickle).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickletools
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc

from providers.dynamic.vm import ProxmoxVmProvider
from tests.providers.test_legacy import LEGACY_PICKLES
from tests.support.paths import REPO
from tests.support.simulator import TOKEN_ID, TOKEN_SECRET, seed
from tests.support.specs import vm_inputs

PROJECT = "proxmox-k8s-platform"
URN = f"urn:pulumi:test::{PROJECT}::pulumi-python:dynamic:Resource::cp-1"

pytestmark = pytest.mark.protocol


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return asyncio.run(rpc.serialize_properties(props, {}))


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, True))


@pytest.fixture
def provider_blob() -> str:
    blob: str = serialize_provider(ProxmoxVmProvider())
    return blob


@pytest.fixture
def stub(fakepve: Any, fakepve_cafile: str) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    seed(fakepve)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXMOX_")}
    env.update(PULUMI_PROJECT=PROJECT, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        config = {
            f"{PROJECT}:proxmox": json.dumps(
                {"endpoint": fakepve.url, "tokenId": TOKEN_ID, "caBundle": fakepve_cafile, "verifyTls": True}
            ),
            f"{PROJECT}:proxmoxTokenSecret": TOKEN_SECRET,
        }
        stub.Configure(proto.ConfigureRequest(args=to_struct(config)))
        yield stub
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_provider_pickles_by_reference_without_credentials(provider_blob: str) -> None:
    raw = base64.b64decode(provider_blob)
    listing = StringIO()
    pickletools.dis(raw, out=listing)
    text = listing.getvalue()
    # By reference: the pickle names the class; no code object, closure or module globals are inside.
    assert "providers.dynamic.vm" in text and "ProxmoxVmProvider" in text
    assert "_create_code" not in text and "_create_function" not in text and "_create_type" not in text
    assert len(raw) < 200
    assert TOKEN_SECRET.encode() not in raw and b"token" not in raw.lower()


def test_full_lifecycle_over_grpc(stub: Any, provider_blob: str, fakepve: Any) -> None:
    inputs = vm_inputs(marker=None)
    inputs["__provider"] = provider_blob
    inputs["cloud_init_password"] = "local-only-pw"

    checked = stub.Check(proto.CheckRequest(urn=URN, olds=to_struct({}), news=to_struct(inputs)))
    assert list(checked.failures) == []
    news = from_struct(checked.inputs)
    assert len(news["marker"]) == 32

    created = stub.Create(proto.CreateRequest(urn=URN, properties=checked.inputs))
    node, vmid = created.id.split("/")
    outs = from_struct(created.properties)
    assert outs["vmid"] == int(vmid) and outs["current_node"] == node
    assert outs["ip_addresses"] == ["10.10.0.11"]
    assert int(vmid) in {vm.vmid for vm in fakepve.vms if not vm.template}
    assert TOKEN_SECRET not in json.dumps(outs)

    # Nothing changed: no diff, and a refresh reports the same VM.
    same = stub.Diff(proto.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=checked.inputs))
    assert same.changes == proto.DiffResponse.DIFF_NONE
    read = stub.Read(proto.ReadRequest(id=created.id, urn=URN, properties=created.properties))
    assert read.id == created.id
    again = stub.Diff(proto.DiffRequest(id=created.id, urn=URN, olds=read.properties, news=checked.inputs))
    assert again.changes == proto.DiffResponse.DIFF_NONE

    # An in-place change and a replacing change.
    # The program always sends marker=None; the provider derives it from the owner and placement.
    bigger = dict(news, cpu={"cores": 4, "sockets": 1, "type": "x86-64-v2-AES"}, marker=None)
    rechecked = stub.Check(proto.CheckRequest(urn=URN, olds=checked.inputs, news=to_struct(bigger)))
    assert from_struct(rechecked.inputs)["marker"] == news["marker"]  # same owner and placement
    diff = stub.Diff(proto.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=rechecked.inputs))
    assert diff.changes == proto.DiffResponse.DIFF_SOME and list(diff.replaces) == []
    other_template = dict(news, template_tags=["k8s"], marker=None)
    replaced = stub.Check(proto.CheckRequest(urn=URN, olds=checked.inputs, news=to_struct(other_template)))
    assert from_struct(replaced.inputs)["marker"] != news["marker"]  # a successor never shares the marker
    diff = stub.Diff(proto.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=replaced.inputs))
    assert "template_tags" in list(diff.replaces)

    updated = stub.Update(proto.UpdateRequest(id=created.id, urn=URN, olds=created.properties, news=rechecked.inputs))
    assert from_struct(updated.properties)["cpu"]["cores"] == 4
    vm = next(vm for vm in fakepve.vms if vm.vmid == int(vmid))
    assert vm.pending.get("cores", vm.config.get("cores")) == "4"

    stub.Delete(proto.DeleteRequest(id=created.id, urn=URN, properties=updated.properties))
    assert int(vmid) not in {vm.vmid for vm in fakepve.vms}


def test_check_reports_each_bad_field(stub: Any, provider_blob: str) -> None:
    inputs = vm_inputs(marker=None, cpu={"cores": 0}, nics={"eth0": {"bridge": "vmbr0"}})
    inputs["__provider"] = provider_blob
    checked = stub.Check(proto.CheckRequest(urn=URN, olds=to_struct({}), news=to_struct(inputs)))
    failures = {f.property: f.reason for f in checked.failures}
    assert "cpu.cores" in failures and "greater than or equal to 1" in failures["cpu.cores"]
    assert any(p.startswith("nics") and "eth0" in r for p, r in failures.items())


def test_disk_shrink_is_refused_at_diff(stub: Any, provider_blob: str) -> None:
    inputs = vm_inputs(disks={"scsi0": {"size_gib": 40}})
    inputs["__provider"] = provider_blob
    smaller = dict(inputs, disks={"scsi0": {"size_gib": 20}})
    with pytest.raises(grpc.RpcError) as err:
        stub.Diff(proto.DiffRequest(id="pve1/1001", urn=URN, olds=to_struct(inputs), news=to_struct(smaller)))
    assert "disks.scsi0.size_gib" in str(err.value.details())


def test_a_vm_created_with_the_pre_split_pickle_is_read_and_deleted(stub: Any, fakepve: Any) -> None:
    """State written before providers/ was split names ``providers.vm_resource``; the host still loads it.

    Read and Delete take the provider from the resource's stored outputs, which a no-op ``up`` never
    rewrites, so this is the path every existing stack takes after the upgrade.
    """
    old_blob = LEGACY_PICKLES["providers.vm_resource.ProxmoxVmProvider"]
    inputs = vm_inputs(marker=None)
    inputs["__provider"] = old_blob
    checked = stub.Check(proto.CheckRequest(urn=URN, olds=to_struct({}), news=to_struct(inputs)))
    assert list(checked.failures) == []
    created = stub.Create(proto.CreateRequest(urn=URN, properties=checked.inputs))
    assert from_struct(created.properties)["__provider"] == old_blob
    read = stub.Read(proto.ReadRequest(id=created.id, urn=URN, properties=created.properties))
    assert read.id == created.id
    # The new program's pickle against the old state: no change is planned for the module move.
    news = dict(from_struct(checked.inputs), __provider=serialize_provider(ProxmoxVmProvider()))
    diff = stub.Diff(proto.DiffRequest(id=created.id, urn=URN, olds=read.properties, news=to_struct(news)))
    assert diff.changes == proto.DiffResponse.DIFF_NONE
    stub.Delete(proto.DeleteRequest(id=created.id, urn=URN, properties=read.properties))
    assert int(created.id.split("/")[1]) not in {vm.vmid for vm in fakepve.vms}
