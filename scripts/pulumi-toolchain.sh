#!/usr/bin/env bash
# Offline Pulumi toolchain, built from Go modules.
#
# Usage: scripts/pulumi-toolchain.sh [--no-plugins] [--install-plugins] [--retry-plugins] [--rebuild]
#
# Prints ONE line on stdout: the absolute path of a bin directory holding `pulumi`, the Python
# language host `pulumi-language-python`, its executor `pulumi-language-python-exec` and the
# dynamic-provider launcher `pulumi-resource-pulumi-python`. Everything else (phases with elapsed
# seconds, warnings) goes to stderr.
#
# The kubernetes provider plugin (pulumi-resource-kubernetes v4.25.0, the version the pinned
# pulumi-kubernetes SDK asks for) is built into plugins/, beside bin/ and deliberately not on PATH:
# the CLI prefers a plugin found on PATH and then warns "using pulumi-resource-kubernetes from
# $PATH" on every run. --install-plugins registers it in $PULUMI_HOME instead
# (`pulumi plugin install resource kubernetes 4.25.0 --file ...`, skipped when the installed copy
# is identical), where the CLI finds it with no warning and no download attempt.
#
# Known limit: pulumi-resource-command is not built. The Go module proxy refuses every version of
# its provider module (403), so pulumi_command resources need a machine with that plugin installed.
#
# This machine reaches package registries only (no GitHub, no get.pulumi.com), so everything is
# built from the Go module proxy through throwaway main modules (pkg/go.mod has local replace
# directives, so `go install ...@version` is refused). A pulumi on PATH that already reports the
# pinned version, with the Python language host next to it (and, unless --no-plugins, a kubernetes
# plugin 4.25.0 listed by `pulumi plugin ls` in $PULUMI_HOME or ~/.pulumi), is used as is.
#
# Cache (outside the repository):
#   ${PULUMI_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxmox-k8s-platform/toolchain}/pulumi-<version>/
#     bin/       the CLI and language host
#     VERSIONS   what was built, from what, plugin failures and why, known limits
#     .complete  written last, after a complete build (a killed build is redone, never half-used);
#                holds the recipe hash: a change of pins or host source rebuilds
#     plugins/kubernetes-<plugin recipe hash>/
#                pulumi-resource-kubernetes, VERSIONS, and .complete (or .failed, with the reason)
#     .lock      flock: concurrent invocations build once
#     logs/      build logs
#
# Options:
#   --no-plugins       skip the provider plugin
#   --install-plugins  register the plugin in $PULUMI_HOME (which must be set) with `pulumi plugin install`
#   --retry-plugins    retry a plugin build that failed before (failures are remembered, not retried)
#   --rebuild          ignore the cache stamps and build again
#
# Environment:
#   PULUMI_TOOLCHAIN_CACHE     cache root (see above)
#   PULUMI_TOOLCHAIN_JOBS      parallel compile jobs (go build -p), default: number of CPUs
#   PULUMI_TOOLCHAIN_LANGHOST  auto (default: upstream module if the proxy serves it, else the
#                              minimal host below) | minimal
#   PULUMI_TOOLCHAIN_NO_AMBIENT=1  do not reuse a pulumi found on PATH
set -euo pipefail

# ---- pins ---------------------------------------------------------------------------------------
# The Python SDK in requirements.txt is pulumi==3.259.0; the CLI and language host match it.
readonly PULUMI_VERSION=v3.259.0
readonly PULUMI_PKG_MODULE=github.com/pulumi/pulumi/pkg/v3
readonly PULUMI_SDK_MODULE=github.com/pulumi/pulumi/sdk/v3
readonly PULUMI_CLI_PACKAGE=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
readonly PULUMI_VERSION_VAR=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
# The upstream language host is its own module with no tags: pseudo-version of the v3.259.0 commit.
readonly LANGHOST_MODULE=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
readonly LANGHOST_VERSION=v3.0.0-20260819165155-0ac56e876614
# The only non-local replace of pkg/go.mod (a Windows fix; harmless on Linux, keeps the graph identical).
readonly CLIPBOARD_REPLACE=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
readonly GO_TAGS=osusergo,grpcnotrace

