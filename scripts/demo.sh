#!/usr/bin/env bash
# Runs the demo: installs podman if missing, starts a private API service, builds stage2-tui and
# runs `stage2-tui demo` (the real pipeline against local demo stage images). Extra arguments go
# to `stage2-tui demo` (e.g. --fail 7.terraform-deploy, --headless, --window 60).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/engine-env.sh
stage2_engine_start
trap stage2_engine_stop EXIT
cargo build --release --quiet
./target/release/stage2-tui demo "$@"
