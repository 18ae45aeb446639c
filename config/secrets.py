"""The secrets of a stack: which secret config keys it needs, and reading them as secret Outputs.

Secrets are never part of ``StackConfig``. They are separate Pulumi config keys in the project
namespace, set with ``pulumi config set --secret <key> <value>``:

* ``proxmoxTokenSecret`` (always): the UUID secret of ``proxmox.tokenId``;
* ``managementKubeconfig`` (when ``managementCluster.external`` is true);
* ``sshPrivateKey`` (when the program builds the management cluster: kubeadm over SSH);
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
    "managementKubeconfig": "kubeconfig of the existing management cluster (managementCluster.external)",
    "sshPrivateKey": "private key matching managementCluster.sshPublicKeys (kubeadm bootstrap over SSH)",
    "csiEncryptionPassphrase": "LUKS passphrase for storage classes with encrypted: true",
    "kamajiDatastorePassword": "password of kamaji.datastore.username (kamaji.datastore.driver: postgresql)",
}
"""Secret Pulumi config keys (``pulumi config set --secret``) and what each holds."""


def required_secret_keys(cfg: StackConfig) -> tuple[str, ...]:
    """The secret config keys this configuration needs (see ``SECRET_KEYS``)."""
    keys = ["proxmoxTokenSecret"]
    if cfg.management_cluster.external:
        keys.append("managementKubeconfig")
    elif cfg.local_render is None:
        # Rendering (the local stack) skips the kubeadm bootstrap, so no SSH key is needed.
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
