#!/usr/bin/env bash
# shellcheck shell=bash
# Print fresh join credentials as one JSON line on stdout (the program marks stdout secret):
#   {"token": "...", "caCertHash": "sha256:...", "certificateKey": "..." | ""}
# The bootstrap token lives TOKEN_TTL; with CERTIFICATE_KEY=true the control-plane certificates are
# uploaded again (kubeadm-certs Secret, deleted by kubeadm after two hours) encrypted with a new key.
# Safe to re-run: every run mints new credentials and leaves the old ones to expire.
set -euo pipefail

: "${CLUSTER_NAME:?the cluster name, for the token description}"
: "${TOKEN_TTL:?lifetime of the bootstrap token, e.g. 2h}"
: "${CERTIFICATE_KEY:?true when control planes will join}"

admin_conf="$K8S_DIR/admin.conf"
[ -f "$admin_conf" ] || die "$admin_conf is missing: the first control plane is not initialised"

token=$(kubeadm token create --kubeconfig "$admin_conf" --ttl "$TOKEN_TTL" \
  --description "join token for $CLUSTER_NAME, minted by the platform program")
ca_hash=$(openssl x509 -pubkey -noout -in "$K8S_DIR/pki/ca.crt" |
  openssl pkey -pubin -outform der |
  openssl dgst -sha256 -hex | sed 's/^.* //')
certificate_key=""
if [ "$CERTIFICATE_KEY" = true ]; then
  certificate_key=$(kubeadm certs certificate-key)
  kubeadm init phase upload-certs --upload-certs --kubeconfig "$admin_conf" \
    --certificate-key "$certificate_key" >/dev/null
fi
printf '{"token":"%s","caCertHash":"sha256:%s","certificateKey":"%s"}\n' "$token" "$ca_hash" "$certificate_key"
