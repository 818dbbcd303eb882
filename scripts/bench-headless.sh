#!/usr/bin/env bash
# Headless flood benchmark: one stage prints LINES lines (default 1,000,000, ~100 bytes each).
# Whole processes, timed by GNU time: `stage2-tui run --headless > file` against `podman run` of
# the same container printing the same lines `> file`. Reports wall seconds and peak RSS, and
# checks that every line reached stage2-tui's output. Medians of 5; page cache warm (the image
# is local, nothing is dropped between runs). The same work on both sides: each run starts with
# the container's name free (the previous run's container is removed before the clock starts).
# Usage: scripts/bench-headless.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
LINES=${1:-1000000}
. scripts/engine-env.sh
stage2_engine_start
work=$(mktemp -d)
# Its own state root: the saved step log is counted too.
export STAGE2_STATE_ROOT="$work/state"
cleanup() { podman rm -f flood bench-podman-run >/dev/null 2>&1 || true; rm -rf "$work"; stage2_engine_stop; }
trap cleanup EXIT
cargo build --release --quiet
BIN=$PWD/target/release/stage2-tui
$BIN demo --prepare-only --pace 0 --dir "$work/dc" >/dev/null
IMAGE=localhost/stage2-demo/4.run-installer:demo
SCRIPT="seq 1 $LINES | sed 's/^/flood line padded to look like terraform output, about one hundred bytes: /'"
cat > "$work/dc/stage2-pipeline.toml" <<TOML
[[step]]
id = "flood"
kind = "oneshot"
image = "4.run-installer"
entrypoint = ["/bin/sh", "-c", "$SCRIPT"]
TOML
# The script wrote this pipeline file itself: it accepts it (stage2-tui runs no file unaccepted).
"$BIN" pipeline accept --yes --deployconfig "$work/dc" >/dev/null
for i in 1 2 3 4 5; do
    podman rm -f flood >/dev/null 2>&1 || true
    /usr/bin/time -f "%e %M" -o "$work/tui.time" "$BIN" run --headless --restart --deployconfig "$work/dc" > "$work/tui.out"
    tail -1 "$work/tui.time" >> "$work/tui.times"
    podman rm -f bench-podman-run >/dev/null 2>&1 || true
    /usr/bin/time -f "%e %M" -o "$work/podman.time" podman run --name bench-podman-run --entrypoint /bin/sh "$IMAGE" -c "$SCRIPT" > "$work/podman.out"
    tail -1 "$work/podman.time" >> "$work/podman.times"
done
got=$(grep -c '^flood | flood line' "$work/tui.out" || true)
saved_log=$(find "$work/state" -name 'flood.1.log' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
saved=$(grep -c ' stdout flood line' "$saved_log" || true)
read -r tw tr < <(sort -n "$work/tui.times" | sed -n 3p)
read -r pw pr < <(sort -n "$work/podman.times" | sed -n 3p)
printf '%-40s %8s %12s   (medians of 5, warm cache)\n' "process" "wall s" "peak RSS"
printf '%-40s %8s %9s MB\n' "podman run (same container) > file" "$pw" "$((pr / 1024))"
printf '%-40s %8s %9s MB\n' "stage2-tui run --headless > file" "$tw" "$((tr / 1024))"
echo "lines printed by stage2-tui: $got of $LINES; lines in its saved log: $saved of $LINES"
echo "every run (wall s, peak KiB): stage2-tui: $(tr '\n' ';' < "$work/tui.times") podman run: $(tr '\n' ';' < "$work/podman.times")"
