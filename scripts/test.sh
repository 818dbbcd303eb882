#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs podman if missing, starts a private API service,
# checks formatting and lints, runs every test against the real engine, stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/engine-env.sh
stage2_engine_start
# The suite's run states live in a folder of its own (not /var/lib/stage2-tui), removed at the
# end with any window guard still watching one of them.
STAGE2_STATE_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/stage2-test-state.XXXXXX")
export STAGE2_STATE_ROOT
cleanup() {
    pkill -f "window-guard --state-dir $STAGE2_STATE_ROOT" 2>/dev/null || true
    rm -rf "$STAGE2_STATE_ROOT"
    stage2_engine_stop
}
trap cleanup EXIT
started=$(date +%s)
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --no-fail-fast 2>&1
echo "test.sh: finished in $(( $(date +%s) - started ))s"
