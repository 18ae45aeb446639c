"""The Proxmox layer: ``proxmox/`` is the plain API client (no pulumi import), ``dynamic/`` the Pulumi
dynamic resources built on it. Nothing here imports ``components`` or ``tools``.

Importing the package registers the finder of ``providers.legacy``, so that provider references pickled
into state before the split (``providers.vm_resource``, ...) still load.
"""

from providers import legacy

legacy.install()
