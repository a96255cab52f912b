#!/usr/bin/env bash
# Runs every benchmark of vpc-auditor and prints the figures that BENCHMARKS.md records:
#
#   1. the machine (nproc, CPU, RAM) and the date;
#   2. AWS API calls per account-region of a `--once` scan of moto holding 13 and 130 VPCs;
#   3. wall time of that scan (release binary), beside a peer auditor (prowler, pinned, in
#      .venv/bench-peer) doing the same job when it is installed, and their ratio;
#   3b. many accounts: 16 accounts (roles assumed in moto) scanned with scan.concurrency 1, 4
#      and 16 through a proxy adding 50 ms per request (scripts/latency_proxy.py: AWS is that
#      far, moto is not), the wall time of each and the speed-up over concurrency 1;
#   4. criterion: rule evaluation of synthetic snapshots of 1k, 10k and 100k VPCs
#      (benches/evaluate.rs), /metrics with 10k series (benches/metrics.rs), IAM evaluation
#      of accounts of 500 to 5,000 roles (benches/iam_roles.rs) and one role with a 100 kB
#      policy (benches/policy_compare.rs);
#   5. peak RSS of the daemon idle (demo snapshot) and after scanning a 100k-subnet snapshot.
#
# Usage: scripts/bench.sh            (everything; about 17 minutes after the release build)
#        BENCH_PEER=0 scripts/bench.sh   (skip the peer auditor)
#        BENCH_PEER_INSTALL=1 scripts/bench.sh   (install the peer auditor first if missing)
#        BENCH_SECTIONS=moto,accounts scripts/bench.sh   (only those sections)
# Needs scripts/setup-test-env.sh to have run (moto in .venv/moto). Installs hyperfine and
# GNU time from Debian when missing and run as root. Everything talks to 127.0.0.1 only.
# Raw results (hyperfine JSON, reports, criterion output) go to target/bench-results/.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="$ROOT/target/bench-results"
mkdir -p "$OUT"
PY="$ROOT/.venv/moto/bin/python"
PEER_VENV="$ROOT/.venv/bench-peer"
PROWLER_VERSION=5.46.0

section() { printf '\n== %s\n' "$*"; }
# BENCH_SECTIONS picks what runs (default all): moto, accounts, criterion, rss.
want() { [[ ",${BENCH_SECTIONS:-moto,accounts,criterion,rss}," == *",$1,"* ]]; }

# --- tools -------------------------------------------------------------------------------
need_debian() { # command package
    command -v "$1" > /dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q "$2" > /dev/null 2>&1 ||
            { apt-get update -q > /dev/null && apt-get install -y -q "$2" > /dev/null; }
    fi
    command -v "$1" > /dev/null 2>&1
}
HAVE_HYPERFINE=1
need_debian hyperfine hyperfine || HAVE_HYPERFINE=0
need_debian /usr/bin/time time || { echo "bench.sh: GNU time (/usr/bin/time) is missing" >&2; exit 2; }
if [ ! -x "$ROOT/.venv/moto/bin/moto_server" ]; then
    echo "bench.sh: moto is not installed; run scripts/setup-test-env.sh first" >&2
    exit 2
fi
if [ "${BENCH_PEER_INSTALL:-0}" = 1 ] && [ ! -x "$PEER_VENV/bin/prowler" ]; then
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install -q "prowler==$PROWLER_VERSION"
fi

section machine
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "ram:     $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "rustc:   $(rustc --version)"

# --- build -------------------------------------------------------------------------------
# `cargo bench` builds the binary in the bench profile (= release) alongside the benches, so
# one build serves both: target/release/vpc-auditor is the binary that is timed.
section "build (cargo bench --no-run: the benches and target/release/vpc-auditor)"
nice -n 10 cargo bench --no-run 2>&1 | grep -v '^ *\(Compiling\|Executable\)' || true
BIN="$ROOT/target/release/vpc-auditor"
[ -x "$BIN" ] || { echo "bench.sh: $BIN was not built" >&2; exit 2; }

# --- moto ----------------------------------------------------------------------------------
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # port
    for _ in $(seq 1 300); do
        (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
        sleep 0.1
    done
    echo "bench.sh: nothing listens on 127.0.0.1:$1" >&2
    return 1
}
MOTO_PORT=$(free_port)
"$ROOT/.venv/moto/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" > "$OUT/moto.log" 2>&1 &
PIDS+=($!)
wait_port "$MOTO_PORT"
ENDPOINT="http://127.0.0.1:$MOTO_PORT"

# Credentials for moto only; no profile or instance metadata is ever read.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent/bench/config AWS_SHARED_CREDENTIALS_FILE=/nonexistent/bench/credentials
export NO_COLOR=1

auditor_scan() { # report-file
    local code=0
    "$BIN" --once --format json --endpoint-url "$ENDPOINT" --region us-east-1 > "$1" || code=$?
    # 0 and 1 are completed scans (1: findings at or above --fail-on); 2 is a failed scan.
    [ "$code" -le 1 ] || { echo "bench.sh: the scan failed (exit $code)" >&2; exit 2; }
}

