#!/usr/bin/env bash
# TUI cost figures: render time and key latency (cargo bench --bench tui), then the idle CPU of
# the real binary in tmux while a silent stage runs against podman.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --quiet --bench tui 2>&1 | grep -v '^\s*$'

. scripts/engine-env.sh
stage2_engine_start
work=$(mktemp -d)
# Its own state root: nothing left under /var/lib/stage2-tui.
export STAGE2_STATE_ROOT="$work/state"
sock="stage2-bench-$$"
cleanup() { tmux -L "$sock" kill-server 2>/dev/null || true; podman rm -f silent >/dev/null 2>&1 || true; rm -rf "$work"; stage2_engine_stop; }
trap cleanup EXIT
cargo build --release --quiet
BIN=$PWD/target/release/stage2-tui
$BIN demo --prepare-only --pace 0 --dir "$work/dc" >/dev/null
cat > "$work/dc/stage2-pipeline.toml" <<'TOML'
[[step]]
id = "silent"
kind = "oneshot"
image = "4.run-installer"
entrypoint = ["/bin/sh", "-c", "echo started; sleep 40; echo done"]
TOML
# The script wrote this pipeline file itself: it accepts it (stage2-tui runs no file unaccepted).
"$BIN" pipeline accept --yes --deployconfig "$work/dc" >/dev/null
tmux -L "$sock" new-session -d -s s -x 200 -y 60 \
    "exec env STAGE2_ENGINE=$STAGE2_ENGINE TERM=xterm-256color $BIN --deployconfig $work/dc"
sleep 5
pid=$(tmux -L "$sock" display-message -p -t s '#{pane_pid}')
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks "$pid"); sleep 20; t1=$(ticks "$pid")
echo "idle CPU while a silent stage runs (spinner visible), 20 s: $(echo "scale=2; ($t1 - $t0) * 100 / ($hz * 20)" | bc -l)% of a core"
tmux -L "$sock" send-keys -t s x; sleep 0.5; tmux -L "$sock" send-keys -t s y
sleep 3
t0=$(ticks "$pid"); sleep 10; t1=$(ticks "$pid")
echo "idle CPU with nothing running (run halted), 10 s: $(echo "scale=2; ($t1 - $t0) * 100 / ($hz * 10)" | bc -l)% of a core"
