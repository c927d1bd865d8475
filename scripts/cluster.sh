#!/usr/bin/env bash
# scripts/cluster.sh — a private, throwaway PostgreSQL + PgBouncer on loopback
# for poolsim's live tests and for `poolsim bench`.
#
# Usage:
#   scripts/cluster.sh up [OPTIONS]   start (or reconfigure) the cluster, print its URLs
#   scripts/cluster.sh env            print `export` lines with the credentials:
#                                         eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh status         show what is running
#   scripts/cluster.sh down           stop everything and remove the state directory
#
# Options for `up` (each also read from the environment variable shown; a flag wins):
#   --pg-port N               POOLSIM_CLUSTER_PG_PORT               55432
#   --bouncer-port N          POOLSIM_CLUSTER_BOUNCER_PORT          56432
#   --max-connections N       POOLSIM_CLUSTER_MAX_CONNECTIONS       100
#   --superuser-reserved N    POOLSIM_CLUSTER_SUPERUSER_RESERVED    3
#   --shared-buffers SIZE     POOLSIM_CLUSTER_SHARED_BUFFERS        128MB
#   --auth-type TYPE          POOLSIM_CLUSTER_AUTH_TYPE             scram-sha-256 (or md5)
#   --pool-mode MODE          POOLSIM_CLUSTER_POOL_MODE             transaction
#   --default-pool-size N     POOLSIM_CLUSTER_DEFAULT_POOL_SIZE     20
#   --min-pool-size N         POOLSIM_CLUSTER_MIN_POOL_SIZE         0
#   --reserve-pool-size N     POOLSIM_CLUSTER_RESERVE_POOL_SIZE     0
#   --reserve-pool-timeout S  POOLSIM_CLUSTER_RESERVE_POOL_TIMEOUT  5
#   --max-client-conn N       POOLSIM_CLUSTER_MAX_CLIENT_CONN       1000
#   --query-wait-timeout S    POOLSIM_CLUSTER_QUERY_WAIT_TIMEOUT    120
#   --server-lifetime S       POOLSIM_CLUSTER_SERVER_LIFETIME       3600
#   --server-idle-timeout S   POOLSIM_CLUSTER_SERVER_IDLE_TIMEOUT   600
#   --max-db-connections N    POOLSIM_CLUSTER_MAX_DB_CONNECTIONS    0 (unlimited)
#   --replica / --no-replica  POOLSIM_CLUSTER_REPLICA (1/0)         off
#   --replica-port N          POOLSIM_CLUSTER_REPLICA_PORT          55433
#
# State lives in ${POOLSIM_CLUSTER_DIR:-/tmp/poolsim-cluster}. `up` is
# declarative and idempotent: running it again with the same options only
# prints the URLs; with different options it rewrites the configuration,
# restarts PostgreSQL when its settings changed and restarts PgBouncer when
# its settings changed. Without --replica, a running replica is removed.
#
# Everything listens on 127.0.0.1 only. The role and database are both
# `poolsim`, password `poolsim`; connections over TCP require the password,
# the unix socket in the state directory trusts local users. PgBouncer also
# serves the admin console (database `pgbouncer`) to the poolsim user, and,
# when a replica runs, the database `poolsim_ro` routed to the replica.
#
# PostgreSQL comes from /usr/lib/postgresql/<highest>/bin (override with
# POOLSIM_PG_BINDIR), PgBouncer from /usr/sbin/pgbouncer (override with
# POOLSIM_PGBOUNCER). When they are missing and apt-get is available, the
# Debian packages `postgresql` and `pgbouncer` are installed. The system
# clusters and services those packages bring are neither used nor touched.
#
# Run as root (the servers then run as the `postgres` OS user), as the
# postgres user, or as any other user that owns the state directory.

set -euo pipefail

readonly ROLE=poolsim
readonly PASSWORD=poolsim
readonly DBNAME=poolsim
readonly MARKER=.poolsim-cluster
readonly WAIT_SECONDS=60

