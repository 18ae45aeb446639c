"""Platform services on the management cluster: networking, CSI, Cluster API, Kamaji (room for operations and mesh)."""
