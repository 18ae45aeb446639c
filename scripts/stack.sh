#!/usr/bin/env bash
# Preview, deploy or promote a real stack (dev, staging, prod). This is what `make preview`, `make deploy`
# and `make promote` run, on a laptop and in CI alike (.github/workflows/*.yml call the same targets).
#
#   scripts/stack.sh preview STACK [pulumi args...]   checks, then pulumi preview --diff with the policy pack
#   scripts/stack.sh deploy  STACK [pulumi args...]   checks, then pulumi up --yes with the policy pack
#   scripts/stack.sh promote FROM TO [--write]        python -m tools.promote (a dry run without --write)
#   scripts/stack.sh check   STACK                    only the offline checks (no backend, no credentials)
#   scripts/stack.sh environments                     the environments, in promotion order
#
# The checks run before any credential is used: the stack file is validated as the program will
# validate it (python -m tools.stack_file check), then the config guardrails of the policy pack run on
# it (python -m policy.guardrails check-config: TLS verification, plain-text secrets).
#
# Environment:
#   PULUMI_BACKEND_URL    self-managed state backend, e.g. s3://pulumi-state?endpoint=minio.example.com:9000
#                         &s3ForcePathStyle=true (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY),
#                         file:///srv/pulumi-state, azblob://..., gs://...
#   PULUMI_ACCESS_TOKEN   Pulumi Cloud, used when PULUMI_BACKEND_URL is unset (PULUMI_ORG: the organization)
#                         One of the two is required: the checkout-local file backend of scripts/pulumi-env.sh
#                         (the local stack's) is never used for these stacks.
#   PULUMI_CONFIG_PASSPHRASE / PULUMI_CONFIG_PASSPHRASE_FILE   the stack's passphrase (secure: values)
#   POLICY_PACK           policy pack directory (default: policy); "none" skips it with a warning.
#   STACK_LOG             also write pulumi's output to this file (CI posts it on the pull request)
#
# The CLI: a `pulumi` on PATH is used as is (CI installs v3.259.0 with pulumi/actions; provider plugins
# are then acquired as usual). Without one, scripts/pulumi-env.sh provides the offline toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly PULUMI_VERSION=v3.259.0 # keep in step with requirements.txt and scripts/pulumi-toolchain.sh
py=.venv/bin/python

die() {
  printf 'stack.sh: %s\n' "$*" >&2
  exit 2
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

[[ -x $py ]] || die "no $py: run make setup first"
mapfile -t environments < <("$py" -m tools.promote --list)

require_stack() {
  local stack=${1:-} env
  [[ -n $stack ]] || die "a stack is required: one of ${environments[*]}"
  [[ $stack != local ]] || die "the local stack runs with make up / make down (scripts/local-stack.sh)"
  for env in "${environments[@]}"; do [[ $env == "$stack" ]] && return 0; done
  die "unknown stack '$stack': one of ${environments[*]}"
}

offline_checks() {
  "$py" -m tools.stack_file check "$1"
  "$py" -m policy.guardrails check-config --stack "$1"
}

# The CLI and the backend, without ever falling back to the local stack's file backend.
pulumi_env() {
  local backend=${PULUMI_BACKEND_URL:-} version
  if [[ -z $backend && -z ${PULUMI_ACCESS_TOKEN:-} ]]; then
    die "no state backend: set PULUMI_BACKEND_URL (self-managed) or PULUMI_ACCESS_TOKEN (Pulumi Cloud)"
  fi
  if ! command -v pulumi >/dev/null 2>&1; then
    # shellcheck source=scripts/pulumi-env.sh
    . scripts/pulumi-env.sh --no-plugins
    export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=false
  fi
  if [[ -n $backend ]]; then
    export PULUMI_BACKEND_URL=$backend
  else
    unset PULUMI_BACKEND_URL
  fi
  version=$(PULUMI_SKIP_UPDATE_CHECK=true pulumi version)
  [[ $version == "$PULUMI_VERSION" ]] ||
    printf 'stack.sh: warning: pulumi %s is not the pinned %s\n' "$version" "$PULUMI_VERSION" >&2
}

select_stack() {
  local ref=${PULUMI_ORG:+$PULUMI_ORG/}$1
  # --create: the first preview or deploy of a new backend creates the (empty) stack; the passphrase
  # provider matches the encryptionsalt and secure: values committed in Pulumi.<stack>.yaml.
  pulumi stack select --create --secrets-provider passphrase --non-interactive "$ref" >/dev/null
  printf '%s\n' "$ref"
}

policy_args=()
policy_setup() {
  local pack=${POLICY_PACK:-policy}
  if [[ $pack == none ]]; then
    printf 'stack.sh: WARNING: POLICY_PACK=none: the policy pack does not run (config guardrails ran above)\n' >&2
    return 0
  fi
  [[ -f $pack/PulumiPolicy.yaml ]] || die "no policy pack in $pack"
  policy_args=(--policy-pack "$pack")
  # Tell the pack which stack file to read (the engine does not always pass the stack to policy packs).
  export GUARDRAILS_STACK=$1 GUARDRAILS_PROJECT_DIR=$PWD
}

run_logged() {
  if [[ -n ${STACK_LOG:-} ]]; then
    mkdir -p "$(dirname "$STACK_LOG")"
    "$@" 2>&1 | tee "$STACK_LOG"
  else
    "$@"
  fi
}

command=${1:-}
case "$command" in
  environments)
    printf '%s\n' "${environments[@]}"
    ;;
  check)
    require_stack "${2:-}"
    offline_checks "$2"
    ;;
  preview | deploy)
    require_stack "${2:-}"
    stack=$2
    shift 2
    offline_checks "$stack"
    pulumi_env
    ref=$(select_stack "$stack")
    policy_setup "$stack"
    if [[ $command == preview ]]; then
      run_logged pulumi preview --stack "$ref" --diff --non-interactive "${policy_args[@]}" "$@"
    else
      run_logged pulumi up --stack "$ref" --yes --diff --non-interactive "${policy_args[@]}" "$@"
    fi
    ;;
  promote)
    [[ -n ${2:-} && -n ${3:-} ]] || die "usage: $0 promote FROM TO [--write]"
    "$py" -m tools.promote --from "$2" --to "$3" "${@:4}"
    ;;
  -h | --help | help | "")
    usage
    ;;
  *)
    die "unknown command '$command' (see $0 --help)"
    ;;
esac
