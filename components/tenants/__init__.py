"""Tenants: one isolated cluster per stack-config entry (Kamaji control plane, Cluster API workers)."""