# The kubernetes provider plugin. requirements.txt pins pulumi-kubernetes==4.25.0: the SDK asks the
# engine for exactly this plugin version. The project does not tag its provider module, and the
# proxy serves exactly one pseudo-version of it: the commit of tag v4.25.0.
readonly K8S_PLUGIN_VERSION=v4.25.0
readonly K8S_PROVIDER_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
readonly K8S_PROVIDER_VERSION=v4.0.0-20260115033456-f47bc2d6f199
readonly K8S_VERSION_VAR=github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version
# The provider imports its own Go SDK (helm v4 types); require the matching tag.
readonly K8S_SDK_REQUIRE=github.com/pulumi/pulumi-kubernetes/sdk/v4@v4.25.0
# Helm is linked into the plugin as a library. Without release ldflags its default capabilities
# say Kubernetes v1.20, and with no cluster to ask (render mode) every chart whose kubeVersion
# constraint excludes 1.20 fails to render. Stamp the management cluster's minor instead
# (components/versions.py). The variables are checked in the resolved helm module before the
# build, because `-X` on a variable that does not exist is silently ignored.
readonly HELM_MODULE=helm.sh/helm/v3
readonly HELM_CHARTUTIL=helm.sh/helm/v3/pkg/chartutil
readonly HELM_KUBE_MAJOR=1
readonly HELM_KUBE_MINOR=34
readonly COMMAND_PLUGIN_LIMIT="plugin command: NOT BUILT (known limit): the Go module proxy refuses every version of github.com/pulumi/pulumi-command/provider (403 Forbidden), and the v1.2.1 root module has no Go code; pulumi_command resources need a machine where pulumi-resource-command v1.2.1 is installed"

t0=$(date +%s)
log() { printf 'pulumi-toolchain: %s\n' "$*" >&2; }
# "[total] message": every phase says how far into the run it starts or ends.
phase() { log "[$(($(date +%s) - t0))s] $*"; }
die() {
  log "error: $*"
  exit 1
}

with_plugins=1
install_plugins=0
retry_plugins=0
rebuild=0
for arg in "$@"; do
  case "$arg" in
    --no-plugins) with_plugins=0 ;;
    --install-plugins) install_plugins=1 ;;
    --retry-plugins) retry_plugins=1 ;;
    --rebuild) rebuild=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cache_root=${PULUMI_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxmox-k8s-platform/toolchain}
