#!/usr/bin/env bash
# Offline Pulumi toolchain, built from Go modules.
#
# Usage: scripts/pulumi-toolchain.sh [--no-plugins] [--retry-plugins] [--rebuild]
#
# Prints ONE line on stdout: the absolute path of a bin directory holding `pulumi`, the Python
# language host `pulumi-language-python`, its executor `pulumi-language-python-exec` and the
# dynamic-provider launcher `pulumi-resource-pulumi-python` (plus the provider plugins that could
# be built). Everything else goes to stderr.
#
# This machine reaches package registries only (no GitHub, no get.pulumi.com), so the CLI is built
# from the Go module proxy through a throwaway main module (pkg/go.mod has local replace
# directives, so `go install ...@version` is refused). A pulumi on PATH that already reports
# the pinned version, with the Python language host next to it, is used as is.
#
# Cache (outside the repository):
#   ${PULUMI_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxmox-k8s-platform/toolchain}/pulumi-<version>/
#     bin/       the binaries              VERSIONS   what was built, plugin failures and why
#     .complete  written last, after a complete build (a killed build is redone, never half-used)
#     .lock      flock: concurrent invocations build once
#     logs/      build logs
#
# Options:
#   --no-plugins     skip the provider plugins (pulumi-resource-kubernetes, pulumi-resource-command)
#   --retry-plugins  retry plugin builds that failed before (failures are remembered, not retried)
#   --rebuild        ignore the cache stamp and build again
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

# Provider plugins: name|plugin version|module|module version|main package|version variable
# Neither project tags its provider module, so these are pseudo-versions of the release commits.
readonly PLUGINS=(
  "kubernetes|v4.32.0|github.com/pulumi/pulumi-kubernetes/provider/v4|v4.0.0-20260608201737-a03ff6ba58d2|github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes|github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version"
  "command|v1.2.1|github.com/pulumi/pulumi-command/provider|v0.0.0-20260303235922-7f3eb6f3b77c|github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command|github.com/pulumi/pulumi-command/provider/pkg/version.Version"
)
# pulumi-kubernetes' provider imports its own Go SDK (helm v4 types); require the matching tag.
readonly K8S_SDK_REQUIRE=github.com/pulumi/pulumi-kubernetes/sdk/v4@v4.32.0

log() { printf 'pulumi-toolchain: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

with_plugins=1
retry_plugins=0
rebuild=0
for arg in "$@"; do
  case "$arg" in
    --no-plugins) with_plugins=0 ;;
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

required_files=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)

core_complete() {
  [[ -f $stamp && $(cat "$stamp") == "$recipe" ]] || return 1
  local f
  for f in "${required_files[@]}"; do [[ -x $bin/$f ]] || return 1; done
}

# Plugins still to build in this run (no success/failure marker for the current recipe).
pending_plugins() {
  ((with_plugins)) || return 0
  local spec name
  for spec in "${PLUGINS[@]}"; do
    name=${spec%%|*}
    if [[ -f $dir/.plugin-$name.ok && -x $bin/pulumi-resource-$name ]]; then continue; fi
    if [[ -f $dir/.plugin-$name.failed ]] && ((!retry_plugins)); then continue; fi
    printf '%s\n' "$name"
  done
}

