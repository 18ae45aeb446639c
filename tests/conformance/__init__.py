"""Conformance tier: every emitted Kubernetes object validates against its schema, offline."""
