# Shared helpers for the demo stage scripts (busybox sh).
WD=/tmp/workingdir
PACE=$(cat "$WD/.demo/pace" 2>/dev/null || echo 0.1)
say() { echo "$*"; [ "$PACE" = 0 ] || sleep "$PACE"; }
err() { echo "$*" >&2; [ "$PACE" = 0 ] || sleep "$PACE"; }
# Fails once: the marker is consumed, so a retry succeeds.
should_fail() {
    if [ -f "$WD/.demo/fail/$1" ]; then rm -f "$WD/.demo/fail/$1"; return 0; fi
    return 1
}
json_str() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$WD/config.json" | head -n 1; }
hostnames() { sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$WD/config.json"; }
rand_hex() { head -c "$1" /dev/urandom | hexdump -v -e '/1 "%02x"'; }
log_installer() { err "level=$1 msg=\"$2\""; }
