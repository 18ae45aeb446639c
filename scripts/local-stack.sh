#!/usr/bin/env bash
# The local stack: the whole program against the Proxmox simulator on loopback, state in .local/.
#   scripts/local-stack.sh up     start the simulator, pulumi up, render manifests, print a summary
#   scripts/local-stack.sh down   pulumi destroy, stop the simulator
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=local
# Documented, local-only passphrase of Pulumi.local.yaml's secrets: it protects nothing real.
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-local-simulator-only}
# shellcheck source=scripts/pulumi-env.sh
. scripts/pulumi-env.sh --no-plugins 2>/dev/null || . scripts/pulumi-env.sh

py=.venv/bin/python
select_stack() {
  pulumi stack select "$STACK" 2>/dev/null || pulumi stack init "$STACK" >/dev/null
}

# A killed pulumi leaves its lock behind in the file backend. On this local-only stack, a lock whose
# process no longer runs on this host is stale: release it, and say so.
clear_stale_lock() {
  local lock pid host
  for lock in .local/state/.pulumi/locks/*/*/"$STACK"/*.json; do
    [ -e "$lock" ] || continue
    read -r pid host < <("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("pid",0), d.get("hostname",""))' "$lock")
    if [ "$host" = "$(hostname)" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "local-stack: releasing a stale lock left by pulumi pid $pid (no longer running)" >&2
      pulumi cancel --stack "$STACK" --yes >/dev/null
    fi
  done
}

case "${1:-}" in
  up)
    "$py" -m tools.simulator start >/dev/null
    select_stack
    clear_stale_lock
    # --refresh: the simulator keeps its VMs in memory, so after a restart state must learn they are gone.
    pulumi up --stack "$STACK" --yes --skip-preview --refresh
    "$py" -m tools.render --stack "$STACK"
    pulumi stack output --stack "$STACK" --json | "$py" -m tools.summary
    ;;
  down)
    "$py" -m tools.simulator start >/dev/null
    select_stack
    clear_stale_lock
    pulumi destroy --stack "$STACK" --yes --skip-preview
    "$py" -m tools.simulator stop
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
