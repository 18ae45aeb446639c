"""The Pulumi program: read the stack config, build the platform, export what operators need."""

import pulumi

from components.platform import Platform, PlatformArgs
from config import read_stack_config, read_stack_secrets

config = pulumi.Config()
stack_config = read_stack_config(config)
secrets = read_stack_secrets(config, stack_config)
platform = Platform("platform", PlatformArgs(config=stack_config, secrets=secrets))

pulumi.export("managementApiEndpoint", platform.management.api_endpoint)
pulumi.export("controlPlanes", platform.management.control_planes)
pulumi.export("workers", platform.management.workers)
pulumi.export("proxmoxPools", platform.proxmox.pool_ids)
pulumi.export("tenantKubeconfigs", platform.tenant_kubeconfigs)
pulumi.export("renderDir", stack_config.local_render)
