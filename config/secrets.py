"""The secrets of a stack: which secret config keys it needs, and reading them as secret Outputs.

Secrets are never part of ``StackConfig``. They are separate Pulumi config keys in the project
namespace, set with ``pulumi config set --secret <key> <value>``:

* ``proxmoxTokenSecret`` (always): the UUID secret of ``proxmox.tokenId``;
* ``managementKubeconfig`` (when ``managementCluster.external`` is true, or its VMs are bootstrapped
  elsewhere: ``managementCluster.bootstrap: external``);
* ``sshPrivateKey`` (when the program bootstraps the management cluster: kubeadm over SSH);
* ``csiEncryptionPassphrase`` (when a storage class has ``encrypted: true``);
* ``kamajiDatastorePassword`` (when the Kamaji DataStore is PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from config.stack import StackConfig

if TYPE_CHECKING:
    import pulumi

SECRET_KEYS: Final[Mapping[str, str]] = {
    "proxmoxTokenSecret": "UUID secret of proxmox.tokenId",
    "managementKubeconfig": "admin kubeconfig of the management cluster (managementCluster.external, or "
    "managementCluster.bootstrap: external)",
    "sshPrivateKey": "private key matching managementCluster.sshPublicKeys (kubeadm bootstrap over SSH)",
    "csiEncryptionPassphrase": "LUKS passphrase for storage classes with encrypted: true",
    "kamajiDatastorePassword": "password of kamaji.datastore.username (kamaji.datastore.driver: postgresql)",
}
"""Secret Pulumi config keys (``pulumi config set --secret``) and what each holds."""


def required_secret_keys(cfg: StackConfig) -> tuple[str, ...]:
    """The secret config keys this configuration needs (see ``SECRET_KEYS``)."""
    keys = ["proxmoxTokenSecret"]
    mc = cfg.management_cluster
    rendering = cfg.local_render is not None
    if mc.external or (mc.bootstrap == "external" and not rendering):
        keys.append("managementKubeconfig")
    elif not rendering:
        # Rendering applies nothing and runs no bootstrap: neither a kubeconfig nor an SSH key is needed.
        keys.append("sshPrivateKey")
    if any(sc.encrypted for sc in cfg.storage):
        keys.append("csiEncryptionPassphrase")
    if cfg.kamaji.datastore.driver == "postgresql":
        keys.append("kamajiDatastorePassword")
    return tuple(keys)


@dataclass(frozen=True)
class StackSecrets:
    """The secret config values a stack needs, as secret Outputs (None where not needed)."""

    proxmox_token_secret: pulumi.Output[str]
    management_kubeconfig: pulumi.Output[str] | None
    ssh_private_key: pulumi.Output[str] | None
    csi_encryption_passphrase: pulumi.Output[str] | None
    kamaji_datastore_password: pulumi.Output[str] | None = None


def read_stack_secrets(config: pulumi.Config, cfg: StackConfig) -> StackSecrets:
    """Read the secret config keys ``cfg`` needs as secret Outputs (see ``SECRET_KEYS``)."""
    needed = set(required_secret_keys(cfg))

    def optional(key: str) -> pulumi.Output[str] | None:
        return config.require_secret(key) if key in needed else None

    return StackSecrets(
        proxmox_token_secret=config.require_secret("proxmoxTokenSecret"),
        management_kubeconfig=optional("managementKubeconfig"),
        ssh_private_key=optional("sshPrivateKey"),
        csi_encryption_passphrase=optional("csiEncryptionPassphrase"),
        kamaji_datastore_password=optional("kamajiDatastorePassword"),
    )