warn_failed_plugins() {
  ((with_plugins)) || return 0
  local f failed=()
  for f in "$dir"/.plugin-*.failed; do
    [[ -f $f ]] || continue
    f=${f##*/.plugin-}
    failed+=("${f%.failed}")
  done
  ((${#failed[@]})) || return 0
  log "warning: provider plugin(s) not available: ${failed[*]} (why: $dir/VERSIONS; retry: --retry-plugins)"
}

# ---- 1. a pulumi already on PATH ----------------------------------------------------------------
if [[ ${PULUMI_TOOLCHAIN_NO_AMBIENT:-0} != 1 ]] && ambient=$(command -v pulumi 2>/dev/null); then
  ambient_dir=$(cd "$(dirname "$(readlink -f "$ambient")")" && pwd -P)
  if [[ $ambient_dir != "$bin" ]] &&
    [[ -x $ambient_dir/pulumi-language-python && -x $ambient_dir/pulumi-language-python-exec ]] &&
    [[ $(PULUMI_SKIP_UPDATE_CHECK=true "$ambient" version 2>/dev/null) == "$PULUMI_VERSION" ]]; then
    [[ -x $ambient_dir/pulumi-resource-pulumi-python ]] ||
      log "warning: $ambient_dir has no pulumi-resource-pulumi-python: dynamic providers will not load"
    log "using pulumi $PULUMI_VERSION found on PATH: $ambient_dir"
    printf '%s\n' "$ambient_dir"
    exit 0
  fi
fi

# ---- 2. warm cache: seconds -----------------------------------------------------------------------
if ((!rebuild)) && core_complete && [[ -z $(pending_plugins) ]]; then
  warn_failed_plugins
  printf '%s\n' "$bin"
  exit 0
fi

# ---- 3. build, under a lock -----------------------------------------------------------------------
mkdir -p "$dir" "$logs"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.lock"
  if ! flock -n 9; then
    log "another build holds $dir/.lock; waiting for it"
    flock 9
  fi
else
  log "warning: flock not found; concurrent runs may build twice"
fi
# Whoever held the lock before us may have finished the work: core_complete is checked again
# below, after the lock is taken.
if ((rebuild)); then rm -f "$stamp"; fi

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
    for f in "$dir"/.plugin-*.ok "$dir"/.plugin-*.failed; do
      [[ -f $f ]] && tail -n +2 "$f"
    done
    true
  } >"$dir/VERSIONS.tmp"
  mv -f "$dir/VERSIONS.tmp" "$dir/VERSIONS"
}

build_core() {
  local start work stage sdk_dir host_kind host_pkg host_note reason
  start=$(date +%s)
  log "building pulumi $PULUMI_VERSION and the Python language host with $go_version (a cold build downloads ~1.6 GB of modules and compiles for several minutes)"
  rm -f "$stamp" "$dir"/.plugin-*.ok "$dir"/.plugin-*.failed
  work=$dir/build/cli
  stage=$dir/bin.new
  rm -rf "$stage"
  mkdir -p "$stage"

  host_kind=minimal
  host_pkg=./cmd/pulumi-language-python
  host_note="minimal host (source embedded in scripts/pulumi-toolchain.sh) built against $PULUMI_SDK_MODULE@$PULUMI_VERSION"
  if [[ $langhost_mode == auto ]]; then
    log "probing the upstream language host module $LANGHOST_MODULE@$LANGHOST_VERSION"
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

  log "resolving modules (go mod tidy; log: $logs/cli.log)"
  if ! (cd "$work" && "$go_bin" mod tidy) >"$logs/cli.log" 2>&1; then
    die "go mod tidy failed for pulumi $PULUMI_VERSION: $(failure_summary "$logs/cli.log")"
  fi
  log "compiling pulumi and pulumi-language-python (go build -p $jobs)"
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
  log "pulumi $PULUMI_VERSION ready in $(elapsed "$start")s"
}

plugin_failed() {
  local name=$1 plugin_version=$2 module=$3 module_version=$4 start=$5 reason=$6
  {
    echo "$reason"
    echo "plugin $name: FAILED pulumi-resource-$name $plugin_version ($module@$module_version) after $(elapsed "$start")s: $reason"
  } >"$dir/.plugin-$name.failed"
  log "warning: plugin pulumi-resource-$name $plugin_version was not built: $reason"
}

# Builds one provider plugin into $bin. Every step is checked explicitly: a plugin failure is
# recorded and reported, never fatal (the caller also guards against anything unexpected).
build_plugin() {
  local name=$1 spec plugin_version module module_version main_pkg version_var start work plog src
  local reason=
  for spec in "${PLUGINS[@]}"; do [[ ${spec%%|*} == "$name" ]] && break; done
  IFS='|' read -r name plugin_version module module_version main_pkg version_var <<<"$spec"
  start=$(date +%s)
  work=$dir/build/plugin-$name
  plog=$logs/plugin-$name.log
  rm -f "$dir/.plugin-$name.ok" "$dir/.plugin-$name.failed"
  log "building plugin pulumi-resource-$name $plugin_version ($module@$module_version; log: $plog)"

  local edits=("-require=$module@$module_version") build_pkg=$main_pkg
  if [[ $name == kubernetes ]]; then edits+=("-require=$K8S_SDK_REQUIRE"); fi
  if ! new_module "$work" "local/pulumi-resource-$name" "${edits[@]}" >"$plog" 2>&1; then
    reason="cannot create the build module: $(failure_summary "$plog")"
  elif [[ $name == kubernetes ]]; then
    # The upstream main package embeds schema-embed.json and terraform-mapping-embed.json, which
    # its `go generate` step makes from tracked files (schema.json, terraform-mapping.json). The
    # module cache is read-only, so the package is copied into the throwaway module (in the
    # cache, not the repository) and generated there with VERSION set as the Makefile does.
    write_tools_go "$work/tools.go" "$module/pkg/provider" "$module/pkg/version"
    build_pkg=./cmd/pulumi-resource-kubernetes
    if ! (cd "$work" && "$go_bin" mod tidy) >>"$plog" 2>&1; then
      reason="go mod tidy: $(failure_summary "$plog")"
    elif ! src=$(cd "$work" && "$go_bin" list -m -f '{{.Dir}}' "$module" 2>>"$plog") || [[ -z $src ]]; then
      reason="cannot locate $module in the module cache: $(failure_summary "$plog")"
    elif ! { mkdir -p "$work/cmd" && cp -R "$src/cmd/pulumi-resource-kubernetes" "$work/cmd/" &&
      chmod -R u+w "$work/cmd"; } >>"$plog" 2>&1; then
      reason="cannot copy the upstream main package: $(failure_summary "$plog")"
    elif ! (cd "$work/cmd/pulumi-resource-kubernetes" &&
      VERSION=${plugin_version#v} "$go_bin" generate ./main.go) >>"$plog" 2>&1; then
      reason="go generate: $(failure_summary "$plog")"
    elif ! (cd "$work" && "$go_bin" mod tidy) >>"$plog" 2>&1; then
      reason="go mod tidy: $(failure_summary "$plog")"
    fi
  else
    write_tools_go "$work/tools.go" "$main_pkg"
    if ! (cd "$work" && "$go_bin" mod tidy) >>"$plog" 2>&1; then
      reason="go mod tidy: $(failure_summary "$plog")"
    fi
  fi
  # Version stamping as upstream's goreleaser does it: -X <module>/pkg/version.Version={{.Tag}}.
  if [[ -z $reason ]] && ! (cd "$work" && "$go_bin" build -p "$jobs" -trimpath -buildvcs=false \
    -ldflags "-s -w -X $version_var=$plugin_version" \
    -o "$work/pulumi-resource-$name" "$build_pkg") >>"$plog" 2>&1; then
    reason="go build: $(failure_summary "$plog")"
  fi
  if [[ -z $reason ]] && ! { install -m 0755 "$work/pulumi-resource-$name" "$bin/.pulumi-resource-$name.tmp" &&
    mv -f "$bin/.pulumi-resource-$name.tmp" "$bin/pulumi-resource-$name"; } 2>>"$plog"; then
    reason="cannot install into $bin"
  fi
  if [[ -n $reason ]]; then
    plugin_failed "$name" "$plugin_version" "$module" "$module_version" "$start" "$reason"
    return 0
  fi
  {
    echo "ok"
    echo "plugin $name: pulumi-resource-$name $plugin_version from $module@$module_version, -X $version_var=$plugin_version, built in $(elapsed "$start")s"
  } >"$dir/.plugin-$name.ok"
  log "plugin pulumi-resource-$name $plugin_version ready in $(elapsed "$start")s"
}

if ((rebuild)) || ! core_complete; then
  build_core
else
  log "pulumi $PULUMI_VERSION already built in $bin"
  [[ -f $dir/.versions-core ]] || versions_header
fi
attempted=0
for name in $(pending_plugins); do
  attempted=1
  if ! build_plugin "$name"; then
    plugin_failed "$name" "?" "?" "?" "$(date +%s)" "unexpected error in the build script (see $logs/plugin-$name.log)"
  fi
done
write_versions
# Failures of this run were reported as they happened; repeat older ones.
((attempted)) || warn_failed_plugins
printf '%s\n' "$bin"
