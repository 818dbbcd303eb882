# Source me: makes a working podman and a private API service for this shell, then exports
# STAGE2_ENGINE (the socket) and, only where podman's defaults fail here, CONTAINERS_CONF.
# Installs what is missing on Debian (podman, runc, static busybox, tmux, GNU time, and
# docker-registry + apache2-utils + openssl for the registry TLS test).
# Call stage2_engine_stop (or let the EXIT trap) to stop the service.

stage2_engine_die() { echo "engine-env: $*" >&2; return 1; }

stage2_engine_install() {
    local missing=()
    command -v podman >/dev/null 2>&1 || missing+=(podman runc)
    case "$(ldd /bin/busybox 2>&1)" in *"not a dynamic"*) ;; *) missing+=(busybox-static) ;; esac
    command -v tmux >/dev/null 2>&1 || missing+=(tmux)
    [ -x /usr/bin/time ] || missing+=(time)
    # A real registry with a self-signed certificate and htpasswd auth, for the TLS tests.
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    # A storage-only (buildah) container holding a stage's name, for the ownership tests.
    command -v buildah >/dev/null 2>&1 || missing+=(buildah)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || stage2_engine_die "missing ${missing[*]}; install them with your package manager" || return 1
    echo "engine-env: installing ${missing[*]}" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || stage2_engine_die "apt-get install ${missing[*]} failed"
}

# Runs a trivial container; true if podman works with the current settings.
stage2_engine_probe() {
    if ! podman image exists localhost/stage2-tui-probe:1 2>/dev/null; then
        local root; root=$(mktemp -d)
        mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/"
        tar -C "$root" -c . | podman import -q - localhost/stage2-tui-probe:1 >/dev/null 2>&1
        rm -rf "$root"
    fi
    podman run --rm localhost/stage2-tui-probe:1 /bin/busybox true >/dev/null 2>&1
}

stage2_engine_start() {
    stage2_engine_install || return 1
    STAGE2_ENGINE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/stage2-engine.XXXXXX")
    export STAGE2_ENGINE_DIR
    if ! stage2_engine_probe; then
        # Measured on these VMs (ENGINE-NOTES.md): crun cannot set rlimits and refuses the hybrid
        # cgroup layout; runc + cgroupfs + ulimits below the hard limits work.
        cat > "$STAGE2_ENGINE_DIR/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
        export CONTAINERS_CONF="$STAGE2_ENGINE_DIR/containers.conf"
        stage2_engine_probe || stage2_engine_die "podman cannot run a container even with $CONTAINERS_CONF" || return 1
        echo "engine-env: podman defaults fail here; using $CONTAINERS_CONF" >&2
    fi
    local sock="$STAGE2_ENGINE_DIR/podman.sock"
    setsid podman system service --time=0 "unix://$sock" >"$STAGE2_ENGINE_DIR/service.log" 2>&1 < /dev/null &
    STAGE2_ENGINE_PID=$!
    local i
    for i in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || stage2_engine_die "podman system service did not start: $(cat "$STAGE2_ENGINE_DIR/service.log")" || return 1
    export STAGE2_ENGINE="unix://$sock"
    echo "engine-env: podman $(podman version --format '{{.Server.Version}}' 2>/dev/null) API service at $STAGE2_ENGINE (pid $STAGE2_ENGINE_PID)" >&2
}

# Stops the API service but keeps its settings (CONTAINERS_CONF): podman still runs containers.
stage2_engine_stop_service() {
    if [ -n "${STAGE2_ENGINE_PID:-}" ]; then
        kill "$STAGE2_ENGINE_PID" 2>/dev/null || true
        wait "$STAGE2_ENGINE_PID" 2>/dev/null || true
        STAGE2_ENGINE_PID=""
    fi
    return 0
}

stage2_engine_stop() {
    if [ -n "${STAGE2_ENGINE_PID:-}" ]; then
        kill "$STAGE2_ENGINE_PID" 2>/dev/null
        wait "$STAGE2_ENGINE_PID" 2>/dev/null
        STAGE2_ENGINE_PID=""
    fi
    [ -n "${STAGE2_ENGINE_DIR:-}" ] && rm -rf "$STAGE2_ENGINE_DIR"
    return 0
}
