#!/usr/bin/env bash
# Builds what goes onto a bastion, in dist/ (or $DIST):
#   stage2-tui-VERSION-x86_64-linux.tar.gz  the binary, unit, completions and man page
#   stage2-tui-VERSION-1.x86_64.rpm         the same as an RPM for RHEL 7, 8 and 9
# The binary is linked against glibc 2.17 (RHEL 7's) with cargo-zigbuild, and checked: no symbol
# newer than GLIBC_2.17. The RPM is one EL7's rpm 4.11 installs: a gzip payload (not zstd), no
# weak dependencies. Completions (bash, zsh, fish) and the man page come from the clap
# definitions. Installs what it needs when missing: cargo-zigbuild and ziglang from PyPI (in a
# venv under target/), rpm (rpmbuild) and binutils (objdump) from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
TARGET=x86_64-unknown-linux-gnu
GLIBC=2.17
DIST=${DIST:-dist}
WORK=target/package
mkdir -p "$DIST" "$WORK"
DIST=$(cd "$DIST" && pwd)

say() { echo "package.sh: $*" >&2; }

missing=()
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { say "missing ${missing[*]}"; exit 1; }
    say "installing ${missing[*]}"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$WORK/venv/bin/cargo-zigbuild" ]; then
    say "installing cargo-zigbuild and ziglang (PyPI) into $WORK/venv"
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check cargo-zigbuild ziglang
fi
# cargo-zigbuild finds zig through the venv's python (`python -m ziglang`).
export PATH="$PWD/$WORK/venv/bin:$PATH"

say "building stage2-tui $VERSION for $TARGET with glibc $GLIBC"
CARGO_PROFILE_RELEASE_STRIP=true CARGO_TARGET_DIR="$WORK/target" cargo zigbuild --quiet --release --locked --target "$TARGET.$GLIBC"
BIN="$WORK/target/$TARGET/release/stage2-tui"

newest=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -n 1)" != "$GLIBC" ]; then
    say "the binary needs GLIBC_$newest, newer than $GLIBC: it would not run on RHEL 7"
    exit 1
fi
say "newest glibc symbol: GLIBC_$newest (RHEL 7 has 2.17, RHEL 8 2.28, RHEL 9 2.34)"

ROOT="$WORK/root"
rm -rf "$ROOT"
install -Dm755 "$BIN" "$ROOT/usr/bin/stage2-tui"
install -d "$ROOT/usr/lib/systemd/system" "$ROOT/usr/share/bash-completion/completions" \
    "$ROOT/usr/share/zsh/site-functions" "$ROOT/usr/share/fish/vendor_completions.d" \
    "$ROOT/usr/share/man/man1" "$ROOT/usr/share/doc/stage2-tui"
sed 's|^ExecStart=.*|ExecStart=/usr/bin/stage2-tui run --headless|' scripts/systemd/stage2-tui.service \
    > "$ROOT/usr/lib/systemd/system/stage2-tui.service"
"$BIN" completions bash > "$ROOT/usr/share/bash-completion/completions/stage2-tui"
"$BIN" completions zsh > "$ROOT/usr/share/zsh/site-functions/_stage2-tui"
"$BIN" completions fish > "$ROOT/usr/share/fish/vendor_completions.d/stage2-tui.fish"
"$BIN" manpage --dir "$WORK/man"
for page in "$WORK"/man/*.1; do gzip -9n < "$page" > "$ROOT/usr/share/man/man1/$(basename "$page").gz"; done
cp README.md "$ROOT/usr/share/doc/stage2-tui/"

TARBALL="$DIST/stage2-tui-$VERSION-x86_64-linux.tar.gz"
tar -C "$ROOT" --owner=0 --group=0 --sort=name -czf "$TARBALL" \
    --transform "s|^\.|stage2-tui-$VERSION|" .
say "wrote $TARBALL"

TOP=$(mktemp -d)
trap 'rm -rf "$TOP"' EXIT
mkdir -p "$TOP/SPECS"
cat > "$TOP/SPECS/stage2-tui.spec" <<SPEC
Name:           stage2-tui
Version:        $VERSION
Release:        1
Summary:        Terminal UI and headless runner for OpenShift 4 stage 2 on a bastion
License:        Unspecified
BuildArch:      x86_64
Requires:       podman

%description
stage2-tui installs the second stage of an OpenShift 4 cluster from its bastion: a validated
config.json editor, the stage containers driven through podman (its API, or on RHEL 7 its
command line) with live logs, retry,
skip and stop, diagnosis of failures, and a headless runner for the systemd unit.

%install
cp -a $PWD/$ROOT/. %{buildroot}/

%files
/usr/bin/stage2-tui
/usr/lib/systemd/system/stage2-tui.service
/usr/share/bash-completion/completions/stage2-tui
/usr/share/zsh/site-functions/_stage2-tui
/usr/share/fish/vendor_completions.d/stage2-tui.fish
/usr/share/man/man1/stage2-tui*.1.gz
%doc /usr/share/doc/stage2-tui/README.md
SPEC
# The binary is stripped by the build above and the man page already compressed: the
# distribution's post-install scripts (strip, compress, build ids) are not run.
# gzip payload and sha256 digests: what EL7's rpm 4.11 reads (newer rpmbuild defaults to zstd).
rpmbuild --quiet --define "_topdir $TOP" --define "_build_id_links none" \
    --define "_binary_payload w9.gzdio" --define "_binary_filedigest_algorithm 8" \
    --define "__os_install_post %{nil}" --define "debug_package %{nil}" -bb "$TOP/SPECS/stage2-tui.spec"
RPM="$DIST/stage2-tui-$VERSION-1.x86_64.rpm"
cp "$TOP/RPMS/x86_64/stage2-tui-$VERSION-1.x86_64.rpm" "$RPM"
say "wrote $RPM"