api_calls() { # report-file vpcs
    "$PY" - "$1" "$2" << 'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
vpcs = int(sys.argv[2])
for scan in report["scans"]:
    calls = scan.get("api_calls", {})
    total = sum(calls.values())
    per_vpc = sum(n for op, n in calls.items() if op == "ec2:DescribeVpcAttribute")
    print(f"api calls  {scan['account_id']} {scan['region']}: {total} "
          f"({total - per_vpc} fixed + {per_vpc} DescribeVpcAttribute for {vpcs} VPCs)")
    for op, n in sorted(calls.items()):
        print(f"    {op}: {n}")
EOF
}

peer_available() {
    [ "${BENCH_PEER:-1}" != 0 ] && [ -x "$PEER_VENV/bin/prowler" ]
}
# The peer auditor restricted to the VPC and EC2 network checks, one region, against moto.
PEER_CHECKS="vpc_flow_logs_enabled vpc_subnet_separate_private_public vpc_subnet_different_az vpc_subnet_no_public_ip_by_default vpc_different_regions ec2_securitygroup_default_restrict_traffic"
peer_command() {
    echo "AWS_ENDPOINT_URL=$ENDPOINT $PEER_VENV/bin/prowler aws --region us-east-1 --checks $PEER_CHECKS --output-directory $OUT/prowler --output-formats json-ocsf --no-banner --ignore-exit-code-3"
}

wall_time() { # vpcs
    local vpcs=$1
    local ours="$BIN --once --format json --endpoint-url $ENDPOINT --region us-east-1 > /dev/null; test \$? -le 1"
    if [ "$HAVE_HYPERFINE" = 1 ]; then
        # The default rate limits keep EC2 under AWS's own quota (a bucket of 100 Describe
        # calls refilled at 20/s), which bounds a 130-VPC region (269 calls) below by
        # (269 - 100) / 20 = 8.5 s; the second command lifts them, for the auditor's own speed.
        printf 'scan:\n  rate_limits:\n    ec2: {per_second: 100000, burst: 10000}\n' > "$OUT/unlimited.yaml"
        local unlimited="$BIN --once --format json --endpoint-url $ENDPOINT --region us-east-1 --config $OUT/unlimited.yaml > /dev/null; test \$? -le 1"
        local args=(--shell=bash --warmup 1 --runs "${BENCH_RUNS:-5}" --export-json "$OUT/wall-$vpcs.json"
            -n "vpc-auditor --once ($vpcs VPCs)" "$ours"
            -n "vpc-auditor --once ($vpcs VPCs), rate limits lifted" "$unlimited")
        if peer_available; then
            args+=(-n "prowler $PROWLER_VERSION, VPC/EC2 checks ($vpcs VPCs)" "$(peer_command) > $OUT/prowler-$vpcs.log 2>&1")
        fi
        hyperfine "${args[@]}"
        "$PY" - "$OUT/wall-$vpcs.json" << 'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    print(f"wall time  {r['command']}: mean {r['mean']:.3f} s ± {r['stddev'] or 0:.3f}, min {r['min']:.3f} s")
peer = [r for r in results if r["command"].startswith("prowler")]
if peer:
    for ours in results[:2]:
        print(f"ratio      peer / {ours['command']} = {peer[0]['mean'] / ours['mean']:.1f}x")
EOF
    else
        for _ in 1 2 3; do
            local start end
            start=$(date +%s.%N); bash -c "$ours"; end=$(date +%s.%N)
            echo "wall time  vpc-auditor --once ($vpcs VPCs): $(echo "$end - $start" | bc) s"
        done
    fi
    if peer_available; then
        echo "peer log: $OUT/prowler-$vpcs.log"
    elif [ "${BENCH_PEER:-1}" != 0 ]; then
        echo "peer auditor: not installed in $PEER_VENV (BENCH_PEER_INSTALL=1 installs prowler==$PROWLER_VERSION)"
    fi
}

if want moto; then
for vpcs in 13 130; do
    section "moto with $vpcs VPCs in us-east-1 (the default VPC included)"
    "$PY" "$ROOT/scripts/bench_scenario.py" "$ENDPOINT" "$vpcs"
    auditor_scan "$OUT/report-$vpcs.json"
    api_calls "$OUT/report-$vpcs.json" "$vpcs"
    wall_time "$vpcs"
done
fi

