#!/usr/bin/env bash
# shellcheck shell=bash
# Prepare a VM for kubeadm: wait for cloud-init, swap off, kernel modules and sysctls, containerd
# with the systemd cgroup driver, kubeadm/kubelet/kubectl at exactly KUBERNETES_VERSION (installed
# from pkgs.k8s.io on Debian/Ubuntu when the template does not carry them), no stray default CNI
# configuration, and on control planes the API server audit policy and log directory.
# Idempotent: every step checks before it changes something. A node that has joined already
# (kubelet.conf exists) is never moved to another Kubernetes version: upgrading the management
# cluster is `kubeadm upgrade`, a deliberate operation, so a version bump only logs a warning here.
set -euo pipefail

: "${NODE_NAME:?the node name, for messages}"
: "${NODE_ROLE:?control-plane or worker}"
: "${KUBERNETES_VERSION:?the exact Kubernetes release, e.g. v1.34.8}"
: "${AUDIT_POLICY=}"

case "$NODE_ROLE" in
  control-plane | worker) ;;
  *) die "NODE_ROLE must be control-plane or worker, got '$NODE_ROLE'" ;;
esac
if [[ ! "$KUBERNETES_VERSION" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  die "KUBERNETES_VERSION must look like v1.34.8, got '$KUBERNETES_VERSION'"
fi
k8s_minor="v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
k8s_package_version="${KUBERNETES_VERSION#v}"
joined=false
if [ -f "$K8S_DIR/kubelet.conf" ]; then
  joined=true
fi

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"
}

wait_for_cloud_init() {
  if ! command -v cloud-init >/dev/null 2>&1; then
    return 0
  fi
  local rc=0
  cloud-init status --wait >/dev/null 2>&1 || rc=$?
  # 0: done; 2: done with recoverable errors (deprecated keys and the like)
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    die "cloud-init failed on $NODE_NAME (exit $rc); see /var/log/cloud-init-output.log"
  fi
}

disable_swap() {
  swapoff -a
  if grep -Eq '^[^#].*[[:space:]]swap[[:space:]]' /etc/fstab; then
    sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# disabled for the kubelet: \1/' /etc/fstab
    log "swap entries in /etc/fstab commented out"
  fi
}

kernel_settings() {
  write_file 0644 /etc/modules-load.d/kubernetes.conf $'overlay\nbr_netfilter'
  modprobe overlay
  modprobe br_netfilter
  write_file 0644 /etc/sysctl.d/90-kubernetes.conf "$(
    printf '%s\n' \
      'net.bridge.bridge-nf-call-iptables = 1' \
      'net.bridge.bridge-nf-call-ip6tables = 1' \
      'net.ipv4.ip_forward = 1' \
      'fs.inotify.max_user_instances = 8192' \
      'fs.inotify.max_user_watches = 524288'
  )"
  sysctl --quiet --system >/dev/null
}

install_packages() {
  local have=""
  if command -v kubeadm >/dev/null 2>&1; then
    have=$(kubeadm version -o short)
  fi
  if [ -n "$have" ]; then
    if [ "$have" != "$KUBERNETES_VERSION" ] && [ "$joined" = true ]; then
      log "WARNING: $NODE_NAME runs kubeadm $have and has joined; the stack now names $KUBERNETES_VERSION. Nodes are not upgraded by the bootstrap: run kubeadm upgrade"
      return 0
    fi
    if [ "$have" != "$KUBERNETES_VERSION" ]; then
      die "kubeadm $have is installed on $NODE_NAME but the stack wants $KUBERNETES_VERSION; the bootstrap never upgrades a node (use kubeadm upgrade)"
    fi
    log "kubeadm $have is already installed"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    die "kubeadm is missing on $NODE_NAME and this is not a Debian/Ubuntu image; build the template with containerd, kubeadm, kubelet and kubectl $KUBERNETES_VERSION"
  fi
  log "installing containerd and kubeadm/kubelet/kubectl $KUBERNETES_VERSION from pkgs.k8s.io ($k8s_minor)"
  apt_get update
  apt_get install -y apt-transport-https ca-certificates curl gpg containerd
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/${k8s_minor}/deb/Release.key" |
    gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
  write_file 0644 /etc/apt/sources.list.d/kubernetes.list \
    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/${k8s_minor}/deb/ /"
  apt_get update
  apt_get install -y "kubelet=${k8s_package_version}-*" "kubeadm=${k8s_package_version}-*" "kubectl=${k8s_package_version}-*"
  apt-mark hold kubelet kubeadm kubectl >/dev/null
}

configure_containerd() {
  command -v containerd >/dev/null 2>&1 || die "containerd is missing on $NODE_NAME"
  local config=/etc/containerd/config.toml changed=false
  install -d -m 0755 /etc/containerd
  if [ ! -s "$config" ] || grep -Eq '^disabled_plugins.*"cri"' "$config" || ! grep -q 'SystemdCgroup' "$config"; then
    # no config, or the one some packages ship with the CRI plugin disabled: start from the default
    write_file 0644 "$config" "$(containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/')"
    changed=true
  elif grep -q 'SystemdCgroup = false' "$config"; then
    sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' "$config"
    changed=true
  fi
  systemctl enable containerd >/dev/null 2>&1
  if [ "$changed" = true ]; then
    log "containerd configured for the systemd cgroup driver"
    systemctl restart containerd
  else
    systemctl start containerd
  fi
}

remove_default_cni() {
  # Cilium (05-cilium.conflist) and Kube-OVN (10-kube-ovn.conflist) bring the only CNI configuration;
  # a bridge config left by a package would sort first or shadow the chain.
  local stray
  for stray in /etc/cni/net.d/10-containerd-net.conflist /etc/cni/net.d/87-podman-bridge.conflist; do
    if [ -e "$stray" ]; then
      rm -f "$stray"
      log "removed default CNI configuration $stray"
    fi
  done
}

control_plane_files() {
  [ -n "$AUDIT_POLICY" ] || die "AUDIT_POLICY is required on control planes"
  install -d -m 0700 "$K8S_DIR/audit" /var/log/kubernetes/audit
  write_file 0600 "$K8S_DIR/audit/policy.yaml" "$AUDIT_POLICY"
  if [ "$joined" = true ]; then
    return 0
  fi
  log "pre-pulling control-plane images for $KUBERNETES_VERSION"
  retry 3 10 kubeadm config images pull --kubernetes-version "$KUBERNETES_VERSION" >/dev/null
}

wait_for_cloud_init
disable_swap
kernel_settings
install_packages
configure_containerd
remove_default_cni
systemctl enable kubelet >/dev/null 2>&1
if [ "$NODE_ROLE" = control-plane ]; then
  control_plane_files
fi
log "$NODE_NAME is prepared for kubeadm ($NODE_ROLE, $KUBERNETES_VERSION)"
