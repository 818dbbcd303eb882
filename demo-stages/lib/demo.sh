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
# terraform reads config.json as a var file: a top-level key given twice is an error of HCL's
# JSON parser. Prints it as terraform does and returns 1.
tf_duplicate_keys() {
    dup=$(sed -n 's/^  "\([A-Za-z0-9_]*\)": .*/\1/p' "$WD/config.json" | sort | uniq -d | head -n 1)
    [ -n "$dup" ] || return 0
    first=$(grep -n "^  \"$dup\":" "$WD/config.json" | sed -n 1p | cut -d: -f1)
    second=$(grep -n "^  \"$dup\":" "$WD/config.json" | sed -n 2p | cut -d: -f1)
    err ""
    err "Error: Duplicate attribute definition"
    err ""
    err "  on /tmp/workingdir/config.json line $second:"
    err "  $second: $(sed -n "${second}p" "$WD/config.json" | sed 's/^ *//')"
    err ""
    err "The argument \"$dup\" was already set at /tmp/workingdir/config.json:$first,3-$((${#dup} + 5))."
    return 1
}
# The bootstrap VM terraform makes: none once config.json says bootstrap_complete.
bootstrap_vm() {
    grep -q '"bootstrap_complete": *"true"' "$WD/config.json" || echo bootstrap-0
}
