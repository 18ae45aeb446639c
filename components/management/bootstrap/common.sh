# shellcheck shell=bash
# Helpers shared by the bootstrap scripts. components/bootstrap/__init__.py (render_script) puts this
# file between the parameter header and the script itself; it is never run on its own.
#
# Conventions of every script:
#   * it runs as root (the command is `sudo -n /bin/bash -s`, the script arrives on stdin);
#   * stdout is reserved for what the program reads back (join credentials, nothing else), every
#     message goes to stderr through log/die;
#   * parameters are declared at the top of each script as `: "${NAME:?why}"` (required) or
#     `: "${NAME=}"` (optional); render_script refuses a missing or an undeclared one;
#   * it is idempotent: a second run finds the work done and exits 0 without changing anything.

log() {
  printf '[bootstrap %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

# retry <attempts> <delay-seconds> <command...>: run the command until it succeeds.
retry() {
  local attempts=$1 delay=$2 n=1
  shift 2
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then
      return 1
    fi
    n=$((n + 1))
    sleep "$delay"
  done
}

# write_file <mode> <path> <content>: replace a file atomically (temp file + rename, mode set first).
write_file() {
  local mode=$1 path=$2 content=$3 tmp
  tmp=$(mktemp "$path.XXXXXX")
  chmod "$mode" "$tmp"
  printf '%s\n' "$content" >"$tmp"
  mv -f "$tmp" "$path"
}

# K8S_DIR is /etc/kubernetes on a node; tests point it at a scratch directory.
: "${K8S_DIR:=/etc/kubernetes}"
: "${BOOTSTRAP_LOG_DIR:=/var/log}"
