#!/usr/bin/env bash
# shellcheck shell=bash
# kubeadm join of a control plane or a worker, with a JoinConfiguration file.
#
# The bootstrap token and the certificate key are in the configuration file (deleted afterwards),
# never on a command line where `ps` would show them; a control plane joins through the file's
# controlPlane section (the equivalent of --control-plane --certificate-key). A control plane gets
# the kube-vip static pod after it joined: kubeadm's preflight wants an empty manifests directory.
#
# Idempotent: when kubelet.conf exists the node has joined; the script only makes sure a control
# plane runs kube-vip.
set -euo pipefail

: "${NODE_NAME:?the node name, for messages}"
: "${NODE_ROLE:?control-plane or worker}"
: "${KUBEADM_CONFIG:?JoinConfiguration YAML with the bootstrap token (secret)}"
: "${KUBE_VIP_MANIFEST=}"

case "$NODE_ROLE" in
  control-plane | worker) ;;
  *) die "NODE_ROLE must be control-plane or worker, got '$NODE_ROLE'" ;;
esac
if [ "$NODE_ROLE" = control-plane ] && [ -z "$KUBE_VIP_MANIFEST" ]; then
  die "KUBE_VIP_MANIFEST is required on control planes"
fi

config="$K8S_DIR/bootstrap/kubeadm-join.yaml"
vip_manifest="$K8S_DIR/manifests/kube-vip.yaml"
join_log="$BOOTSTRAP_LOG_DIR/kubeadm-join.log"

ensure_kube_vip() {
  if [ "$NODE_ROLE" = control-plane ]; then
    install -d -m 0755 "$K8S_DIR/manifests"
    write_file 0600 "$vip_manifest" "$KUBE_VIP_MANIFEST"
  fi
}

if [ -f "$K8S_DIR/kubelet.conf" ]; then
  log "$K8S_DIR/kubelet.conf exists: $NODE_NAME has already joined"
  ensure_kube_vip
  exit 0
fi

install -d -m 0700 "$K8S_DIR/bootstrap"
trap 'rm -f "$config"' EXIT
write_file 0600 "$config" "$KUBEADM_CONFIG"
(umask 077 && : >"$join_log")
log "kubeadm join of $NODE_NAME as $NODE_ROLE (log: $join_log)"
if ! kubeadm join --config "$config" >"$join_log" 2>&1; then
  tail -n 40 "$join_log" >&2 || true
  die "kubeadm join failed on $NODE_NAME; the full log is $join_log"
fi
ensure_kube_vip
log "$NODE_NAME joined as $NODE_ROLE"
