# shellcheck shell=bash
# Sourced by the toolchain scripts: one build per cache directory at a time.
#
# take_build_lock DIR   holds DIR/.lock (file descriptor 9) until the calling script exits; a second
#                       caller waits for the first, then re-checks the cache stamp itself.
take_build_lock() {
  local dir=$1
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$dir/.lock"
    if ! flock -n 9; then
      log "another build holds $dir/.lock; waiting for it"
      flock 9
    fi
  else
    log "warning: flock not found; concurrent runs may build twice"
  fi
}
