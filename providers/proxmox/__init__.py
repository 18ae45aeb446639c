"""The Proxmox VE API client and its typed operations. No pulumi import (enforced by a test)."""
