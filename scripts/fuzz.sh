#!/usr/bin/env bash
# Fuzzes the parsers with cargo-fuzz (libFuzzer) for a bounded time per target.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     default: 60 s, every target
#
# Targets (fuzz/fuzz_targets/): policy (parse, grants, compare), template (CloudFormation
# reader), config (YAML -> ConfigFile -> Settings), rule_pack, snapshot (parse + evaluate).
# Each is seeded from tests/corpus/. Crashes land in fuzz/artifacts/<target>/; add each one
# to tests/corpus/ with its expected outcome in tests/corpus/manifest.yaml.
#
# Not run in CI: it needs minutes per target, and an instrumented build of the whole crate.
#
# Why RUSTC_BOOTSTRAP=1: cargo-fuzz is built for nightly Rust and hands rustc unstable
# `-Z` options (the sanitizer flags, and others depending on its version); this machine has
# only the stable toolchain (1.95), and RUSTC_BOOTSTRAP=1 makes stable rustc accept them.
# The sanitizer is off (-s none): the crate has no unsafe code, so AddressSanitizer would
# only slow the runs; what is looked for is panics, overflow (debug assertions are on),
# timeouts and runaway memory.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(policy template config rule_pack snapshot)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
nice -n 10 cargo fuzz build -s none

seeds_for() {
    case "$1" in
        policy) echo "tests/corpus/policy tests/corpus/support rules/examples/policies rules/vendor/postgresml rules/vendor/teradata" ;;
        template) echo "tests/corpus/template rules/vendor" ;;
        config) echo "tests/corpus/config examples" ;;
        rule_pack) echo "tests/corpus/rules rules" ;;
        snapshot) echo "tests/corpus/snapshot tests/corpus/shapes examples" ;;
    esac
}

status=0
for target in "${targets[@]}"; do
    work="fuzz/corpus/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    for dir in $(seeds_for "$target"); do
        find "$dir" -maxdepth 1 -type f -size -1M -exec cp -n {} "$work/" \;
    done
    echo "== $target: ${seconds}s"
    if ! nice -n 10 cargo fuzz run -s none "$target" "$work" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="fuzz/artifacts/$target/" 2>&1 | tee "fuzz/artifacts/$target.log" |
        grep -E "^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|panicked|ERROR|SUMMARY" ; then
        :
    fi
    if ls "fuzz/artifacts/$target"/{crash,timeout,oom,leak}-* >/dev/null 2>&1; then
        echo "!! $target: findings in fuzz/artifacts/$target/"
        status=1
    fi
done
exit $status
