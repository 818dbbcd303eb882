#!/usr/bin/env bash
# Which C library for the RHEL 7 binary: glibc 2.17 (cargo-zigbuild, dynamically linked against
# the bastion's glibc) or musl (static). Both release builds, stripped, measured as whole processes:
#   size        bytes of the stripped binary
#   start-up    `stage2-tui --version`, 200 runs, mean wall ms (GNU time over the loop)
#   capture     `stage2-tui capture-log --live` of an exited container's 1,000,000 lines x 100
#               bytes (podman's log file, the runner's live sink), medians of 3, warm cache
#   flood       `stage2-tui run --headless > file` of a stage printing 1,000,000 lines, median of 3
# Usage: scripts/bench-libc.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
LINES=${1:-1000000}
WORK=target/package
if [ ! -x "$WORK/venv/bin/cargo-zigbuild" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check cargo-zigbuild ziglang
fi
export PATH="$PWD/$WORK/venv/bin:$PATH"
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
. scripts/engine-env.sh
stage2_engine_start
work=$(mktemp -d)
cleanup() { podman rm -f bench-logs flood >/dev/null 2>&1 || true; rm -rf "$work"; stage2_engine_stop; }
trap cleanup EXIT
build() { # target → path of the stripped binary
    CARGO_PROFILE_RELEASE_STRIP=true CARGO_TARGET_DIR="target/bench-libc" \
        cargo zigbuild --quiet --release --locked --target "$1" >&2
    echo "target/bench-libc/${1%.2.17}/release/stage2-tui"
}
GNU=$(build x86_64-unknown-linux-gnu.2.17)
MUSL=$(build x86_64-unknown-linux-musl)
"$GNU" demo --prepare-only --pace 0 --dir "$work/dc" >/dev/null
IMAGE=localhost/stage2-demo/4.run-installer:demo
PRINT="awk 'BEGIN{s=sprintf(\"%90s\",\"\"); gsub(/ /,\"x\",s); for(i=1;i<=$LINES;i++) printf \"%08d %s\\n\", i, s}'"
podman rm -f bench-logs >/dev/null 2>&1 || true
podman run --name bench-logs --log-driver k8s-file --entrypoint /bin/sh "$IMAGE" -c "$PRINT" >/dev/null
cat > "$work/dc/stage2-pipeline.toml" <<TOML
[[step]]
id = "flood"
kind = "oneshot"
image = "4.run-installer"
entrypoint = ["/bin/sh", "-c", '''$PRINT''']
TOML
"$GNU" pipeline accept --yes --deployconfig "$work/dc" >/dev/null
median() { sort -n | sed -n 2p; }
printf '%-12s %10s %12s %14s %14s\n' "libc" "size MB" "start-up ms" "capture s/MB" "flood s/MB"
for pair in "glibc-2.17:$GNU" "musl:$MUSL"; do
    name=${pair%%:*}; bin=${pair#*:}
    size=$(stat -c %s "$bin")
    /usr/bin/time -f "%e" -o "$work/t" sh -c "for i in \$(seq 200); do '$bin' --version >/dev/null; done"
    start=$(echo "scale=2; $(cat "$work/t") * 1000 / 200" | bc -l)
    cap=$(for i in 1 2 3; do /usr/bin/time -f "%e %M" -o "$work/c" "$bin" capture-log bench-logs --out "$work/cap.log" --live >/dev/null; tail -1 "$work/c"; done | median)
    flood=$(for i in 1 2 3; do /usr/bin/time -f "%e %M" -o "$work/f" "$bin" run --headless --restart --deployconfig "$work/dc" >"$work/flood.out"; tail -1 "$work/f"; done | median)
    got=$(grep -c '^flood *| [0-9]' "$work/flood.out" || true)
    printf '%-12s %10.1f %12s %8s/%-5s %8s/%-5s (%s lines printed)\n' "$name" "$(echo "$size / 1048576" | bc -l)" "$start" \
        "${cap% *}" "$(( ${cap#* } / 1024 ))" "${flood% *}" "$(( ${flood#* } / 1024 ))" "$got"
done
