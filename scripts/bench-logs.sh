#!/usr/bin/env bash
# Log-capture benchmark: a container prints 1,000,000 lines of 100 bytes; we time, on the same
# exited container, `podman logs > /dev/null`, a raw engine-API read (curl), and stage2-tui's
# capture (podman's log file, and the API path); then a live capture that follows the container
# while it prints. Prints medians of 3 runs, ratios to `podman logs`, lines lost and peak RSS.
# Usage: scripts/bench-logs.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
LINES=${1:-1000000}
. scripts/engine-env.sh
stage2_engine_start
work=$(mktemp -d)
cleanup() { podman rm -f bench-logs bench-live >/dev/null 2>&1 || true; rm -rf "$work"; stage2_engine_stop; }
trap cleanup EXIT
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
cargo build --release --quiet
BIN=./target/release/stage2-tui
$BIN demo --prepare-only --pace 0 --dir "$work/demo" >/dev/null
IMAGE=localhost/stage2-demo/4.run-installer:demo
SOCK=${STAGE2_ENGINE#unix://}
PRINT="awk 'BEGIN{s=sprintf(\"%90s\",\"\"); gsub(/ /,\"x\",s); for(i=1;i<=$LINES;i++) printf \"%08d %s\\n\", i, s}'"

podman rm -f bench-logs >/dev/null 2>&1 || true
podman run --name bench-logs --log-driver k8s-file --entrypoint /bin/sh "$IMAGE" -c "$PRINT" >/dev/null
expected=$(podman logs bench-logs | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null

t_podman=$(for i in 1 2 3; do timeit sh -c "podman logs bench-logs > /dev/null"; done | median)
t_api=$(for i in 1 2 3; do timeit curl -s --unix-socket "$SOCK" -o /dev/null "http://d/v1.41/containers/bench-logs/logs?stdout=1&stderr=1"; done | median)
run_capture() { # mode → prints "secs lines rss"
    local out="$work/cap.log" extra=""; [ "$1" = api ] && extra=--api
    for i in 1 2 3; do
        $BIN capture-log bench-logs --out "$out" $extra | tr ' ' '\n' | awk -F= '/^secs=/{s=$2} /^lines=/{l=$2} /^peak_rss_kib=/{r=$2} END{print s, l, r}'
    done | sort -n | sed -n 2p
}
read -r t_file n_file rss_file < <(run_capture file)
read -r t_cap_api n_api rss_api < <(run_capture api)

# Saved log equals `podman logs` (text after our "<ts> <stream> " prefix).
$BIN capture-log bench-logs --out "$work/cap.log" >/dev/null
cmp -s <(cut -d' ' -f3- "$work/cap.log") <(podman logs bench-logs) && same=yes || same=NO

# Live: follow a container while it prints (started first, captured from its first line).
podman rm -f bench-live >/dev/null 2>&1 || true
podman create --name bench-live --log-driver k8s-file --entrypoint /bin/sh "$IMAGE" -c "sleep 1; $PRINT" >/dev/null
podman start bench-live >/dev/null
live=$($BIN capture-log bench-live --out "$work/live.log")
t_live=$(echo "$live" | tr ' ' '\n' | sed -n 's/^secs=//p')
n_live=$(echo "$live" | tr ' ' '\n' | sed -n 's/^lines=//p')
rss_live=$(echo "$live" | tr ' ' '\n' | sed -n 's/^peak_rss_kib=//p')

ratio() { echo "scale=2; $t_podman / $1" | bc -l; }
printf '\nlog capture, %s lines x 100 bytes (medians of 3; speed relative to `podman logs`)\n' "$LINES"
printf '%-34s %8s %8s %10s %10s\n' "reader" "seconds" "speed" "lines lost" "peak RSS"
printf '%-34s %8.2f %8s %10s %10s\n' "podman logs > /dev/null" "$t_podman" "1.00x" "-" "-"
printf '%-34s %8.2f %7sx %10s %10s\n' "raw API read (curl)" "$t_api" "$(ratio "$t_api")" "-" "-"
printf '%-34s %8.2f %7sx %10s %8s MB\n' "stage2-tui capture (log file)" "$t_file" "$(ratio "$t_file")" "$((expected - n_file))" "$((rss_file / 1024))"
printf '%-34s %8.2f %7sx %10s %8s MB\n' "stage2-tui capture (API path)" "$t_cap_api" "$(ratio "$t_cap_api")" "$((expected - n_api))" "$((rss_api / 1024))"
printf '%-34s %8.2f %8s %10s %8s MB\n' "stage2-tui live follow (1s + print)" "$t_live" "-" "$((LINES - n_live))" "$((rss_live / 1024))"
printf 'saved log identical to `podman logs`: %s\n' "$same"