[[ $cache_root == /* ]] || cache_root=$PWD/$cache_root
# Physical path (when it exists), so a PATH entry through a symlink is recognised as the cache.
if [[ -d $cache_root ]]; then cache_root=$(cd "$cache_root" && pwd -P); fi
dir=$cache_root/pulumi-$PULUMI_VERSION
bin=$dir/bin
plugins=$dir/plugins
stamp=$dir/.complete
logs=$dir/logs
langhost_mode=${PULUMI_TOOLCHAIN_LANGHOST:-auto}
case "$langhost_mode" in auto | minimal) ;; *) die "PULUMI_TOOLCHAIN_LANGHOST must be auto or minimal" ;; esac

# ---- the minimal Python language host -----------------------------------------------------------
# Used when the proxy does not serve the upstream language host module (true on this machine:
# it answers 403 "not available" for every version of it). Our own code, built against the
# pinned sdk/v3: it runs programs through the upstream pulumi-language-python-exec script.
host_source() {
  cat "$repo_root/tools/pulumi-language-python/main.go"
}

# Identifies what a build contains; a change (new pins, new host source) forces a rebuild.
recipe=$( {
  printf '%s\n' "$PULUMI_VERSION" "$LANGHOST_VERSION" "$CLIPBOARD_REPLACE" "$GO_TAGS" "$langhost_mode"
  host_source
} | sha256sum | cut -c1-16)

# The plugin's own recipe: changing it rebuilds the plugin only, not the CLI.
plugin_recipe=$(printf '%s\n' "$K8S_PLUGIN_VERSION" "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_VERSION" "$K8S_SDK_REQUIRE" \
  "$HELM_CHARTUTIL" "$HELM_KUBE_MAJOR" "$HELM_KUBE_MINOR" | sha256sum | cut -c1-16)
# A directory per plugin recipe: a change of plugin pins never mixes with an older build's files.
plugin_dir=$plugins/kubernetes-$plugin_recipe
plugin_file=$plugin_dir/pulumi-resource-kubernetes

required_files=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)
[[ $install_plugins == 0 || $with_plugins == 1 ]] || die "--install-plugins and --no-plugins exclude each other"
if ((install_plugins)) && [[ -z ${PULUMI_HOME:-} ]]; then
  die "--install-plugins needs PULUMI_HOME (scripts/pulumi-env.sh sets it per checkout)"
fi

core_complete() {
  [[ -f $stamp && $(cat "$stamp") == "$recipe" ]] || return 1
  local f
  for f in "${required_files[@]}"; do [[ -x $bin/$f ]] || return 1; done
}

plugin_complete() { [[ -f $plugin_dir/.complete && -x $plugin_file ]]; }

# True if the plugin still has to be built in this run.
plugin_pending() {
  ((with_plugins)) || return 1
  if plugin_complete; then return 1; fi
  if [[ -f $plugin_dir/.failed ]] && ((!retry_plugins)); then return 1; fi
  return 0
}

warn_failed_plugins() {
  ((with_plugins)) || return 0
  [[ -f $plugin_dir/.failed ]] || return 0
  log "warning: provider plugin kubernetes not available: $(cat "$plugin_dir/.failed") (retry: --retry-plugins)"
}

# Registers plugin binary $2 with the CLI $1 in $PULUMI_HOME, unless an identical copy is there.
install_plugin() {
  local cli=$1 src=$2 dest
  dest=$PULUMI_HOME/plugins/resource-kubernetes-$K8S_PLUGIN_VERSION/pulumi-resource-kubernetes
  if [[ -f $dest ]] && cmp -s "$src" "$dest"; then return 0; fi
  local reinstall=()
  [[ -e $dest ]] && reinstall=(--reinstall)
  if ! PULUMI_SKIP_UPDATE_CHECK=true "$cli" plugin install resource kubernetes "${K8S_PLUGIN_VERSION#v}" \
    --file "$src" "${reinstall[@]}" >&2; then
    die "pulumi plugin install resource kubernetes ${K8S_PLUGIN_VERSION#v} --file $src failed"
  fi
  phase "installed pulumi-resource-kubernetes ${K8S_PLUGIN_VERSION#v} into $PULUMI_HOME/plugins"
}

# The path of a kubernetes plugin $K8S_PLUGIN_VERSION that CLI $1 lists as installed in
# $PULUMI_HOME (or the default ~/.pulumi); fails if none.
installed_plugin() {
  local cli=$1 home
  for home in ${PULUMI_HOME:+"$PULUMI_HOME"} "$HOME/.pulumi"; do
    if PULUMI_HOME=$home PULUMI_SKIP_UPDATE_CHECK=true "$cli" plugin ls --json 2>/dev/null |
      python3 -c 'import json, sys
want = sys.argv[1]
found = any(p.get("kind") == "resource" and p.get("name") == "kubernetes" and p.get("version") == want
            for p in json.load(sys.stdin) or [])
sys.exit(0 if found else 1)' "${K8S_PLUGIN_VERSION#v}" &&
      [[ -x $home/plugins/resource-kubernetes-$K8S_PLUGIN_VERSION/pulumi-resource-kubernetes ]]; then
      printf '%s\n' "$home/plugins/resource-kubernetes-$K8S_PLUGIN_VERSION/pulumi-resource-kubernetes"
      return 0
    fi
  done
  return 1
}

# ---- 1. a pulumi already on PATH ----------------------------------------------------------------
if [[ ${PULUMI_TOOLCHAIN_NO_AMBIENT:-0} != 1 ]] && ambient=$(command -v pulumi 2>/dev/null); then
  ambient_dir=$(cd "$(dirname "$(readlink -f "$ambient")")" && pwd -P)
  if [[ $ambient_dir != "$bin" ]] &&
    [[ -x $ambient_dir/pulumi-language-python && -x $ambient_dir/pulumi-language-python-exec ]] &&
    [[ $(PULUMI_SKIP_UPDATE_CHECK=true "$ambient" version 2>/dev/null) == "$PULUMI_VERSION" ]]; then
    ambient_plugin=
    if ((!with_plugins)) || ambient_plugin=$(installed_plugin "$ambient"); then
      [[ -x $ambient_dir/pulumi-resource-pulumi-python ]] ||
        log "warning: $ambient_dir has no pulumi-resource-pulumi-python: dynamic providers will not load"
      log "using pulumi $PULUMI_VERSION found on PATH: $ambient_dir${ambient_plugin:+ (kubernetes plugin: $ambient_plugin)}"
      ((install_plugins)) && install_plugin "$ambient" "$ambient_plugin"
      printf '%s\n' "$ambient_dir"
      exit 0
    fi
    log "pulumi $PULUMI_VERSION on PATH, but no kubernetes plugin ${K8S_PLUGIN_VERSION#v} installed: using the built toolchain"
  fi
fi

# ---- 2. warm cache: seconds -----------------------------------------------------------------------
if ((!rebuild)) && core_complete && ! plugin_pending; then
  warn_failed_plugins
  if ((install_plugins)) && plugin_complete; then install_plugin "$bin/pulumi" "$plugin_file"; fi
  printf '%s\n' "$bin"
  exit 0
fi

# ---- 3. build, under a lock -----------------------------------------------------------------------
mkdir -p "$dir" "$logs"
# shellcheck source=scripts/build-lock.sh
. "$(dirname "${BASH_SOURCE[0]}")/build-lock.sh"
take_build_lock "$dir"
# Whoever held the lock before us may have finished the work: core_complete is checked again
# below, after the lock is taken.
if ((rebuild)); then rm -f "$stamp" "$plugin_dir/.complete" "$plugin_dir/.failed"; fi

go_bin=$(command -v go 2>/dev/null || true)
if [[ -z $go_bin && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
if [[ -z $go_bin ]]; then
  die "the go command is required to build the Pulumi CLI (Go >= 1.25.11; 1.26 for the kubernetes plugin)"
fi
# `go generate` and `go run` inside the build call plain `go`.
PATH=$(dirname "$go_bin"):$PATH
export PATH
go_version=$("$go_bin" env GOVERSION)
jobs=${PULUMI_TOOLCHAIN_JOBS:-$(nproc 2>/dev/null || echo 2)}
export CGO_ENABLED=0
build_flags=(-p "$jobs" -trimpath -buildvcs=false -tags "$GO_TAGS")

# A new module under $1 with the given go.mod edits applied.
new_module() {
  local moddir=$1 name=$2
  shift 2
  rm -rf "$moddir"
  mkdir -p "$moddir"
  (cd "$moddir" && "$go_bin" mod init "$name" >/dev/null 2>&1 && "$go_bin" mod edit "$@")
}

# Imports that keep main packages of dependencies in the module graph for `go mod tidy`.
write_tools_go() {
  local file=$1 pkg
  shift
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
    printf ')\n'
  } >"$file"
}

# One-line summary of a failed go command's log.
failure_summary() {
  local file=$1 line target response
  line=$(grep -m1 -E 'reading https?://[^ ]+: (403|404|410) ' "$file" || true)
  if [[ -n $line ]]; then
    # "... reading https://<proxy>/<module>/@v/<version>.zip: 403 Forbidden" -> module@version: 403 Forbidden
    target=$(sed -nE 's#.*reading https?://[^/]+/(.+)/@v/([^ ]+)\.(info|mod|zip): (.*)$#\1@\2: \4#p; s#.*reading https?://[^/]+/(.+)/@v/list: (.*)$#\1 (version list): \2#p' <<<"$line" | head -n1)
    response=$(grep -m1 'server response:' "$file" | sed -E 's/^[[:space:]]*server response:[[:space:]]*//' || true)
    printf 'the Go module proxy does not serve %s%s\n' "${target:-$line}" "${response:+ ($response)}"
    return 0
  fi
  grep -v -e '^go: downloading' -e '^go: finding' -e '^[[:space:]]*$' "$file" | tail -n 4 | tr -s ' \t\n' ' ' | cut -c1-600
}

elapsed() { echo $(($(date +%s) - $1)); }

versions_header() {
  {
    echo "# Offline Pulumi toolchain built by scripts/pulumi-toolchain.sh (cache, not part of the repository)"
    echo "recipe: $recipe"
    echo "built_at: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "go: $go_version ($("$go_bin" env GOOS)/$("$go_bin" env GOARCH)), CGO_ENABLED=0, -trimpath, tags $GO_TAGS, -p $jobs"
  } >"$dir/.versions-core"
}

write_versions() {
  {
    cat "$dir/.versions-core"
    local f
    # Only this recipe's plugin: older recipes' directories stay for checkouts still on them.
    [[ -f $plugin_dir/VERSIONS ]] && cat "$plugin_dir/VERSIONS"
    echo "$COMMAND_PLUGIN_LIMIT"
  } >"$dir/VERSIONS.tmp"
  mv -f "$dir/VERSIONS.tmp" "$dir/VERSIONS"
}

build_core() {
  local start work stage sdk_dir host_kind host_pkg host_note reason
  start=$(date +%s)
  phase "building pulumi $PULUMI_VERSION and the Python language host with $go_version (a cold build downloads ~1.6 GB of modules and compiles for several minutes)"
  rm -f "$stamp"
  work=$dir/build/cli
  stage=$dir/bin.new
  rm -rf "$stage"
  mkdir -p "$stage"

  host_kind=minimal
  host_pkg=./cmd/pulumi-language-python
  host_note="minimal host (source embedded in scripts/pulumi-toolchain.sh) built against $PULUMI_SDK_MODULE@$PULUMI_VERSION"
  if [[ $langhost_mode == auto ]]; then
    phase "probing the upstream language host module $LANGHOST_MODULE@$LANGHOST_VERSION"
    new_module "$dir/build/probe" local/langhost-probe \
      "-require=$LANGHOST_MODULE@$LANGHOST_VERSION" "-require=$PULUMI_PKG_MODULE@$PULUMI_VERSION" \
      "-require=$PULUMI_SDK_MODULE@$PULUMI_VERSION" "-replace=$CLIPBOARD_REPLACE"
    if (cd "$dir/build/probe" && "$go_bin" list -mod=mod "$LANGHOST_MODULE") >"$logs/langhost-probe.log" 2>&1; then
      host_kind=upstream
      host_pkg=$LANGHOST_MODULE
      host_note="upstream $LANGHOST_MODULE@$LANGHOST_VERSION"
    else
      reason=$(failure_summary "$logs/langhost-probe.log")
      host_note="$host_note; upstream $LANGHOST_MODULE@$LANGHOST_VERSION unavailable: $reason"
      log "upstream language host not available from the module proxy; building the minimal host instead"
    fi
  fi

  local edits=("-require=$PULUMI_PKG_MODULE@$PULUMI_VERSION" "-require=$PULUMI_SDK_MODULE@$PULUMI_VERSION"
    "-replace=$CLIPBOARD_REPLACE")
  local imports=("$PULUMI_CLI_PACKAGE")
  if [[ $host_kind == upstream ]]; then
    edits+=("-require=$LANGHOST_MODULE@$LANGHOST_VERSION")
    imports+=("$LANGHOST_MODULE")
  fi
  new_module "$work" local/pulumi-toolchain "${edits[@]}"
  write_tools_go "$work/tools.go" "${imports[@]}"
  if [[ $host_kind == minimal ]]; then
    mkdir -p "$work/cmd/pulumi-language-python"
    host_source >"$work/cmd/pulumi-language-python/main.go"
  fi

  phase "resolving CLI modules (go mod tidy; log: $logs/cli.log)"
  if ! (cd "$work" && "$go_bin" mod tidy) >"$logs/cli.log" 2>&1; then
    die "go mod tidy failed for pulumi $PULUMI_VERSION: $(failure_summary "$logs/cli.log")"
  fi
  phase "compiling pulumi and pulumi-language-python (go build -p $jobs)"
  if ! (cd "$work" && "$go_bin" build "${build_flags[@]}" \
    -ldflags "-s -w -X $PULUMI_VERSION_VAR=$PULUMI_VERSION" \
    -o "$stage/" "$PULUMI_CLI_PACKAGE" "$host_pkg") >>"$logs/cli.log" 2>&1; then
    die "building pulumi $PULUMI_VERSION failed: $(failure_summary "$logs/cli.log")"
  fi

  # The executor and the dynamic-provider launcher are scripts in the sdk module (zips drop
  # the executable bit and the module cache is read-only: install, do not link).
  sdk_dir=$(cd "$work" && "$go_bin" list -m -f '{{.Dir}}' "$PULUMI_SDK_MODULE")
  [[ -n $sdk_dir && -d $sdk_dir/python ]] || die "cannot locate $PULUMI_SDK_MODULE in the module cache"
  install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$stage/pulumi-language-python-exec"
  install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$stage/pulumi-resource-pulumi-python"
  local policy_note="not shipped by $PULUMI_SDK_MODULE@$PULUMI_VERSION (removed upstream in v3.221.0; policy packs run through the language host)"
  if [[ -f $sdk_dir/python/dist/pulumi-analyzer-policy-python ]]; then
    install -m 0755 "$sdk_dir/python/dist/pulumi-analyzer-policy-python" "$stage/pulumi-analyzer-policy-python"
    policy_note="pulumi-analyzer-policy-python from $PULUMI_SDK_MODULE@$PULUMI_VERSION"
  fi

  local got
  got=$(PULUMI_SKIP_UPDATE_CHECK=true "$stage/pulumi" version 2>/dev/null || true)
  [[ $got == "$PULUMI_VERSION" ]] || die "built pulumi reports version '$got', expected $PULUMI_VERSION"

  rm -rf "$bin"
  mv "$stage" "$bin"
  versions_header
  {
    echo "cli: pulumi $PULUMI_VERSION from $PULUMI_PKG_MODULE@$PULUMI_VERSION + $PULUMI_SDK_MODULE@$PULUMI_VERSION (replace $CLIPBOARD_REPLACE)"
    echo "language_host: pulumi-language-python $PULUMI_VERSION ($host_kind): $host_note"
    echo "scripts: pulumi-language-python-exec, pulumi-resource-pulumi-python from $PULUMI_SDK_MODULE@$PULUMI_VERSION"
    echo "policy_analyzer: $policy_note"
    echo "cli_build_seconds: $(elapsed "$start")"
  } >>"$dir/.versions-core"
  write_versions
  printf '%s\n' "$recipe" >"$stamp"
  phase "pulumi $PULUMI_VERSION ready (built in $(elapsed "$start")s)"
}

plugin_failed() {
  local start=$1 reason=$2
  mkdir -p "$plugin_dir"
  echo "plugin kubernetes: FAILED pulumi-resource-kubernetes $K8S_PLUGIN_VERSION ($K8S_PROVIDER_MODULE@$K8S_PROVIDER_VERSION) after $(elapsed "$start")s: $reason" >"$plugin_dir/VERSIONS"
  printf '%s\n' "$reason" >"$plugin_dir/.failed"
  log "warning: plugin pulumi-resource-kubernetes $K8S_PLUGIN_VERSION was not built: $reason"
}

# go step in directory $1, appended to the plugin log; on failure sets $reason and fails.
plugin_step() {
  local where=$1 what=$2
  shift 2
  if ! (cd "$where" && "$@") >>"$plog" 2>&1; then
    reason="$what: $(failure_summary "$plog")"
    return 1
  fi
}

# Builds the kubernetes provider plugin into $plugins. A failure is recorded and reported, never
# fatal: the CLI is usable without it.
build_plugin() {
  local start work src helm_dir helm_version ldflags reason=
  start=$(date +%s)
  work=$dir/build/plugin-kubernetes
  plog=$logs/plugin-kubernetes.log
  : >"$plog"
  rm -f "$plugin_dir/.complete" "$plugin_dir/.failed"
  phase "building plugin pulumi-resource-kubernetes $K8S_PLUGIN_VERSION ($K8S_PROVIDER_MODULE@$K8S_PROVIDER_VERSION; log: $plog)"

  # The upstream main package embeds schema-embed.json and terraform-mapping-embed.json, which its
  # `go generate` step makes from tracked files (schema.json, terraform-mapping.json). The module
  # cache is read-only, so the package is copied into the throwaway module (in the cache, never
  # the repository) and generated there with VERSION set, as upstream's Makefile does.
  if ! new_module "$work" local/pulumi-resource-kubernetes \
    "-require=$K8S_PROVIDER_MODULE@$K8S_PROVIDER_VERSION" "-require=$K8S_SDK_REQUIRE" >>"$plog" 2>&1; then
    reason="cannot create the build module: $(failure_summary "$plog")"
  else
    write_tools_go "$work/tools.go" "$K8S_PROVIDER_MODULE/pkg/provider" "$K8S_PROVIDER_MODULE/pkg/version"
    if plugin_step "$work" "go mod tidy" "$go_bin" mod tidy; then
      phase "plugin modules resolved"
      if ! src=$(cd "$work" && "$go_bin" list -m -f '{{.Dir}}' "$K8S_PROVIDER_MODULE" 2>>"$plog") || [[ -z $src ]]; then
        reason="cannot locate $K8S_PROVIDER_MODULE in the module cache: $(failure_summary "$plog")"
      elif ! { mkdir -p "$work/cmd" && cp -R "$src/cmd/pulumi-resource-kubernetes" "$work/cmd/" &&
        chmod -R u+w "$work/cmd"; } >>"$plog" 2>&1; then
        reason="cannot copy the upstream main package: $(failure_summary "$plog")"
      elif plugin_step "$work/cmd/pulumi-resource-kubernetes" "go generate" \
        env VERSION="${K8S_PLUGIN_VERSION#v}" "$go_bin" generate ./main.go; then
        phase "plugin schema generated (go generate)"
        plugin_step "$work" "go mod tidy" "$go_bin" mod tidy || true
      fi
    fi
  fi
  if [[ -z $reason ]]; then
    helm_dir=$(cd "$work" && "$go_bin" list -m -f '{{.Dir}}' "$HELM_MODULE" 2>>"$plog" || true)
    helm_version=$(cd "$work" && "$go_bin" list -m -f '{{.Version}}' "$HELM_MODULE" 2>>"$plog" || true)
    if [[ -z $helm_dir ]] || ! grep -Eqs '^[[:space:]]*k8sVersionMajor[[:space:]]*=' "$helm_dir/pkg/chartutil/"*.go ||
      ! grep -Eqs '^[[:space:]]*k8sVersionMinor[[:space:]]*=' "$helm_dir/pkg/chartutil/"*.go; then
      reason="$HELM_MODULE ${helm_version:-?} has no $HELM_CHARTUTIL.k8sVersionMajor/k8sVersionMinor: the Helm default Kubernetes version cannot be stamped"
    fi
  fi
  # Version stamping as upstream's goreleaser does it, plus Helm's default Kubernetes version.
  ldflags="-s -w -X $K8S_VERSION_VAR=$K8S_PLUGIN_VERSION -X $HELM_CHARTUTIL.k8sVersionMajor=$HELM_KUBE_MAJOR -X $HELM_CHARTUTIL.k8sVersionMinor=$HELM_KUBE_MINOR"
  if [[ -z $reason ]]; then
    phase "compiling pulumi-resource-kubernetes (go build -p $jobs; helm $helm_version defaults to Kubernetes v$HELM_KUBE_MAJOR.$HELM_KUBE_MINOR.0)"
    plugin_step "$work" "go build" "$go_bin" build -p "$jobs" -trimpath -buildvcs=false -ldflags "$ldflags" \
      -o "$work/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes || true
  fi
  if [[ -z $reason ]] && ! { mkdir -p "$plugin_dir" && install -m 0755 "$work/pulumi-resource-kubernetes" "$plugin_file"; } 2>>"$plog"; then
    reason="cannot install into $plugin_dir"
  fi
  if [[ -n $reason ]]; then
    plugin_failed "$start" "$reason"
    return 0
  fi
  echo "plugin kubernetes: plugins/kubernetes-$plugin_recipe/pulumi-resource-kubernetes $K8S_PLUGIN_VERSION from $K8S_PROVIDER_MODULE@$K8S_PROVIDER_VERSION + $K8S_SDK_REQUIRE, $HELM_MODULE@$helm_version, -ldflags \"$ldflags\", built in $(elapsed "$start")s" >"$plugin_dir/VERSIONS"
  printf '%s\n' "$plugin_recipe" >"$plugin_dir/.complete"
  phase "plugin pulumi-resource-kubernetes $K8S_PLUGIN_VERSION ready (built in $(elapsed "$start")s)"
}

if ((rebuild)) || ! core_complete; then
  build_core
else
  phase "pulumi $PULUMI_VERSION already built in $bin"
  [[ -f $dir/.versions-core ]] || versions_header
fi
if plugin_pending; then
  if ! build_plugin; then
    plugin_failed "$(date +%s)" "unexpected error in the build script (see $logs/plugin-kubernetes.log)"
  fi
else
  warn_failed_plugins
fi
write_versions
if ((install_plugins)) && plugin_complete; then
  install_plugin "$bin/pulumi" "$plugin_file"
fi
printf '%s\n' "$bin"
