# shellcheck shell=bash
# Offline settings for running the Pulumi CLI against this checkout. Source it, do not run it:
#
#   . scripts/pulumi-env.sh [--no-plugins]
#
# Builds (first time) or finds the toolchain with scripts/pulumi-toolchain.sh, then exports:
#   PATH                       toolchain bin dir first: pulumi, the Python language host, its
#                              executor and the dynamic-provider launcher
#   PULUMI_TOOLCHAIN_BIN       that bin dir (set it yourself to skip the toolchain script)
#   PULUMI_HOME                <repo>/.local/pulumi-home (per checkout: plugins, credentials, caches).
#                              Unless --no-plugins, the kubernetes provider plugin is registered
#                              there (`pulumi plugin install --file`, skipped when up to date), so
#                              the CLI finds it without a download and without a PATH warning.
#   PULUMI_BACKEND_URL         file://<repo>/.local/state (DIY file backend: no Pulumi Cloud)
#   PULUMI_SKIP_UPDATE_CHECK=true                     no version check against Pulumi Cloud
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true  never try to download plugins
#   PULUMI_DISABLE_REGISTRY_RESOLVE=true              never ask the Pulumi Registry for packages
# It sets no passphrase: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) yourself.

_pulumi_env_main() {
  local src repo bin
  src=${BASH_SOURCE[0]:-$0}
  repo=$(cd "$(dirname "$src")/.." && pwd -P) || return 1

  local install=--install-plugins arg
  for arg in "$@"; do
    if [ "$arg" = --no-plugins ]; then install=; fi
  done
  mkdir -p "$repo/.local/pulumi-home" "$repo/.local/state" || return 1
  if [ -n "${PULUMI_TOOLCHAIN_BIN:-}" ] && [ -x "$PULUMI_TOOLCHAIN_BIN/pulumi" ]; then
    bin=$PULUMI_TOOLCHAIN_BIN
  else
    # The plugin is registered in this checkout's PULUMI_HOME, set here for the toolchain script only.
    bin=$(PULUMI_HOME="$repo/.local/pulumi-home" "$repo/scripts/pulumi-toolchain.sh" "$@" ${install:+"$install"}) || {
      printf 'pulumi-env: scripts/pulumi-toolchain.sh failed; environment not changed\n' >&2
      return 1
    }
  fi

  case ":$PATH:" in
    ":$bin:"*) ;;
    *) PATH="$bin:$PATH" ;;
  esac

  export PATH
  export PULUMI_TOOLCHAIN_BIN="$bin"
  export PULUMI_HOME="$repo/.local/pulumi-home"
  export PULUMI_BACKEND_URL="file://$repo/.local/state"
  export PULUMI_SKIP_UPDATE_CHECK=true
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  export PULUMI_DISABLE_REGISTRY_RESOLVE=true
}

if _pulumi_env_main "$@"; then
  unset -f _pulumi_env_main
else
  unset -f _pulumi_env_main
  # shellcheck disable=SC2317 # `return` works when sourced; `exit` only if run by mistake.
  return 1 2>/dev/null || exit 1
fi
