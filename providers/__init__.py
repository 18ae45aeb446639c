"""Proxmox VE API client and the Pulumi dynamic resources built on it (no imports from components/)."""