STATE_DIR=${POOLSIM_CLUSTER_DIR:-/tmp/poolsim-cluster}
PROG=${0##*/}

# Keep the caller's libpq settings from steering our own psql/pg_isready calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE \
    PGSERVICEFILE PGOPTIONS PGPASSFILE PGSSLMODE PGTARGETSESSIONATTRS PGDATA \
    PGCONNECT_TIMEOUT PGAPPNAME 2>/dev/null || true

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# ---------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------

set_paths() {
    case "$STATE_DIR" in
        /*) ;;
        *) STATE_DIR="$(pwd)/$STATE_DIR" ;;
    esac
    STATE_DIR=${STATE_DIR%/}
    [[ -n "$STATE_DIR" && "$STATE_DIR" != / ]] || die "refusing to use / as the state directory"
    SOCK_DIR=$STATE_DIR/sock
    PRIMARY_DATA=$STATE_DIR/primary
    REPLICA_DATA=$STATE_DIR/replica
    PRIMARY_LOG=$STATE_DIR/postgresql.log
    REPLICA_LOG=$STATE_DIR/replica.log
    BOUNCER_INI=$STATE_DIR/pgbouncer.ini
    BOUNCER_USERLIST=$STATE_DIR/userlist.txt
    BOUNCER_PID=$STATE_DIR/pgbouncer.pid
    BOUNCER_LOG=$STATE_DIR/pgbouncer.log
    STATE_FILE=$STATE_DIR/cluster.env
    # A unix socket path must fit in sockaddr_un (107 bytes).
    ((${#SOCK_DIR} + 16 < 107)) || die "state directory path is too long for unix sockets: $STATE_DIR"
}

# ---------------------------------------------------------------------------
# running things as the server user
# ---------------------------------------------------------------------------

set_run_user() {
    if ((EUID == 0)); then
        RUN_USER=postgres
        id -u "$RUN_USER" >/dev/null 2>&1 ||
            die "the OS user 'postgres' does not exist (install the postgresql package, or run as a non-root user)"
    else
        RUN_USER=$(id -un)
    fi
}

# Run a command as the server user, from the state directory (so that neither
# the current directory nor $HOME points somewhere that user cannot read).
# runuser/su go through pam_limits, which resets the open-files limit to the
# system default, so the limit is raised again on the other side.
as_pg() {
    if ((EUID == 0)); then
        local fd_limit
        fd_limit=$(ulimit -n)
        # shellcheck disable=SC2016 # expanded by the inner shell
        set -- /bin/bash -c 'ulimit -n "$1" 2>/dev/null || true; shift; exec "$@"' bash "$fd_limit" "$@"
        if command -v runuser >/dev/null 2>&1; then
            (cd "$STATE_DIR" && HOME=$STATE_DIR runuser -u "$RUN_USER" -- "$@")
        else
            local cmd
            cmd=$(printf '%q ' "$@")
            (cd "$STATE_DIR" && HOME=$STATE_DIR su "$RUN_USER" -s /bin/bash -c "$cmd")
        fi
    else
        (cd "$STATE_DIR" && "$@")
    fi
}

give_to_run_user() {
    if ((EUID == 0)); then
        chown "$RUN_USER:$(id -gn "$RUN_USER")" "$@"
    fi
}

# write_file PATH MODE < content — replace PATH only when the content differs.
# Returns 0 when the file changed, 1 when it was already up to date.
write_file() {
    local path=$1 mode=$2 tmp
    tmp=$(mktemp "$STATE_DIR/.tmp.XXXXXX")
    cat >"$tmp"
    if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    chmod "$mode" "$tmp"
    give_to_run_user "$tmp"
    mv -f "$tmp" "$path"
    return 0
}

# ---------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------

find_pg_bindir() {
    if [[ -n "${POOLSIM_PG_BINDIR:-}" ]]; then
        printf '%s\n' "$POOLSIM_PG_BINDIR"
        return
    fi
    local dir best="" best_ver=-1 ver
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/postgres" && -x "$dir/initdb" ]] || continue
        ver=${dir#/usr/lib/postgresql/}
        ver=${ver%/bin}
        ver=${ver%%.*}
        [[ "$ver" =~ ^[0-9]+$ ]] || continue
        if ((ver > best_ver)); then
            best_ver=$ver
            best=$dir
        fi
    done
    printf '%s\n' "$best"
}

find_pgbouncer() {
    if [[ -n "${POOLSIM_PGBOUNCER:-}" ]]; then
        printf '%s\n' "$POOLSIM_PGBOUNCER"
    elif [[ -x /usr/sbin/pgbouncer ]]; then
        printf '%s\n' /usr/sbin/pgbouncer
    else
        command -v pgbouncer 2>/dev/null || true
    fi
}

have_binaries() {
    PG_BINDIR=$(find_pg_bindir)
    PGBOUNCER=$(find_pgbouncer)
    local b
    [[ -n "$PG_BINDIR" ]] || return 1
    for b in postgres initdb pg_ctl pg_isready psql pg_basebackup; do
        [[ -x "$PG_BINDIR/$b" ]] || return 1
    done
    [[ -n "$PGBOUNCER" && -x "$PGBOUNCER" ]]
}

ensure_binaries() {
    have_binaries && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        die "PostgreSQL server binaries (postgres, initdb, pg_ctl, pg_isready, psql, pg_basebackup) and PgBouncer are required.
Install PostgreSQL (server and client) and PgBouncer with your system's package manager,
then point POOLSIM_PG_BINDIR at the directory holding pg_ctl and POOLSIM_PGBOUNCER at the pgbouncer binary if they are not in the Debian locations."
    fi
    ((EUID == 0)) || die "PostgreSQL and/or PgBouncer are missing; install them first:
    sudo apt-get update && sudo apt-get install -y postgresql pgbouncer"
    log "installing PostgreSQL and PgBouncer (apt-get install -y postgresql pgbouncer)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql pgbouncer >&2
    have_binaries || die "PostgreSQL or PgBouncer still missing after apt-get install (looked in /usr/lib/postgresql/*/bin and /usr/sbin/pgbouncer)"
}

# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------

