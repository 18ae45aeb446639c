"""Pulumi ComponentResources of the platform, and the typed stack configuration."""
