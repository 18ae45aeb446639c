#!/usr/bin/env bash
# shellcheck shell=bash
# kubeadm init on the first control plane, behind the kube-vip address.
#
# kube-vip runs as a static pod and must hold the control-plane endpoint before kubeadm can reach
# the API through it. From Kubernetes v1.29 kubeadm's admin.conf has no rights until init has
# bound it to cluster-admin, so during init kube-vip uses super-admin.conf (kube-vip/kube-vip#684)
# and is switched to admin.conf right after.
#
# Idempotent: when admin.conf exists the node is initialised; the script only waits for the API and
# makes sure kube-vip uses admin.conf. It never runs `kubeadm reset`: a half-finished init is
# reported with what to do.
set -euo pipefail

: "${NODE_NAME:?the node name, for messages}"
: "${KUBEADM_CONFIG:?InitConfiguration + ClusterConfiguration + KubeletConfiguration YAML}"
: "${KUBE_VIP_INIT_MANIFEST:?kube-vip static pod that uses super-admin.conf}"
: "${KUBE_VIP_MANIFEST:?kube-vip static pod that uses admin.conf}"
: "${API_WAIT_ATTEMPTS:=60}"

admin_conf="$K8S_DIR/admin.conf"
config="$K8S_DIR/bootstrap/kubeadm-init.yaml"
vip_manifest="$K8S_DIR/manifests/kube-vip.yaml"
init_log="$BOOTSTRAP_LOG_DIR/kubeadm-init.log"

api_ready() {
  kubectl --kubeconfig "$admin_conf" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1
}

if [ -f "$admin_conf" ]; then
  log "$admin_conf exists: $NODE_NAME is already initialised"
  if ! retry "$API_WAIT_ATTEMPTS" 5 api_ready; then
    die "$admin_conf exists but the API server is not ready through it. If an earlier kubeadm init failed halfway, read $init_log, run 'kubeadm reset -f' on $NODE_NAME and run pulumi up again"
  fi
  write_file 0600 "$vip_manifest" "$KUBE_VIP_MANIFEST"
  exit 0
fi

install -d -m 0700 "$K8S_DIR/bootstrap"
install -d -m 0755 "$K8S_DIR/manifests"
write_file 0600 "$config" "$KUBEADM_CONFIG"
write_file 0600 "$vip_manifest" "$KUBE_VIP_INIT_MANIFEST"

# the log holds the join command with a bootstrap token: root only
(umask 077 && : >"$init_log")
log "kubeadm init on $NODE_NAME (log: $init_log)"
if ! kubeadm init --config "$config" >"$init_log" 2>&1; then
  grep -v -e '--token' -e '--certificate-key' -e 'discovery-token' "$init_log" | tail -n 40 >&2 || true
  die "kubeadm init failed on $NODE_NAME; the full log is $init_log"
fi

write_file 0600 "$vip_manifest" "$KUBE_VIP_MANIFEST"
if ! retry "$API_WAIT_ATTEMPTS" 5 api_ready; then
  die "kubeadm init finished but the API server is not ready through the control-plane endpoint"
fi
log "$NODE_NAME initialised the cluster"