load_options() {
    PG_PORT=${POOLSIM_CLUSTER_PG_PORT:-55432}
    BOUNCER_PORT=${POOLSIM_CLUSTER_BOUNCER_PORT:-56432}
    MAX_CONNECTIONS=${POOLSIM_CLUSTER_MAX_CONNECTIONS:-100}
    SUPERUSER_RESERVED=${POOLSIM_CLUSTER_SUPERUSER_RESERVED:-3}
    SHARED_BUFFERS=${POOLSIM_CLUSTER_SHARED_BUFFERS:-128MB}
    AUTH_TYPE=${POOLSIM_CLUSTER_AUTH_TYPE:-scram-sha-256}
    POOL_MODE=${POOLSIM_CLUSTER_POOL_MODE:-transaction}
    DEFAULT_POOL_SIZE=${POOLSIM_CLUSTER_DEFAULT_POOL_SIZE:-20}
    MIN_POOL_SIZE=${POOLSIM_CLUSTER_MIN_POOL_SIZE:-0}
    RESERVE_POOL_SIZE=${POOLSIM_CLUSTER_RESERVE_POOL_SIZE:-0}
    RESERVE_POOL_TIMEOUT=${POOLSIM_CLUSTER_RESERVE_POOL_TIMEOUT:-5}
    MAX_CLIENT_CONN=${POOLSIM_CLUSTER_MAX_CLIENT_CONN:-1000}
    QUERY_WAIT_TIMEOUT=${POOLSIM_CLUSTER_QUERY_WAIT_TIMEOUT:-120}
    SERVER_LIFETIME=${POOLSIM_CLUSTER_SERVER_LIFETIME:-3600}
    SERVER_IDLE_TIMEOUT=${POOLSIM_CLUSTER_SERVER_IDLE_TIMEOUT:-600}
    MAX_DB_CONNECTIONS=${POOLSIM_CLUSTER_MAX_DB_CONNECTIONS:-0}
    REPLICA=${POOLSIM_CLUSTER_REPLICA:-0}
    REPLICA_PORT=${POOLSIM_CLUSTER_REPLICA_PORT:-55433}
}

parse_options() {
    local opt val
    while (($#)); do
        opt=$1
        shift
        case "$opt" in
            -h | --help) usage; exit 0 ;;
            --replica) REPLICA=1; continue ;;
            --no-replica) REPLICA=0; continue ;;
            --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
            --pg-port | --bouncer-port | --max-connections | --superuser-reserved | \
                --shared-buffers | --auth-type | --pool-mode | --default-pool-size | \
                --min-pool-size | --reserve-pool-size | --reserve-pool-timeout | \
                --max-client-conn | --query-wait-timeout | --server-lifetime | \
                --server-idle-timeout | --max-db-connections | --replica-port)
                (($#)) || die "option $opt needs a value"
                val=$1
                shift
                ;;
            --*) die "unknown option: $opt (see $PROG --help)" ;;
            *) die "unexpected argument: $opt (see $PROG --help)" ;;
        esac
        case "$opt" in
            --pg-port) PG_PORT=$val ;;
            --bouncer-port) BOUNCER_PORT=$val ;;
            --max-connections) MAX_CONNECTIONS=$val ;;
            --superuser-reserved) SUPERUSER_RESERVED=$val ;;
            --shared-buffers) SHARED_BUFFERS=$val ;;
            --auth-type) AUTH_TYPE=$val ;;
            --pool-mode) POOL_MODE=$val ;;
            --default-pool-size) DEFAULT_POOL_SIZE=$val ;;
            --min-pool-size) MIN_POOL_SIZE=$val ;;
            --reserve-pool-size) RESERVE_POOL_SIZE=$val ;;
            --reserve-pool-timeout) RESERVE_POOL_TIMEOUT=$val ;;
            --max-client-conn) MAX_CLIENT_CONN=$val ;;
            --query-wait-timeout) QUERY_WAIT_TIMEOUT=$val ;;
            --server-lifetime) SERVER_LIFETIME=$val ;;
            --server-idle-timeout) SERVER_IDLE_TIMEOUT=$val ;;
            --max-db-connections) MAX_DB_CONNECTIONS=$val ;;
            --replica-port) REPLICA_PORT=$val ;;
            --replica) case "$val" in 1 | true | yes | on) REPLICA=1 ;; 0 | false | no | off) REPLICA=0 ;; *) die "--replica takes no value or one of 1/0" ;; esac ;;
            *) die "unknown option: $opt (see $PROG --help)" ;;
        esac
    done
    validate_options
}

need_int() { # name value [min]
    [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got '$2'"
    (($2 >= ${3:-0})) || die "$1 must be at least ${3:-0}, got $2"
}
need_seconds() {
    [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 must be a number of seconds, got '$2'"
}
need_port() {
    need_int "$1" "$2" 1024
    (($2 <= 65535)) || die "$1 must be at most 65535, got $2"
}

validate_options() {
    need_port --pg-port "$PG_PORT"
    need_port --bouncer-port "$BOUNCER_PORT"
    need_port --replica-port "$REPLICA_PORT"
    need_int --max-connections "$MAX_CONNECTIONS" 1
    need_int --superuser-reserved "$SUPERUSER_RESERVED"
    ((SUPERUSER_RESERVED < MAX_CONNECTIONS)) ||
        die "--superuser-reserved ($SUPERUSER_RESERVED) must be less than --max-connections ($MAX_CONNECTIONS)"
    [[ "$SHARED_BUFFERS" =~ ^[0-9]+(kB|MB|GB|TB)?$ ]] || die "--shared-buffers must look like 128MB, got '$SHARED_BUFFERS'"
    case "$AUTH_TYPE" in scram-sha-256 | md5) ;; *) die "--auth-type must be scram-sha-256 or md5, got '$AUTH_TYPE'" ;; esac
    case "$POOL_MODE" in session | transaction | statement) ;; *) die "--pool-mode must be session, transaction or statement, got '$POOL_MODE'" ;; esac
    need_int --default-pool-size "$DEFAULT_POOL_SIZE" 1
    need_int --min-pool-size "$MIN_POOL_SIZE"
    need_int --reserve-pool-size "$RESERVE_POOL_SIZE"
    need_seconds --reserve-pool-timeout "$RESERVE_POOL_TIMEOUT"
    need_int --max-client-conn "$MAX_CLIENT_CONN" 1
    need_seconds --query-wait-timeout "$QUERY_WAIT_TIMEOUT"
    need_seconds --server-lifetime "$SERVER_LIFETIME"
    need_seconds --server-idle-timeout "$SERVER_IDLE_TIMEOUT"
    need_int --max-db-connections "$MAX_DB_CONNECTIONS"
    [[ "$REPLICA" == 0 || "$REPLICA" == 1 ]] || die "POOLSIM_CLUSTER_REPLICA must be 0 or 1, got '$REPLICA'"
    ((PG_PORT != BOUNCER_PORT)) || die "--pg-port and --bouncer-port must differ"
    if ((REPLICA)); then
        ((REPLICA_PORT != PG_PORT && REPLICA_PORT != BOUNCER_PORT)) ||
            die "--replica-port must differ from --pg-port and --bouncer-port"
    fi
}

