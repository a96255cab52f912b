#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test tools, builds once in the dev
# profile, and runs the unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-env.sh
cargo build --all-targets
cargo test --all-targets "$@"
