# Shared by the benchmarks: build the release binary, start a server on a fresh data dir, clean up.
# Sourced, not run. Sets: BIN, WORK, BASE, TOKEN_ID, TOKEN_SECRET, SERVER_PID.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --locked --bin openvod
BIN="$PWD/target/release/openvod"
WORK="$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" openvod-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    [ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_server [serve flags...]
start_server() {
    mkdir -p "$WORK/data"
    local creds
    creds=$("$BIN" tokens create --name bench --data-dir "$WORK/data")
    TOKEN_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$creds")
    TOKEN_SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret"])' "$creds")
    OPENVOD_LOG="${OPENVOD_LOG:-warn}" "$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" "$@" > "$WORK/server.out" 2> "$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 200); do grep -q "listening on" "$WORK/server.out" 2>/dev/null && break; sleep 0.05; done
    BASE=$(sed -n 's/^openvod listening on \(.*\)\/$/\1/p' "$WORK/server.out")
    [ -n "$BASE" ] || { cat "$WORK/server.err" >&2; exit 1; }
    export BASE TOKEN_ID TOKEN_SECRET SERVER_PID
}

# peak_rss_mib PID: the process's peak resident set (VmHWM), in MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
