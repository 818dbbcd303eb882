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
    [ -n "${package_pid:-}" ] && kill "$package_pid" 2>/dev/null || true
    pkill -f "window-guard --state-dir $STAGE2_STATE_ROOT" 2>/dev/null || true
    rm -rf "$STAGE2_STATE_ROOT"
    stage2_engine_stop
}
trap cleanup EXIT
started=$(date +%s)
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --no-run --quiet 2>&1
# The package build (tests/packaging.rs checks what it leaves) is CPU work while the tests
# mostly wait on containers: it runs beside them at the lowest priority.
STAGE2_TEST_DIST="$STAGE2_STATE_ROOT/dist"
mkdir -p "$STAGE2_TEST_DIST"
export STAGE2_TEST_DIST
( DIST="$STAGE2_TEST_DIST" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 nice -n 19 bash scripts/package.sh \
    >"$STAGE2_TEST_DIST/package.log" 2>&1; echo $? >"$STAGE2_TEST_DIST/package.rc" ) &
package_pid=$!
# Every podman call of the CLI engine goes through the podman 1.6.4 wrapper; anything it refuses
# is recorded here, and must be nothing.
STAGE2_PODMAN_REFUSED="$STAGE2_STATE_ROOT/podman-1.6.4-refused"
export STAGE2_PODMAN_REFUSED
status=0
cargo test --no-fail-fast 2>&1 || status=1
# The second pass: the pipeline tests again on the podman command-line engine (RHEL 7's podman
# 1.x has no API), with the API service stopped so nothing can use it.
stage2_engine_stop_service
STAGE2_TEST_ENGINE=cli cargo test --no-fail-fast --test podman_pipeline --test faults \
    --test attach --test fidelity -- demo_runs_end_to_end injected_failure killed_runner_reattaches \
    a_flood_right_before_exit links_planted a_container_stage2_tui_did_not_create secrets_printed \
    a_hangup_mid_window a_tui_attaches_to_a_headless_run a_registry_with_a_self_signed 2>&1 || status=1
wait "$package_pid" || true
if [ -s "$STAGE2_PODMAN_REFUSED" ]; then
    echo "test.sh: the podman 1.6.4 wrapper refused calls (a flag or subcommand podman 1.6.4 lacks):" >&2
    cat "$STAGE2_PODMAN_REFUSED" >&2
    status=1
fi
echo "test.sh: finished in $(( $(date +%s) - started ))s"
exit $status
