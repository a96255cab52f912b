#!/usr/bin/env bash
# Installs everything the test suite needs that cargo does not: moto server, pinned, in a
# venv under .venv/moto; the report validators in .venv/report-tools; Prometheus, Chromium
# and the deploy linters. Safe to run again: it only installs what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
venv=.venv/moto

if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setup: installing moto[server]==$MOTO_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# The report validators for tests/report_formats.rs: jsonschema checks the SARIF report
# against the SARIF 2.1.0 schema, and junitparser reads the JUnit report as CI tools do.
report_venv=.venv/report-tools
JSONSCHEMA_VERSION=4.26.0
JUNITPARSER_VERSION=5.0.3
if ! "$report_venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('jsonschema') != '$JSONSCHEMA_VERSION' or m.version('junitparser') != '$JUNITPARSER_VERSION')" 2>/dev/null; then
  echo "setup: installing jsonschema and junitparser into $report_venv" >&2
  rm -rf "$report_venv"
  python3 -m venv "$report_venv"
  "$report_venv/bin/pip" install --quiet --disable-pip-version-check \
    "jsonschema==$JSONSCHEMA_VERSION" "junitparser==$JUNITPARSER_VERSION"
fi

# The AWS CLI for tests/fix_apply_moto.rs: the fix script that `--format fix-script` writes is
# run with it, pointed at moto (AWS_ENDPOINT_URL), as a person would run it.
awscli_venv=.venv/awscli
AWSCLI_VERSION=1.46.3
if ! "$awscli_venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('awscli') != '$AWSCLI_VERSION')" 2>/dev/null; then
  echo "setup: installing awscli==$AWSCLI_VERSION into $awscli_venv" >&2
  rm -rf "$awscli_venv"
  python3 -m venv "$awscli_venv"
  "$awscli_venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
fi

# The Grafana alerting tools for tests/grafana_alerting.rs and scripts/gen-grafana-alerts.py:
# PyYAML reads alerts.yaml and writes the provisioning file, grafana-foundation-sdk holds
# Grafana's alerting types the JSON Schema is generated from, jsonschema validates with it.
grafana_venv=.venv/grafana-tools
PYYAML_VERSION=6.0.3
GRAFANA_SDK_VERSION='1769699379!11.6.0'
if ! "$grafana_venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('PyYAML') != '$PYYAML_VERSION' or m.version('jsonschema') != '$JSONSCHEMA_VERSION'
         or m.version('grafana-foundation-sdk') != '$GRAFANA_SDK_VERSION')" 2>/dev/null; then
  echo "setup: installing PyYAML, jsonschema and grafana-foundation-sdk into $grafana_venv" >&2
  rm -rf "$grafana_venv"
  python3 -m venv "$grafana_venv"
  "$grafana_venv/bin/pip" install --quiet --disable-pip-version-check \
    "PyYAML==$PYYAML_VERSION" "jsonschema==$JSONSCHEMA_VERSION" \
    "grafana-foundation-sdk==$GRAFANA_SDK_VERSION"
fi

# Prometheus and promtool (Debian's package) for the daemon's end-to-end tests: a real
# Prometheus server scrapes the daemon, and promtool lints a scrape. The package would start
# a system-wide Prometheus on :9090; a policy-rc.d that answers 101 keeps it from starting
# (Debian container images ship one; it is added only for the install when missing).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "setup: installing Debian's prometheus package" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to apt-get install prometheus (or install prometheus and promtool yourself)" >&2
    exit 1
  fi
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Chromium (Debian's package) for tests/vpc_picture_browser.rs: a real browser renders the
# HTML report and the daemon's status page headless, so the VPC picture is checked as a
# person sees it (screenshot) and as the browser parsed it (--dump-dom).
if ! command -v chromium >/dev/null; then
  echo "setup: installing Debian's chromium package" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to apt-get install chromium (or install chromium yourself)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 chromium fonts-dejavu-core >/dev/null
fi

# The linters the deploy tests run on deploy/ (hadolint, cfn-lint, kubectl, ...).
scripts/setup-deploy-tools.sh
