#!/usr/bin/env bash
# Log-capture benchmark, whole processes against whole processes. A container prints 1,000,000
# lines of 100 bytes; on that exited container we time, with GNU time (wall seconds, peak RSS):
#   - `podman logs bench-logs > FILE`
#   - `stage2-tui capture-log bench-logs --out FILE --live` (podman's log file, the runner's live
#     sink: every batch goes through a channel to a reader, as to the dashboard or the printer)
#   - the same through the engine API (`--api`), the path used when the log file is unreadable
# FILE is in the run-state folder's filesystem (/var/lib/stage2-tui, where the runner writes
# step logs when root). Each is run warm (page cache holding the container's log) and cold
# (`echo 3 > /proc/sys/vm/drop_caches` before each run; needs root). Medians of 3.
# Then a live capture that follows the container while it prints.
# Usage: scripts/bench-logs.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
LINES=${1:-1000000}
. scripts/engine-env.sh
stage2_engine_start
work=$(mktemp -d)
# Its own state root: nothing left under /var/lib/stage2-tui.
export STAGE2_STATE_ROOT="$work/state"
out_dir=/var/lib/stage2-tui/bench-$$
[ "$(id -u)" = 0 ] || out_dir=${XDG_STATE_HOME:-$HOME/.local/state}/stage2-tui/bench-$$
mkdir -p "$out_dir"
cleanup() { podman rm -f bench-logs bench-live >/dev/null 2>&1 || true; rm -rf "$work" "$out_dir"; stage2_engine_stop; }
trap cleanup EXIT
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
cargo build --release --quiet
BIN=$PWD/target/release/stage2-tui
$BIN demo --prepare-only --pace 0 --dir "$work/demo" >/dev/null
IMAGE=localhost/stage2-demo/4.run-installer:demo
PRINT="awk 'BEGIN{s=sprintf(\"%90s\",\"\"); gsub(/ /,\"x\",s); for(i=1;i<=$LINES;i++) printf \"%08d %s\\n\", i, s}'"

podman rm -f bench-logs >/dev/null 2>&1 || true
podman run --name bench-logs --log-driver k8s-file --entrypoint /bin/sh "$IMAGE" -c "$PRINT" >/dev/null
expected=$(podman logs bench-logs | wc -l)

can_drop=no
if [ "$(id -u)" = 0 ] && sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then can_drop=yes; fi
# whole <cache> <cmd...> → "wall_s peak_rss_kib" (median wall of 3, its RSS)
whole() {
    local cache=$1; shift
    for i in 1 2 3; do
        if [ "$cache" = cold ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
        /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2>&1
        tail -1 "$work/t"
    done | sort -n | sed -n 2p
}
caches=warm; [ "$can_drop" = yes ] && caches="warm cold"
printf '\nlog capture of %s lines x 100 bytes, whole processes (GNU time), medians of 3\n' "$LINES"
printf '%-6s %-52s %8s %8s %10s\n' "cache" "process" "wall s" "vs podman" "peak RSS"
for cache in $caches; do
    read -r tp rp < <(whole "$cache" sh -c "podman logs bench-logs > '$out_dir/podman.log'")
    read -r tf rf < <(whole "$cache" "$BIN" capture-log bench-logs --out "$out_dir/cap.log" --live)
    read -r ta ra < <(whole "$cache" "$BIN" capture-log bench-logs --out "$out_dir/api.log" --live --api)
    ratio() { echo "scale=2; $tp / $1" | bc -l; }
    printf '%-6s %-52s %8.2f %8s %7s MB\n' "$cache" "podman logs > file" "$tp" "1.00x" "$((rp / 1024))"
    printf '%-6s %-52s %8.2f %7sx %7s MB\n' "$cache" "stage2-tui capture-log --live (log file) > file" "$tf" "$(ratio "$tf")" "$((rf / 1024))"
    printf '%-6s %-52s %8.2f %7sx %7s MB\n' "$cache" "stage2-tui capture-log --live --api > file" "$ta" "$(ratio "$ta")" "$((ra / 1024))"
done
[ "$can_drop" = yes ] || echo "(cold cache not measured: dropping the page cache needs root)"

# Every line, in order: the saved log equals `podman logs` (text after "<ts> <stream> "), and the
# live sink saw them all.
res=$($BIN capture-log bench-logs --out "$out_dir/cap.log" --live)
live_seen=$(echo "$res" | tr ' ' '\n' | sed -n 's/^live_lines=//p')
cmp -s <(cut -d' ' -f3- "$out_dir/cap.log") <(podman logs bench-logs) && same=yes || same=NO
printf 'saved log identical to `podman logs`: %s; lines through the live sink: %s of %s\n' "$same" "$live_seen" "$expected"

# Live: follow a container while it prints (started first, captured from its first line).
podman rm -f bench-live >/dev/null 2>&1 || true
podman create --name bench-live --log-driver k8s-file --entrypoint /bin/sh "$IMAGE" -c "sleep 1; $PRINT" >/dev/null
podman start bench-live >/dev/null
/usr/bin/time -f "%e %M" -o "$work/t" "$BIN" capture-log bench-live --out "$out_dir/live.log" --live > "$work/live.out"
read -r tl rl < <(tail -1 "$work/t")
n_live=$(tr ' ' '\n' < "$work/live.out" | sed -n 's/^lines=//p')
printf 'live follow of a container printing them (1 s sleep first): %.2f s wall, %s MB, %s lines lost\n' "$tl" "$((rl / 1024))" "$((LINES - n_live))"
