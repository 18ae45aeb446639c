"""Proxmox layer: pools, templates, controller tokens and firewall security groups."""
