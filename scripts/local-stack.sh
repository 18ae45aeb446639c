#!/usr/bin/env bash
# The local stack: the whole program against the Proxmox simulator and a local Kubernetes API server.
#   scripts/local-stack.sh up     simulator + API server, pulumi up, summary (tools/local_stack.py)
#   scripts/local-stack.sh down   pulumi destroy, stop the API server and the simulator
#   scripts/local-stack.sh preview  a no-op preview of the deployed stack (fails on any change)
set -euo pipefail
cd "$(dirname "$0")/.."

# Documented, local-only passphrase of Pulumi.local.yaml's secrets: it protects nothing real.
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-local-simulator-only}
case "${1:-}" in
  up | down | preview) ;;
  *)
    echo "usage: $0 up|down|preview" >&2
    exit 2
    ;;
esac

command=$1
set --  # pulumi-env.sh reads its own options from "$@"
start=$(date +%s)
echo "==> toolchains (Pulumi CLI + kubernetes plugin, kube-apiserver + etcd; built once from Go modules)" >&2
# shellcheck source=scripts/pulumi-env.sh
. scripts/pulumi-env.sh
KUBE_TOOLCHAIN_BIN=$(scripts/kube-toolchain.sh)
export KUBE_TOOLCHAIN_BIN
echo "    toolchains: done in $(($(date +%s) - start))s" >&2
exec .venv/bin/python -m tools.local_stack "$command"
