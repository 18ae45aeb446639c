"""The management cluster: VMs on Proxmox, the kubeadm bootstrap over SSH, its Kubernetes provider."""
