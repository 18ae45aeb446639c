"""Pulumi dynamic resources over the Proxmox client (``providers.proxmox``); classes pickled by reference."""