# ---------------------------------------------------------------------------
# state directory and saved state
# ---------------------------------------------------------------------------

is_our_dir() { [[ -f "$STATE_DIR/$MARKER" ]]; }

prepare_state_dir() {
    if [[ -e "$STATE_DIR" ]] && ! is_our_dir; then
        [[ -d "$STATE_DIR" ]] || die "$STATE_DIR exists and is not a directory"
        [[ -z "$(ls -A "$STATE_DIR")" ]] ||
            die "$STATE_DIR exists, is not empty and was not created by $PROG; choose another POOLSIM_CLUSTER_DIR"
    fi
    mkdir -p "$STATE_DIR" "$SOCK_DIR"
    chmod 0755 "$STATE_DIR" "$SOCK_DIR"
    touch "$STATE_DIR/$MARKER"
    give_to_run_user "$STATE_DIR" "$SOCK_DIR" "$STATE_DIR/$MARKER"
    if ((EUID == 0)); then
        as_pg test -w "$STATE_DIR" ||
            die "the postgres user cannot write to $STATE_DIR (is a parent directory private?); set POOLSIM_CLUSTER_DIR to a path under /tmp"
    fi
}

# Ports and replica settings of the running cluster, for env/status/down.
load_state() {
    S_PG_PORT="" S_BOUNCER_PORT="" S_REPLICA=0 S_REPLICA_PORT=""
    [[ -f "$STATE_FILE" ]] || return 1
    local key val
    while IFS='=' read -r key val; do
        case "$key" in
            PG_PORT) S_PG_PORT=$val ;;
            BOUNCER_PORT) S_BOUNCER_PORT=$val ;;
            REPLICA) S_REPLICA=$val ;;
            REPLICA_PORT) S_REPLICA_PORT=$val ;;
        esac
    done <"$STATE_FILE"
    [[ -n "$S_PG_PORT" && -n "$S_BOUNCER_PORT" ]]
}

save_state() {
    write_file "$STATE_FILE" 0644 <<EOF || true
PG_PORT=$PG_PORT
BOUNCER_PORT=$BOUNCER_PORT
REPLICA=$REPLICA
REPLICA_PORT=$REPLICA_PORT
EOF
}

# ---------------------------------------------------------------------------
# process checks
# ---------------------------------------------------------------------------

# pid_alive PID NAME [ARG] — the process exists, its command name is NAME and
# (when given) its command line mentions ARG, so a recycled PID is not ours.
pid_alive() {
    local pid=$1 name=$2 arg=${3:-} comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || [[ -d /proc/$pid ]] || return 1
    # A killed server can linger as a zombie until its parent reaps it.
    if [[ -r /proc/$pid/stat ]] && [[ "$(cut -d ' ' -f 3 "/proc/$pid/stat" 2>/dev/null || true)" == Z ]]; then
        return 1
    fi
    if [[ -r /proc/$pid/comm ]]; then
        comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
        [[ "$comm" == "$name"* ]] || return 1
        if [[ -n "$arg" && -r /proc/$pid/cmdline ]]; then
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$arg" || return 1
        fi
    fi
    return 0
}

postmaster_pid() { # datadir
    local f=$1/postmaster.pid pid
    [[ -f "$f" ]] || return 1
    pid=$(head -n 1 "$f" 2>/dev/null) || return 1
    pid_alive "$pid" postgres "$1" || return 1
    printf '%s\n' "$pid"
}

pg_running() { postmaster_pid "$1" >/dev/null; }

bouncer_pid() {
    local pid
    [[ -r "$BOUNCER_PID" ]] || return 1
    pid=$(head -n 1 "$BOUNCER_PID" 2>/dev/null) || return 1
    pid_alive "$pid" pgbouncer "$BOUNCER_INI" || return 1
    printf '%s\n' "$pid"
}

bouncer_running() { bouncer_pid >/dev/null; }

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_ready() { # port
    "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$1" -d postgres -t 2 >/dev/null 2>&1
}

url() { # password port dbname
    printf 'postgres://%s:%s@127.0.0.1:%s/%s' "$ROLE" "$1" "$2" "$3"
}

psql_url() { # url args...
    local u=$1
    shift
    "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$u" "$@"
}

psql_super() { # port args... — superuser over the unix socket
    local port=$1
    shift
    as_pg "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$port" -U postgres "$@"
}

wait_for() { # description logfile command...
    local what=$1 logfile=$2 i
    shift 2
    for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
        if "$@"; then
            return 0
        fi
        sleep 0.25
    done
    log "$what did not become ready within ${WAIT_SECONDS}s; last lines of $logfile:"
    tail -n 30 "$logfile" >&2 2>/dev/null || true
    exit 1
}

