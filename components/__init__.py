"""Pulumi ComponentResources of the platform, one folder per layer; ``platform.py`` wires them."""
