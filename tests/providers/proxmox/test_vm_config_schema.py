"""Every spec ``check()`` accepts renders into parameters the PVE API schema accepts (config and clone).

The schema is PVE 9's own, as fakepve ships it (``fakepve.schema``), with its named formats
(``pve-qm-ipconfig``, ``pve-tag-list``, ``dns-name``, ...). Property-based: hypothesis varies the inputs
that are rendered into config keys. A failure here is an input ``check()`` lets through that Proxmox
would refuse after the clone, which is exactly what check() exists to prevent.
"""

from __future__ import annotations

from typing import Any

from fakepve import schema as pve_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.proxmox.vm_config import description_with_marker, render_new_disk, render_nic, render_options
from providers.proxmox.vm_spec import SpecError, VmSpec
from tests.support.specs import SSH_KEY, vm_inputs

SCHEMA = pve_schema.load()
CONFIG = SCHEMA.match("/nodes/pve1/qemu/1000/config").methods["POST"]["parameters"]
CLONE = SCHEMA.match("/nodes/pve1/qemu/9000/clone").methods["POST"]["parameters"]

ipv4 = st.sampled_from([None, "dhcp", "10.10.0.11/24", "10.10.0.1/24", "192.168.7.254/23", "10.0.0.0/8", "10.1.2.3/31"])
gateway4 = st.sampled_from([None, "10.10.0.1", "10.10.0.254", "192.168.6.1", "10.255.255.254"])
ipv6 = st.sampled_from([None, "dhcp", "auto", "2001:db8::5/64", "fd00:1::10/48", "2001:db8::/64"])
gateway6 = st.sampled_from([None, "2001:db8::1", "fe80::1", "fd00:1::1", "2001:db8::5"])
# Every key always present (None where unset): the combinations are what matters, not which keys appear.
ip_config = st.fixed_dictionaries({"ipv4": ipv4, "gateway4": gateway4, "ipv6": ipv6, "gateway6": gateway6})
nic = st.fixed_dictionaries(
    {"bridge": st.sampled_from(["vmbr0", "vmbr1", "vnet.tenant-a"])},
    optional={
        "vlan": st.integers(1, 4094),
        "model": st.sampled_from(["virtio", "e1000", "vmxnet3"]),
        "mtu": st.integers(576, 65_520),
        "firewall": st.booleans(),
    },
)
cloud_init = st.fixed_dictionaries(
    {},
    optional={
        "user": st.sampled_from(["ubuntu", "k8s_admin", "a"]),
        "ssh_keys": st.lists(st.just(SSH_KEY), max_size=2),
        "ip_configs": st.dictionaries(st.sampled_from(["net0", "net1"]), ip_config, max_size=2),
        "dns_servers": st.lists(st.sampled_from(["10.10.0.1", "2001:db8::53", "1.1.1.1"]), max_size=3),
        "search_domain": st.sampled_from(["lab.example", "k8s.internal"]),
        "custom_snippet": st.sampled_from(
            ["user=local:snippets/user.yaml", "user=local:snippets/u.yaml,meta=nfs:snippets/m"]
        ),
        "upgrade": st.booleans(),
    },
)
overrides = st.fixed_dictionaries(
    {},
    optional={
        "name": st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
        "description": st.text(max_size=300),
        "tags": st.lists(st.from_regex(r"[a-z0-9_][a-z0-9_+.-]{0,10}", fullmatch=True), max_size=4),
        "cpu": st.fixed_dictionaries({"cores": st.integers(1, 512), "sockets": st.integers(1, 4)}),
        "memory_mib": st.integers(16, 65_536),
        "nics": st.dictionaries(st.sampled_from(["net0", "net1"]), nic, min_size=1, max_size=2),
        "cloud_init": cloud_init,
        "disks": st.dictionaries(
            st.sampled_from(["scsi0", "scsi1", "virtio0", "sata1"]),
            st.fixed_dictionaries({"size_gib": st.integers(1, 65_536)}),
            min_size=1,
            max_size=3,
        ),
        "pool": st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
        "storage": st.sampled_from(["local-lvm", "ceph.pool-1", "nvme_2"]),
        "disk_format": st.sampled_from(["raw", "qcow2"]),
    },
)


def _rendered(spec: VmSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    config: dict[str, Any] = dict(render_options(spec, "a-password"))
    for slot, declared in spec.nics.items():
        config[slot] = render_nic(declared, "BC:24:11:00:00:01")
    for slot, disk in spec.disks.items():
        config[slot] = render_new_disk(slot, disk, spec.storage or "local-lvm")
    clone = {
        "newid": spec.vmid_range.start,
        "name": spec.name,
        "description": description_with_marker(spec),
        "full": 1,
        "pool": spec.pool,
        "storage": spec.storage,
        "format": spec.disk_format,
    }
    return config, {k: v for k, v in clone.items() if v is not None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides)
def test_accepted_inputs_render_into_what_pve_accepts(changes: dict[str, Any]) -> None:
    try:
        spec = VmSpec.from_inputs(vm_inputs(**changes))
    except SpecError:
        return  # refused by check(): nothing reaches Proxmox
    config, clone = _rendered(spec)
    _, config_errors = pve_schema.validate(CONFIG, {**config, "node": "pve1", "vmid": 1000})
    assert config_errors == {}, (changes, config)
    _, clone_errors = pve_schema.validate(CLONE, {**clone, "node": "pve1", "vmid": 9000})
    assert clone_errors == {}, (changes, clone)


def test_the_schema_check_can_fail() -> None:
    # The oracle is live: a gateway6 without ip6 is what PVE refuses, and this is how it says so.
    _, errors = pve_schema.validate(CONFIG, {"ipconfig0": "ip=dhcp,gw6=2001:db8::1", "node": "pve1", "vmid": 1000})
    assert "ipconfig0" in errors


@settings(max_examples=200, deadline=None)
@given(ip_config)
def test_accepted_addressing_renders_into_a_valid_ipconfig(addressing: dict[str, Any]) -> None:
    # The addressing alone, so every combination of address, gateway and family is tried densely.
    try:
        spec = VmSpec.from_inputs(vm_inputs(cloud_init={"ip_configs": {"net0": addressing}}))
    except SpecError:
        return
    config, _ = _rendered(spec)
    _, errors = pve_schema.validate(CONFIG, {"ipconfig0": config["ipconfig0"], "node": "pve1", "vmid": 1000})
    assert errors == {}, (addressing, config["ipconfig0"])