# --- many accounts ---------------------------------------------------------------------------
if want accounts; then
section "16 accounts x 1 region (roles assumed in moto, 50 ms per request), by scan.concurrency"
LATENCY_PORT=$(free_port)
"$PY" "$ROOT/scripts/latency_proxy.py" "$LATENCY_PORT" "$MOTO_PORT" "${BENCH_LATENCY_MS:-50}" &
PIDS+=($!)
wait_port "$LATENCY_PORT"
SLOW_ENDPOINT="http://127.0.0.1:$LATENCY_PORT"
accounts_config() { # concurrency
    printf 'regions: [us-east-1]\nscan:\n  concurrency: %s\naccounts:\n' "$1"
    for i in $(seq 1 16); do
        printf '  - role_arn: arn:aws:iam::%012d:role/vpc-auditor-member\n' "$((700000000000 + i))"
    done
}
for c in 1 4 16; do accounts_config "$c" > "$OUT/accounts-c$c.yaml"; done
# A first scan makes moto create each account's default VPC, so the timed runs are alike.
"$BIN" --once --format json --endpoint-url "$SLOW_ENDPOINT" --config "$OUT/accounts-c16.yaml" > "$OUT/report-accounts.json" || true
"$PY" - "$OUT/report-accounts.json" << 'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
scans = report["scans"]
failed = [s for s in scans if s["status"] != "ok"]
regional = [s for s in scans if s["region"] != "global"]
calls = [sum(s["api_calls"].values()) for s in regional]
print(f"accounts   {len({s['account_id'] for s in scans})}, scans {len(scans)}, failed {len(failed)}")
print(f"api calls  per account-region: min {min(calls)}, max {max(calls)}")
EOF
if [ "$HAVE_HYPERFINE" = 1 ]; then
    args=(--shell=bash --warmup 1 --runs "${BENCH_RUNS:-5}" --export-json "$OUT/wall-accounts.json")
    for c in 1 4 16; do
        args+=(-n "16 accounts, concurrency $c" "$BIN --once --format json --endpoint-url $SLOW_ENDPOINT --config $OUT/accounts-c$c.yaml > /dev/null; test \$? -le 1")
    done
    hyperfine "${args[@]}"
    "$PY" - "$OUT/wall-accounts.json" << 'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]["mean"]
for r in results:
    print(f"wall time  {r['command']}: mean {r['mean']:.3f} s, speed-up {base / r['mean']:.1f}x over concurrency 1")
EOF
fi
fi

# --- criterion -----------------------------------------------------------------------------
if want criterion; then
section "rule evaluation, synthetic snapshots (criterion, one thread)"
nice -n 0 cargo bench --bench evaluate 2>&1 | tee "$OUT/evaluate.txt" | grep -v '^\(Benchmarking\|Gnuplot\|Found\| *[0-9]* (\)'
section "/metrics with 10k series (criterion)"
cargo bench --bench metrics 2>&1 | tee "$OUT/metrics.txt" | grep -v '^\(Benchmarking\|Gnuplot\|Found\| *[0-9]* (\)'
section "IAM evaluation of 500 to 5,000 roles, two regions (criterion, one thread)"
cargo bench --bench iam_roles 2>&1 | tee "$OUT/iam_roles.txt" | grep -v '^\(Benchmarking\|Gnuplot\|Found\| *[0-9]* (\)'
section "one role with a 100 kB policy against its expectation (criterion)"
cargo bench --bench policy_compare 2>&1 | tee "$OUT/policy_compare.txt" | grep -v '^\(Benchmarking\|Gnuplot\|Found\| *[0-9]* (\)'
fi

# --- memory ----------------------------------------------------------------------------------
if want rss; then
section "peak RSS"
SNAPSHOT="$OUT/snapshot-100k-subnets.json"
cargo bench --bench write_snapshot -- 16667 "$SNAPSHOT" 2>&1 | grep '^write_snapshot'

# Starts the daemon with the given source, waits for its first scan, prints VmRSS and VmHWM.
daemon_rss() { # label args...
    local label=$1
    shift
    local port
    port=$(free_port)
    "$BIN" --listen "127.0.0.1:$port" "$@" > "$OUT/daemon-$label.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$port"
    for _ in $(seq 1 600); do
        if "$PY" -c "
import sys, urllib.request
text = urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode()
sys.exit(0 if any(l.startswith('vpc_auditor_scans_total ') and float(l.split()[1]) >= 1 for l in text.splitlines()) else 1)
" 2> /dev/null; then break; fi
        sleep 0.5
    done
    sleep 2
    local rss hwm
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    printf 'rss        daemon %s: VmRSS %.1f MiB, peak (VmHWM) %.1f MiB\n' "$label" "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
    kill "$pid"
    wait "$pid" 2> /dev/null || true
}
daemon_rss "idle, after scanning the demo snapshot" --demo
daemon_rss "after scanning 100k subnets (16,667 VPCs)" --from-snapshot "$SNAPSHOT"
/usr/bin/time -v "$BIN" --once --format json --from-snapshot "$SNAPSHOT" > /dev/null 2> "$OUT/once-100k.time" || true
printf 'rss        --once on 100k subnets: peak %.1f MiB, wall %s\n' \
    "$(awk -F': ' '/Maximum resident/ {print $2 / 1024}' "$OUT/once-100k.time")" \
    "$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$OUT/once-100k.time")"
fi

section done
echo "raw results in $OUT"