raise_fd_limit() {
    local hard
    hard=$(ulimit -Hn)
    if [[ "$hard" == unlimited ]] || ((hard >= 65536)); then
        ulimit -n 65536 2>/dev/null || true
    else
        ulimit -n "$hard" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

have_pg_stat_statements() {
    local libdir
    libdir=$("$PG_BINDIR/pg_config" --pkglibdir 2>/dev/null || true)
    [[ -n "$libdir" ]] || libdir=$(dirname "$PG_BINDIR")/lib
    [[ -f "$libdir/pg_stat_statements.so" ]]
}

# Settings shared by primary and replica; `port` and primary_conninfo differ.
pg_settings() { # port [primary_port]
    cat <<EOF
# Written by scripts/cluster.sh on every \`up\`; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$SOCK_DIR'
max_connections = $MAX_CONNECTIONS
superuser_reserved_connections = $SUPERUSER_RESERVED
shared_buffers = '$SHARED_BUFFERS'
password_encryption = '$AUTH_TYPE'
# Throwaway benchmark cluster: durability is not needed.
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 5
hot_standby = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
    if ((PG_STAT_STATEMENTS)); then
        printf "shared_preload_libraries = 'pg_stat_statements'\n"
        printf "pg_stat_statements.track = all\n"
    fi
    if (($# > 1)); then
        printf "primary_conninfo = 'host=%s port=%s user=postgres application_name=poolsim_replica'\n" "$SOCK_DIR" "$2"
    fi
}

pg_hba() {
    cat <<EOF
# Written by scripts/cluster.sh. Unix socket: trusted. TCP (127.0.0.1): password.
local   all             all                             trust
local   replication     all                             trust
host    all             all             127.0.0.1/32    $AUTH_TYPE
host    replication     all             127.0.0.1/32    $AUTH_TYPE
EOF
}

init_primary() {
    log "initdb $PRIMARY_DATA"
    stop_pg "$REPLICA_DATA" "PostgreSQL replica"
    rm -rf "$PRIMARY_DATA" "$REPLICA_DATA"
    mkdir -p "$PRIMARY_DATA"
    chmod 0700 "$PRIMARY_DATA"
    give_to_run_user "$PRIMARY_DATA"
    as_pg "$PG_BINDIR/initdb" -D "$PRIMARY_DATA" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host="$AUTH_TYPE" >"$STATE_DIR/initdb.log" 2>&1 || {
        tail -n 30 "$STATE_DIR/initdb.log" >&2
        die "initdb failed (full log: $STATE_DIR/initdb.log)"
    }
    printf "\n# poolsim cluster settings\ninclude 'poolsim.conf'\n" |
        as_pg tee -a "$PRIMARY_DATA/postgresql.conf" >/dev/null
    as_pg touch "$PRIMARY_DATA/.poolsim-initialized"
}

# configure_pg DATADIR PORT [PRIMARY_PORT] — returns 0 when something changed.
configure_pg() {
    local data=$1 changed=1
    shift
    if pg_settings "$@" | write_file "$data/poolsim.conf" 0600; then changed=0; fi
    if pg_hba | write_file "$data/pg_hba.conf" 0600; then changed=0; fi
    return "$changed"
}

start_pg() { # datadir port logfile description
    local data=$1 port=$2 logfile=$3 what=$4
    if port_in_use "$port"; then
        die "port $port is already in use by something else; pick another with --${5:-pg-port}"
    fi
    log "starting $what on 127.0.0.1:$port"
    # Leftovers of a server that died without cleaning up (nothing of ours
    # runs on this data directory or port, checked above).
    rm -f "$data/postmaster.pid" "$SOCK_DIR/.s.PGSQL.$port" "$SOCK_DIR/.s.PGSQL.$port.lock" 2>/dev/null || true
    give_to_run_user "$logfile" 2>/dev/null || true
    if ! as_pg "$PG_BINDIR/pg_ctl" start -D "$data" -l "$logfile" -w -t "$WAIT_SECONDS" -s >/dev/null 2>&1; then
        return 1
    fi
    wait_for "$what" "$logfile" pg_ready "$port"
}

stop_pg() { # datadir description
    local data=$1 what=$2
    pg_running "$data" || return 0
    log "stopping $what"
    as_pg "$PG_BINDIR/pg_ctl" stop -D "$data" -m fast -w -t 30 -s >/dev/null 2>&1 ||
        as_pg "$PG_BINDIR/pg_ctl" stop -D "$data" -m immediate -w -t 30 -s >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 40; i++)); do
        pg_running "$data" || return 0
        sleep 0.25
    done
    local pid
    if pid=$(postmaster_pid "$data"); then
        kill -9 "$pid" 2>/dev/null || true
    fi
}

ensure_primary() {
    local fresh=0 changed=0 was_running=0
    touch "$PRIMARY_LOG"
    give_to_run_user "$PRIMARY_LOG"
    if [[ ! -f "$PRIMARY_DATA/.poolsim-initialized" ]]; then
        stop_pg "$PRIMARY_DATA" PostgreSQL
        init_primary
        fresh=1
    fi
    if configure_pg "$PRIMARY_DATA" "$PG_PORT"; then changed=1; fi
    pg_running "$PRIMARY_DATA" && was_running=1

    if ((was_running && changed)); then
        # A standby must never run with a lower max_connections than its
        # primary; stop it first, it is restarted with the new settings.
        log "PostgreSQL settings changed; restarting"
        stop_pg "$REPLICA_DATA" "PostgreSQL replica"
        stop_pg "$PRIMARY_DATA" PostgreSQL
        was_running=0
    elif ((was_running)) && ! pg_ready "$PG_PORT"; then
        log "PostgreSQL is running but not answering on port $PG_PORT; restarting"
        stop_pg "$PRIMARY_DATA" PostgreSQL
        was_running=0
    fi
    if ((!was_running)); then
        if ! start_pg "$PRIMARY_DATA" "$PG_PORT" "$PRIMARY_LOG" PostgreSQL pg-port; then
            if ((fresh)); then
                tail -n 30 "$PRIMARY_LOG" >&2 || true
                die "PostgreSQL failed to start (log: $PRIMARY_LOG)"
            fi
            log "PostgreSQL failed to start from the existing data directory; last log lines:"
            tail -n 15 "$PRIMARY_LOG" >&2 || true
            log "re-initialising the throwaway cluster from scratch"
            stop_pg "$PRIMARY_DATA" PostgreSQL
            init_primary
            configure_pg "$PRIMARY_DATA" "$PG_PORT" || true
            start_pg "$PRIMARY_DATA" "$PG_PORT" "$PRIMARY_LOG" PostgreSQL pg-port || {
                tail -n 30 "$PRIMARY_LOG" >&2 || true
                die "PostgreSQL failed to start (log: $PRIMARY_LOG)"
            }
        fi
    fi
    provision
}

provision() {
    local sql
    sql=$(
        cat <<EOF
SET client_min_messages = warning;
SET password_encryption = '$AUTH_TYPE';
SELECT format('CREATE ROLE %I LOGIN', '$ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE WITH LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION PASSWORD '$PASSWORD';
GRANT pg_monitor, pg_signal_backend TO $ROLE;
SELECT format('CREATE DATABASE %I OWNER %I', '$DBNAME', '$ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DBNAME') \gexec
EOF
    )
    psql_super "$PG_PORT" -d postgres <<<"$sql" >/dev/null ||
        die "could not create the $ROLE role and database (log: $PRIMARY_LOG)"
    if ((PG_STAT_STATEMENTS)); then
        psql_super "$PG_PORT" -d "$DBNAME" >/dev/null <<EOF ||
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I', oid::regprocedure, '$ROLE')
  FROM pg_proc WHERE proname = 'pg_stat_statements_reset' \gexec
EOF
            log "warning: could not set up pg_stat_statements"
    fi
    psql_url "$(url "$PASSWORD" "$PG_PORT" "$DBNAME")" -tAc 'select 1' >/dev/null ||
        die "password login as $ROLE on 127.0.0.1:$PG_PORT failed (log: $PRIMARY_LOG)"
    # the tables the shipped live experiments use (pgbench-like, owned by the role)
    psql_url "$(url "$PASSWORD" "$PG_PORT" "$DBNAME")" -q >/dev/null <<'EOF' ||
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS poolsim_bench_accounts (
    aid integer PRIMARY KEY, bid integer NOT NULL, abalance integer NOT NULL, filler char(84));
INSERT INTO poolsim_bench_accounts
    SELECT g, 1, 0, '' FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS poolsim_bench_history (
    aid integer NOT NULL, delta integer NOT NULL, mtime timestamptz NOT NULL);
ANALYZE poolsim_bench_accounts;
EOF
        log "warning: could not create the benchmark tables"
    # a known state for every run that starts here: what earlier runs wrote goes (history grows
    # by every write transaction, and the dead rows of updated accounts lengthen each scan
    # until autovacuum passes)
    psql_url "$(url "$PASSWORD" "$PG_PORT" "$DBNAME")" -q >/dev/null <<'EOF' ||
SET client_min_messages = warning;
TRUNCATE poolsim_bench_history;
VACUUM (ANALYZE) poolsim_bench_accounts;
EOF
        log "warning: could not reset the benchmark tables"
}

# ---------------------------------------------------------------------------
# replica
# ---------------------------------------------------------------------------

remove_replica() {
    [[ -e "$REPLICA_DATA" ]] || return 0
    stop_pg "$REPLICA_DATA" "PostgreSQL replica"
    log "removing the replica"
    rm -rf "$REPLICA_DATA"
    rm -f "$REPLICA_LOG"
}

replica_in_recovery() {
    [[ "$(psql_url "$(url "$PASSWORD" "$REPLICA_PORT" "$DBNAME")" -tAc 'select pg_is_in_recovery()' 2>/dev/null)" == t ]]
}

ensure_replica() {
    if ((!REPLICA)); then
        remove_replica
        return 0
    fi
    local changed=0 was_running=0
    if [[ ! -f "$REPLICA_DATA/.poolsim-replica" ]]; then
        stop_pg "$REPLICA_DATA" "PostgreSQL replica"
        rm -rf "$REPLICA_DATA"
        log "creating a streaming replica with pg_basebackup"
        mkdir -p "$REPLICA_DATA"
        chmod 0700 "$REPLICA_DATA"
        give_to_run_user "$REPLICA_DATA"
        as_pg "$PG_BINDIR/pg_basebackup" -h "$SOCK_DIR" -p "$PG_PORT" -U postgres \
            -D "$REPLICA_DATA" -X stream -c fast >"$STATE_DIR/basebackup.log" 2>&1 || {
            tail -n 30 "$STATE_DIR/basebackup.log" >&2
            die "pg_basebackup failed (log: $STATE_DIR/basebackup.log)"
        }
        as_pg rm -f "$REPLICA_DATA/postmaster.pid" "$REPLICA_DATA/postmaster.opts"
        as_pg touch "$REPLICA_DATA/standby.signal" "$REPLICA_DATA/.poolsim-replica"
    fi
    touch "$REPLICA_LOG"
    give_to_run_user "$REPLICA_LOG"
    if configure_pg "$REPLICA_DATA" "$REPLICA_PORT" "$PG_PORT"; then changed=1; fi
    pg_running "$REPLICA_DATA" && was_running=1
    if ((was_running)) && { ((changed)) || ! pg_ready "$REPLICA_PORT"; }; then
        ((changed)) && log "replica settings changed; restarting it"
        stop_pg "$REPLICA_DATA" "PostgreSQL replica"
        was_running=0
    fi
    if ((!was_running)); then
        start_pg "$REPLICA_DATA" "$REPLICA_PORT" "$REPLICA_LOG" "PostgreSQL replica" replica-port || {
            tail -n 30 "$REPLICA_LOG" >&2 || true
            die "the replica failed to start (log: $REPLICA_LOG); \`$PROG down\` and retry"
        }
    fi
    wait_for "the replica (hot standby)" "$REPLICA_LOG" replica_in_recovery
}

# ---------------------------------------------------------------------------
# PgBouncer
# ---------------------------------------------------------------------------

bouncer_ini() {
    cat <<EOF
;; Written by scripts/cluster.sh on every \`up\`; edits are overwritten.
[databases]
$DBNAME = host=127.0.0.1 port=$PG_PORT dbname=$DBNAME
EOF
    if ((REPLICA)); then
        printf '%s_ro = host=127.0.0.1 port=%s dbname=%s\n' "$DBNAME" "$REPLICA_PORT" "$DBNAME"
    fi
    cat <<EOF

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $SOCK_DIR
pidfile = $BOUNCER_PID
logfile = $BOUNCER_LOG
auth_type = $AUTH_TYPE
auth_file = $BOUNCER_USERLIST
admin_users = $ROLE
stats_users = $ROLE
ignore_startup_parameters = extra_float_digits,options
pool_mode = $POOL_MODE
default_pool_size = $DEFAULT_POOL_SIZE
min_pool_size = $MIN_POOL_SIZE
reserve_pool_size = $RESERVE_POOL_SIZE
reserve_pool_timeout = $RESERVE_POOL_TIMEOUT
max_client_conn = $MAX_CLIENT_CONN
max_db_connections = $MAX_DB_CONNECTIONS
query_wait_timeout = $QUERY_WAIT_TIMEOUT
server_lifetime = $SERVER_LIFETIME
server_idle_timeout = $SERVER_IDLE_TIMEOUT
log_connections = 0
log_disconnections = 0
EOF
}

# The userlist holds the password in clear text (the file is private to the
# server user): PgBouncer can then answer both SCRAM and md5 challenges from
# clients and log in to PostgreSQL with either method.
bouncer_userlist() {
    printf '"%s" "%s"\n' "$ROLE" "$PASSWORD"
}

bouncer_answers() {
    psql_url "$(url "$PASSWORD" "$BOUNCER_PORT" "$DBNAME")" -tAc 'select 1' >/dev/null 2>&1
}

stop_bouncer() {
    local pid i
    pid=$(bouncer_pid) || { rm -f "$BOUNCER_PID"; return 0; }
    log "stopping PgBouncer (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        pid_alive "$pid" pgbouncer || break
        sleep 0.25
    done
    if pid_alive "$pid" pgbouncer; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$BOUNCER_PID"
}

start_bouncer() {
    if port_in_use "$BOUNCER_PORT"; then
        die "port $BOUNCER_PORT is already in use by something else; pick another with --bouncer-port"
    fi
    log "starting PgBouncer on 127.0.0.1:$BOUNCER_PORT"
    rm -f "$BOUNCER_PID"
    touch "$BOUNCER_LOG"
    give_to_run_user "$BOUNCER_LOG"
    as_pg "$PGBOUNCER" -d -q "$BOUNCER_INI" >>"$STATE_DIR/pgbouncer.start.log" 2>&1 || {
        tail -n 20 "$STATE_DIR/pgbouncer.start.log" "$BOUNCER_LOG" >&2 2>/dev/null || true
        die "PgBouncer failed to start (log: $BOUNCER_LOG)"
    }
    wait_for PgBouncer "$BOUNCER_LOG" bouncer_answers
}

ensure_bouncer() {
    local changed=0
    if bouncer_userlist | write_file "$BOUNCER_USERLIST" 0600; then changed=1; fi
    if bouncer_ini | write_file "$BOUNCER_INI" 0600; then changed=1; fi
    if bouncer_running; then
        if ((changed)); then
            # A restart (rather than RELOAD) also applies listen_port and
            # starts the benchmark from empty pools and fresh statistics.
            log "PgBouncer settings changed; restarting"
            stop_bouncer
        elif bouncer_answers; then
            return 0
        else
            log "PgBouncer is running but not answering on port $BOUNCER_PORT; restarting"
            stop_bouncer
        fi
    fi
    start_bouncer
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

print_urls() { # password
    local pw=$1
    printf 'postgres:        %s\n' "$(url "$pw" "$S_PG_PORT" "$DBNAME")"
    printf 'pgbouncer:       %s\n' "$(url "$pw" "$S_BOUNCER_PORT" "$DBNAME")"
    printf 'pgbouncer admin: %s\n' "$(url "$pw" "$S_BOUNCER_PORT" pgbouncer)"
    if ((S_REPLICA)); then
        printf 'replica:         %s\n' "$(url "$pw" "$S_REPLICA_PORT" "$DBNAME")"
        printf 'replica via pgbouncer: %s\n' "$(url "$pw" "$S_BOUNCER_PORT" "${DBNAME}_ro")"
    fi
}

cmd_up() {
    load_options
    parse_options "$@"
    set_paths
    set_run_user
    ensure_binaries
    raise_fd_limit
    prepare_state_dir
    PG_STAT_STATEMENTS=0
    have_pg_stat_statements && PG_STAT_STATEMENTS=1

    ensure_primary
    ensure_replica
    ensure_bouncer
    save_state
    load_state

    local version
    version=$("$PG_BINDIR/postgres" --version | awk '{print $3}')
    printf 'poolsim cluster is up: PostgreSQL %s, %s; state in %s\n' \
        "$version" "$("$PGBOUNCER" --version | head -n 1)" "$STATE_DIR"
    print_urls '***'
    local prefix=""
    [[ "$STATE_DIR" == /tmp/poolsim-cluster ]] || prefix="POOLSIM_CLUSTER_DIR=$STATE_DIR "
    # shellcheck disable=SC2016 # the $(...) is meant literally
    printf 'credentials for tools and tests: eval "$(%s%s env)"\n' "$prefix" "$0"
}

cmd_env() {
    (($# == 0)) || die "env takes no options"
    set_paths
    load_state || die "no cluster in $STATE_DIR; run \`$0 up\` first"
    printf "export POOLSIM_CLUSTER_DIR='%s'\n" "$STATE_DIR"
    printf "export POOLSIM_PG_URL='%s'\n" "$(url "$PASSWORD" "$S_PG_PORT" "$DBNAME")"
    printf "export POOLSIM_BOUNCER_URL='%s'\n" "$(url "$PASSWORD" "$S_BOUNCER_PORT" "$DBNAME")"
    printf "export POOLSIM_BOUNCER_ADMIN_URL='%s'\n" "$(url "$PASSWORD" "$S_BOUNCER_PORT" pgbouncer)"
    if ((S_REPLICA)); then
        printf "export POOLSIM_REPLICA_URL='%s'\n" "$(url "$PASSWORD" "$S_REPLICA_PORT" "$DBNAME")"
        printf "export POOLSIM_BOUNCER_REPLICA_URL='%s'\n" "$(url "$PASSWORD" "$S_BOUNCER_PORT" "${DBNAME}_ro")"
    else
        printf 'unset POOLSIM_REPLICA_URL POOLSIM_BOUNCER_REPLICA_URL\n'
    fi
}

cmd_status() {
    (($# == 0)) || die "status takes no options"
    set_paths
    if ! is_our_dir || ! load_state; then
        printf 'poolsim cluster: not up (no state in %s)\n' "$STATE_DIR"
        return 3
    fi
    PG_BINDIR=$(find_pg_bindir)
    local ok=0 pid
    printf 'poolsim cluster in %s\n' "$STATE_DIR"
    if pid=$(postmaster_pid "$PRIMARY_DATA"); then
        printf '  postgres   running  pid %-7s 127.0.0.1:%s\n' "$pid" "$S_PG_PORT"
    else
        printf '  postgres   stopped\n'
        ok=3
    fi
    if ((S_REPLICA)); then
        if pid=$(postmaster_pid "$REPLICA_DATA"); then
            printf '  replica    running  pid %-7s 127.0.0.1:%s\n' "$pid" "$S_REPLICA_PORT"
        else
            printf '  replica    stopped\n'
            ok=3
        fi
    fi
    if pid=$(bouncer_pid); then
        printf '  pgbouncer  running  pid %-7s 127.0.0.1:%s\n' "$pid" "$S_BOUNCER_PORT"
    else
        printf '  pgbouncer  stopped\n'
        ok=3
    fi
    print_urls '***' | sed 's/^/  /'
    return "$ok"
}

cmd_down() {
    (($# == 0)) || die "down takes no options"
    set_paths
    if [[ ! -e "$STATE_DIR" ]]; then
        log "nothing to stop ($STATE_DIR does not exist)"
        return 0
    fi
    if ! is_our_dir; then
        if [[ -d "$STATE_DIR" && -z "$(ls -A "$STATE_DIR")" ]]; then
            rmdir "$STATE_DIR"
            return 0
        fi
        die "$STATE_DIR was not created by $PROG; not touching it"
    fi
    set_run_user
    PG_BINDIR=$(find_pg_bindir)
    if [[ -z "$PG_BINDIR" || ! -x "$PG_BINDIR/pg_ctl" ]]; then
        PG_BINDIR=""
    fi
    stop_bouncer
    local data pid
    for data in "$REPLICA_DATA" "$PRIMARY_DATA"; do
        [[ -d "$data" ]] || continue
        if [[ -n "$PG_BINDIR" ]]; then
            stop_pg "$data" "PostgreSQL ($(basename "$data"))"
        elif pid=$(postmaster_pid "$data"); then
            kill -INT "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        if pg_running "$data"; then
            die "PostgreSQL in $data is still running; not removing $STATE_DIR"
        fi
    done
    rm -rf "$STATE_DIR"
    log "stopped; removed $STATE_DIR"
}

main() {
    local verb=${1:-}
    (($#)) && shift
    case "$verb" in
        up) cmd_up "$@" ;;
        env) cmd_env "$@" ;;
        status) cmd_status "$@" ;;
        down) cmd_down "$@" ;;
        -h | --help | help) usage ;;
        "") usage >&2; exit 2 ;;
        *) usage >&2; die "unknown command: $verb" ;;
    esac
}

main "$@"
