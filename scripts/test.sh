#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs podman if missing, starts a private API service,
# checks formatting and lints, runs every test against the real engine, stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/engine-env.sh
stage2_engine_start
trap stage2_engine_stop EXIT
started=$(date +%s)
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --no-fail-fast 2>&1
echo "test.sh: finished in $(( $(date +%s) - started ))s"
